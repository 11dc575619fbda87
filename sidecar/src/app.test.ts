/**
 * The HTTP API contract, in L1-only mode through fastify's inject() (no sockets, no Redis).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { SIDECAR_DEFAULTS, type SidecarConfig } from './config-defaults.js';

let app: FastifyInstance;
let now = 1_000_000;

function config(overrides: Partial<SidecarConfig> = {}): SidecarConfig {
  return { ...(structuredClone(SIDECAR_DEFAULTS) as SidecarConfig), ...overrides };
}

async function start(overrides: Partial<SidecarConfig> = {}) {
  app = await buildApp({ config: config(overrides), logger: false, clock: () => now, senderId: 'test' });
  await app.ready();
}

beforeEach(async () => {
  now = 1_000_000;
  await start({ maxValueBytes: 1024 });
});
afterEach(async () => {
  await app.close();
});

const put = (
  key: string,
  payload: string | Buffer,
  query = '',
  headers: Record<string, string> = { 'content-type': 'text/plain' },
) => app.inject({ method: 'PUT', url: `/v1/cache/${key}${query}`, payload, headers });
const get = (key: string) => app.inject({ method: 'GET', url: `/v1/cache/${key}` });

describe('HTTP API (L1-only)', () => {
  it('PUT then GET returns the bytes and content type from L1', async () => {
    expect((await put('greeting', 'hello', '?ttl=30')).statusCode).toBe(204);
    const r = await get('greeting');
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('hello');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['x-cache']).toBe('L1');
  });

  it('stores any content type as opaque bytes, including JSON and binary', async () => {
    await put('j', '{"a":', '', { 'content-type': 'application/json' });
    expect((await get('j')).body).toBe('{"a":');
    const bin = Buffer.from([0, 255, 1, 254]);
    await put('b', bin, '', {});
    const r = await get('b');
    expect(r.rawPayload.equals(bin)).toBe(true);
    expect(r.headers['content-type']).toBe('application/octet-stream');
  });

  it('keys are percent-decoded and may contain slashes and non-ASCII', async () => {
    await put(encodeURIComponent('user/42:ü€'), 'x');
    expect((await get('user%2F42%3A%C3%BC%E2%82%AC')).body).toBe('x');
    expect((await get('user/42:%C3%BC%E2%82%AC')).body).toBe('x');
  });

  it('HEAD answers like GET without a body', async () => {
    await put('h', 'hello');
    const r = await app.inject({ method: 'HEAD', url: '/v1/cache/h' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-cache']).toBe('L1');
    expect(r.body).toBe('');
    expect((await app.inject({ method: 'HEAD', url: '/v1/cache/nope' })).statusCode).toBe(404);
  });

  it('GET of a missing key is 404 NotFound', async () => {
    const r = await get('nope');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: { code: 'NotFound', message: expect.any(String) } });
  });

  it('an entry expires with its TTL', async () => {
    await put('t', 'x', '?ttl=5');
    now += 4999;
    expect((await get('t')).statusCode).toBe(200);
    now += 1;
    expect((await get('t')).statusCode).toBe(404);
  });

  it('DELETE removes the key', async () => {
    await put('d', 'x');
    expect((await app.inject({ method: 'DELETE', url: '/v1/cache/d' })).statusCode).toBe(204);
    expect((await get('d')).statusCode).toBe(404);
  });

  describe('bad inputs get their documented error and leave the cache unchanged', () => {
    beforeEach(async () => {
      await put('keep', 'original');
    });
    afterEach(async () => {
      const r = await get('keep');
      expect(r.body).toBe('original');
      expect(app.ripplecache.cache.l1.size).toBe(1);
    });

    it.each([
      ['empty key', 'PUT', '/v1/cache/', 400, 'InvalidKey'],
      ['empty key (GET)', 'GET', '/v1/cache/', 400, 'InvalidKey'],
      ['2 KB key', 'PUT', `/v1/cache/${'k'.repeat(2048)}`, 400, 'InvalidKey'],
      ['1025-byte key', 'GET', `/v1/cache/${'k'.repeat(1025)}`, 400, 'InvalidKey'],
      ['3 KB percent-encoded key', 'GET', `/v1/cache/${'%C3%BC'.repeat(600)}`, 400, 'InvalidKey'],
      ['invalid UTF-8 key', 'PUT', '/v1/cache/%FF%FE', 400, 'InvalidKey'],
      ['truncated UTF-8 key', 'GET', '/v1/cache/%E2%82', 400, 'InvalidKey'],
      ['UTF-8-encoded surrogate', 'PUT', '/v1/cache/%ED%A0%80', 400, 'InvalidKey'],
      ['negative TTL', 'PUT', '/v1/cache/keep?ttl=-1', 400, 'InvalidTTL'],
      ['zero TTL', 'PUT', '/v1/cache/keep?ttl=0', 400, 'InvalidTTL'],
      ['huge TTL', 'PUT', '/v1/cache/keep?ttl=99999999999', 400, 'InvalidTTL'],
      ['fractional TTL', 'PUT', '/v1/cache/keep?ttl=1.5', 400, 'InvalidTTL'],
      ['non-numeric TTL', 'PUT', '/v1/cache/keep?ttl=soon', 400, 'InvalidTTL'],
      ['wrong method POST', 'POST', '/v1/cache/keep', 405, 'MethodNotAllowed'],
      ['wrong method PATCH', 'PATCH', '/v1/cache/keep', 405, 'MethodNotAllowed'],
      ['bad consistency', 'GET', '/v1/cache/keep?consistency=some', 400, 'InvalidRequest'],
    ])('%s → %i %s', async (_name, method, url, status, code) => {
      const r = await app.inject({
        method: method as 'GET',
        url,
        ...(method === 'GET' ? {} : { payload: 'changed' }),
        headers: { 'content-type': 'text/plain' },
      });
      expect(r.statusCode).toBe(status);
      expect(r.json()).toEqual({ error: { code, message: expect.any(String) } });
    });

    it('body over the limit → 413 ValueTooLarge', async () => {
      const r = await put('keep', 'x'.repeat(1025));
      expect(r.statusCode).toBe(413);
      expect(r.json().error.code).toBe('ValueTooLarge');
    });

    it('405 carries an Allow header', async () => {
      const r = await app.inject({ method: 'POST', url: '/v1/cache/keep', payload: 'x' });
      expect(r.headers.allow).toBe('GET, HEAD, PUT, DELETE');
    });

    it('too long Content-Type → 400', async () => {
      const r = await put('keep', 'changed', '', { 'content-type': `text/${'x'.repeat(300)}` });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('InvalidRequest');
    });

    it.each([
      ['not JSON', '{', 'InvalidBody'],
      ['neither keys nor all', '{}', 'InvalidBody'],
      ['both', '{"keys":["a"],"all":true}', 'InvalidBody'],
      ['all false', '{"all":false}', 'InvalidBody'],
      ['all as a string', '{"all":"true"}', 'InvalidBody'],
      ['keys as a string', '{"keys":"a"}', 'InvalidBody'],
      ['empty keys', '{"keys":[]}', 'InvalidBody'],
      ['unknown field', '{"keys":["a"],"x":1}', 'InvalidBody'],
      ['bad tier', '{"keys":["a"],"tier":"l3"}', 'InvalidBody'],
      ['empty key', '{"keys":[""]}', 'InvalidKey'],
    ])('POST /v1/invalidate %s → 400 %s', async (_n, payload, code) => {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/invalidate',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe(code);
    });
  });

  it('unknown routes are 404 NotFound JSON', async () => {
    const r = await app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('NotFound');
  });

  it('POST /v1/invalidate drops keys, or everything', async () => {
    await put('a', '1');
    await put('b', '2');
    await put('c', '3');
    let r = await app.inject({ method: 'POST', url: '/v1/invalidate', payload: { keys: ['a'] } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ keys: 1, tier: 'l1', published: false });
    expect((await get('a')).statusCode).toBe(404);
    expect((await get('b')).statusCode).toBe(200);
    r = await app.inject({ method: 'POST', url: '/v1/invalidate', payload: { all: true } });
    expect(r.json()).toEqual({ all: true, tier: 'l1', published: false });
    expect((await get('b')).statusCode).toBe(404);
    expect((await get('c')).statusCode).toBe(404);
  });

  it('consistency=all in L1-only mode reports the local value', async () => {
    await put('k', 'v');
    const r = await app.inject({ method: 'GET', url: '/v1/cache/k?consistency=all' });
    expect(r.json()).toMatchObject({
      key: 'k',
      consistent: true,
      values: [{ value: 'v', encoding: 'utf8', nodes: ['l1'] }],
    });
  });

  it('healthz, readyz and readyz while shutting down', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', mode: 'l1-only', redis: 'disabled' });
    app.ripplecache.beginShutdown();
    const r = await app.inject('/readyz');
    expect(r.statusCode).toBe(503);
    expect(r.json().status).toBe('shutting-down');
  });

  it('exposes the metrics named in the contract', async () => {
    await put('m', 'x');
    await get('m');
    await get('missing');
    await app.inject({ method: 'PUT', url: '/v1/cache/m?ttl=-4', payload: 'x' });
    const text = (await app.inject('/metrics')).body;
    for (const name of [
      'ripplecache_sidecar_requests_total',
      'ripplecache_sidecar_request_duration_seconds',
      'ripplecache_sidecar_l1_entries',
      'ripplecache_sidecar_l1_bytes',
      'ripplecache_sidecar_l1_evictions_total',
      'ripplecache_sidecar_invalidations_published_total',
      'ripplecache_sidecar_invalidations_received_total',
      'ripplecache_sidecar_invalidation_gaps_total',
      'ripplecache_sidecar_l1_drops_total',
      'ripplecache_sidecar_redis_errors_total',
      'ripplecache_sidecar_redis_up',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="get",tier="l1",outcome="hit"} 1');
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="get",tier="l1",outcome="miss"} 1');
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="put",tier="none",outcome="InvalidTTL"} 1');
    expect(text).toContain('ripplecache_sidecar_l1_entries 1');
  });

  it('evicts per policy through the API: LRU with 3 entries', async () => {
    await app.close();
    await start({ l1: { policy: 'lru', maxEntries: 3, maxBytes: 1e6, maxTTLSeconds: 60 } });
    for (const k of ['a', 'b', 'c']) await put(k, k);
    await get('a');
    await put('d', 'd');
    expect((await get('b')).statusCode).toBe(404);
    for (const k of ['a', 'c', 'd']) expect((await get(k)).statusCode).toBe(200);
  });

  it('two apps have separate metric registries', async () => {
    const other = await buildApp({ config: config(), logger: false });
    expect(other.ripplecache.metrics.registry).not.toBe(app.ripplecache.metrics.registry);
    await other.close();
  });
});

describe('HTTP input (issue 10 §4)', () => {
  it.each([
    ['1e309'],
    ['Infinity'],
    ['0x10'],
    ['1e3'],
    ['+5'],
    ['%2B5'],
    ['%201'],
    ['1%20'],
    ['%091'],
    [''],
    ['1.0'],
    ['0'],
    ['315360001'],
    ['1&ttl=2'],
    ['5&ttl=5'],
  ])('PUT ?ttl=%s → 400 InvalidTTL, nothing stored', async (ttl) => {
    const r = await put('t', 'x', `?ttl=${ttl}`);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ error: { code: 'InvalidTTL', message: expect.stringContaining('315360000') } });
    expect((await get('t')).statusCode).toBe(404);
  });

  it('PUT ?ttl (no value) → 400 InvalidTTL', async () => {
    const r = await put('t', 'x', '?ttl');
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('InvalidTTL');
  });

  it('a valid ttl is decimal digits, leading zeros allowed: 010 is ten seconds', async () => {
    expect((await put('t', 'x', '?ttl=010')).statusCode).toBe(204);
    now += 9_999;
    expect((await get('t')).statusCode).toBe(200);
    now += 1;
    expect((await get('t')).statusCode).toBe(404);
    expect((await put('max', 'x', '?ttl=315360000')).statusCode).toBe(204);
    expect((await put('one', 'x', '?ttl=1')).statusCode).toBe(204);
  });

  it.each([
    ['empty', '', 'application/octet-stream'],
    ['no slash', 'text', 'text'],
    ['only separators', ';;;', ';;;'],
    ['parameters only', '; charset=utf-8', '; charset=utf-8'],
    ['unterminated quoted parameter', 'text/plain; charset="x', 'text/plain; charset="x'],
    ['multipart without a boundary', 'multipart/form-data', 'multipart/form-data'],
    ['multipart with a boundary', 'multipart/form-data; boundary=zzz', 'multipart/form-data; boundary=zzz'],
    ['form', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    ['JSON (the body is not JSON)', 'application/json', 'application/json'],
    ['JSON with a charset', 'application/json; charset=utf-16', 'application/json; charset=utf-16'],
    ['upper case', 'TEXT/HTML', 'TEXT/HTML'],
    ['slash only', '/', '/'],
    ['the word undefined', 'undefined', 'undefined'],
  ])('PUT with Content-Type %s is stored as sent (%j), body byte for byte', async (_name, contentType, expected) => {
    const body = Buffer.from('{"a": not json \u0000\u00ff', 'latin1');
    const w = await put('ct', body, '', { 'content-type': contentType });
    expect(w.statusCode).toBe(204);
    const r = await get('ct');
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(body)).toBe(true);
    expect(r.headers['content-type']).toBe(expected);
    expect(r.headers['x-cache']).toBe('L1');
    expect(r.headers['content-length']).toBe(String(body.length));
    const head = await app.inject({ method: 'HEAD', url: '/v1/cache/ct' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toBe(expected);
  });

  it('a stored Content-Type that cannot be sent at all (not from a PUT) is answered as octet-stream', async () => {
    await app.ripplecache.cache.put('bad-ct', { body: Buffer.from('x'), contentType: 'text\r\nX-Evil: 1' }, 60);
    const r = await get('bad-ct');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['x-evil']).toBeUndefined();
    expect(r.body).toBe('x');
  });

  it('PUT without a Content-Type is stored as application/octet-stream', async () => {
    expect((await put('ct', 'x', '', {})).statusCode).toBe(204);
    expect((await get('ct')).headers['content-type']).toBe('application/octet-stream');
  });

  it('never answers 415: DELETE, POST and unknown routes with a malformed Content-Type', async () => {
    await put('d', 'x');
    const del = await app.inject({
      method: 'DELETE',
      url: '/v1/cache/d',
      payload: 'x',
      headers: { 'content-type': ';;' },
    });
    expect(del.statusCode).toBe(204);
    expect((await get('d')).statusCode).toBe(404);
    const post = await app.inject({
      method: 'POST',
      url: '/v1/cache/d',
      payload: 'x',
      headers: { 'content-type': '' },
    });
    expect(post.statusCode).toBe(405);
    expect(post.json().error.code).toBe('MethodNotAllowed');
    const nowhere = await app.inject({ method: 'POST', url: '/v2/x', payload: 'x', headers: { 'content-type': 'x' } });
    expect(nowhere.statusCode).toBe(404);
    expect(nowhere.json().error.code).toBe('NotFound');
    const options = await app.inject({
      method: 'OPTIONS',
      url: '/healthz',
      payload: 'x',
      headers: { 'content-type': '' },
    });
    expect(options.statusCode).toBe(405);
    expect(options.headers.allow).toBe('GET, HEAD');
    expect(options.json().error.code).toBe('MethodNotAllowed');
  });

  it.each([
    ['OPTIONS', '/v1/cache/k', 'GET, HEAD, PUT, DELETE'],
    ['PATCH', '/v1/cache/k', 'GET, HEAD, PUT, DELETE'],
    ['HEAD', '/v1/invalidate', 'POST'],
    ['OPTIONS', '/v1/batch', 'POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['DELETE', '/metrics', 'GET, HEAD'],
    ['PUT', '/readyz', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s, whatever the body', async (method, url, allow) => {
    const r = await app.inject({
      method: method as 'GET',
      url,
      ...(method === 'HEAD' ? {} : { payload: 'x'.repeat(4096), headers: { 'content-type': 'no/such-parser' } }),
    });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe(allow);
    if (method !== 'HEAD')
      expect(r.json()).toEqual({
        error: { code: 'MethodNotAllowed', message: `${method} is not allowed here; use ${allow}` },
      });
  });

  it.each([
    ['form-urlencoded (what curl -d sends)', 'application/x-www-form-urlencoded'],
    ['text/plain', 'text/plain'],
    ['empty', ''],
    ['malformed', ';;'],
    ['JSON', 'application/json'],
  ])('POST /v1/invalidate reads a JSON body labelled %s', async (_name, contentType) => {
    await put('user:42', 'x');
    const r = await app.inject({
      method: 'POST',
      url: '/v1/invalidate',
      payload: '{"keys":["user:42"]}',
      headers: { 'content-type': contentType },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ keys: 1, tier: 'l1', published: false });
    expect((await get('user:42')).statusCode).toBe(404);
  });

  it.each([
    ['a form body', 'application/x-www-form-urlencoded', 'keys=user:42'],
    ['text', 'text/plain', 'user:42'],
    ['empty', 'application/x-www-form-urlencoded', ''],
    ['prototype poisoning', 'application/json', '{"keys":["a"],"__proto__":{"x":1}}'],
  ])('POST /v1/invalidate with %s → 400 InvalidBody', async (_name, contentType, payload) => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/invalidate',
      payload,
      headers: { 'content-type': contentType },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ error: { code: 'InvalidBody', message: expect.any(String) } });
  });
});

describe('keys a PostgreSQL origin could never store (no I/O: refused before any query)', () => {
  beforeEach(async () => {
    await app.close();
    // Nothing listens there; a query would fail with OriginUnavailable, not InvalidKey.
    await start({ origin: 'postgres://nobody@127.0.0.1:1/none' });
  });

  it.each([
    ['GET', '/v1/cache/a%00b'],
    ['HEAD', '/v1/cache/a%00b'],
    ['GET', '/v1/cache/a%00b?consistency=all'],
    ['PUT', '/v1/cache/a%00b'],
    ['DELETE', '/v1/cache/a%00b'],
    ['POST', '/v1/invalidate'],
  ])('%s %s → 400 InvalidKey', async (method, url) => {
    const r = await app.inject({
      method: method as 'GET',
      url,
      ...(method === 'PUT' ? { payload: 'x' } : method === 'POST' ? { payload: { keys: ['ok', 'a\u0000b'] } } : {}),
    });
    expect(r.statusCode).toBe(400);
    if (method !== 'HEAD') expect(r.json()).toEqual({ error: { code: 'InvalidKey', message: expect.any(String) } });
  });
});

describe('POST /v1/batch (L1-only)', () => {
  const batch = (payload: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    app.inject({ method: 'POST', url: '/v1/batch', payload: JSON.stringify(payload), headers });
  type Results = { results: Record<string, unknown>[] };

  it('answers every operation in order; same-key operations run in request order', async () => {
    await put('old', 'was-here');
    const r = await batch({
      ops: [
        { op: 'put', key: 'a', value: 'one', contentType: 'text/plain', ttl: 30 },
        { op: 'get', key: 'a' },
        { op: 'put', key: 'a', value: 'two' },
        { op: 'get', key: 'a' },
        { op: 'put', key: 'bin', value: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' },
        { op: 'get', key: 'bin' },
        { op: 'delete', key: 'old' },
        { op: 'get', key: 'old' },
        { op: 'get', key: 'never' },
      ],
    });
    expect(r.statusCode).toBe(200);
    const { results } = r.json<Results>();
    expect(results).toEqual([
      { status: 204, key: 'a' },
      { status: 200, key: 'a', value: 'one', encoding: 'utf8', contentType: 'text/plain', tier: 'L1' },
      { status: 204, key: 'a' },
      { status: 200, key: 'a', value: 'two', encoding: 'utf8', contentType: 'application/octet-stream', tier: 'L1' },
      { status: 204, key: 'bin' },
      {
        status: 200,
        key: 'bin',
        value: 'AP8=',
        encoding: 'base64',
        contentType: 'application/octet-stream',
        tier: 'L1',
      },
      { status: 204, key: 'old' },
      { status: 404, key: 'old', error: { code: 'NotFound', message: 'no tier holds this key' } },
      { status: 404, key: 'never', error: { code: 'NotFound', message: 'no tier holds this key' } },
    ]);
    // What the batch wrote is what the single-key API reads, with its per-key TTL.
    expect((await get('a')).body).toBe('two');
    expect((await get('old')).statusCode).toBe(404);
    now += 31_000;
    expect((await get('bin')).statusCode).toBe(200);
  });

  it('a bad key or a too large value fails alone; the others are stored', async () => {
    const r = await batch({
      ops: [
        { op: 'put', key: 'ok1', value: 'x' },
        { op: 'put', key: '', value: 'x' },
        { op: 'put', key: 'huge', value: 'x'.repeat(1025) },
        { op: 'put', key: 'ok2', value: 'y', ttl: -1 },
        { op: 'put', key: 'ok3', value: 'z' },
      ],
    });
    expect(r.statusCode).toBe(200);
    const codes = r.json<Results>().results.map((x) => [x.status, (x.error as { code?: string } | undefined)?.code]);
    expect(codes).toEqual([
      [204, undefined],
      [400, 'InvalidKey'],
      [413, 'ValueTooLarge'],
      [400, 'InvalidTTL'],
      [204, undefined],
    ]);
    expect((await get('ok1')).body).toBe('x');
    expect((await get('ok3')).body).toBe('z');
    expect((await get('huge')).statusCode).toBe(404);
    expect((await get('ok2')).statusCode).toBe(404);
  });

  it('refuses bodies whole with a JSON error naming the problem, whatever the Content-Type', async () => {
    const notJson = await app.inject({ method: 'POST', url: '/v1/batch', payload: '{"ops":', headers: {} });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ error: { code: 'InvalidBody' } });
    const noOps = await batch({ ops: [] }, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(noOps.json()).toMatchObject({
      error: { code: 'InvalidBody', message: '"ops" is empty: a batch needs 1 operation or more' },
    });
    const many = await batch({ ops: Array.from({ length: 1001 }, (_, i) => ({ op: 'get', key: `k${i}` })) });
    expect(many.statusCode).toBe(413);
    expect(many.json()).toMatchObject({
      error: { code: 'BatchTooLarge', message: 'the batch has 1001 operations; at most 1000 are allowed' },
    });
    const big = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      payload: JSON.stringify({ ops: [{ op: 'put', key: 'k', value: 'x'.repeat(16 * 1024 * 1024) }] }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({
      error: { code: 'BatchTooLarge', message: `the batch body is larger than the limit of ${16 * 1024 * 1024} bytes` },
    });
    const wrong = await app.inject({ method: 'GET', url: '/v1/batch' });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
  });

  it('counts each operation under operation="batch"', async () => {
    await batch({
      ops: [
        { op: 'put', key: 'm', value: 'v' },
        { op: 'get', key: 'm' },
        { op: 'get', key: '' },
      ],
    });
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="batch",tier="l1",outcome="stored"} 1');
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="batch",tier="l1",outcome="hit"} 1');
    expect(text).toContain('ripplecache_sidecar_requests_total{operation="batch",tier="none",outcome="InvalidKey"} 1');
  });
});

describe('bodies and query strings refused by name (external review, 2026-12-03)', () => {
  const invalidate = (payload: string) =>
    app.inject({ method: 'POST', url: '/v1/invalidate', payload, headers: { 'content-type': 'application/json' } });

  it.each([
    ['{"keys":[true]}', 'keys[0] must be a string'],
    ['{"keys":["a",1]}', 'keys[1] must be a string'],
    ['{"keys":[null]}', 'keys[0] must be a string'],
  ])('invalidate %s → 400 InvalidBody %s, nothing invalidated', async (payload, message) => {
    await put('true', 'kept');
    const r = await invalidate(payload);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ error: { code: 'InvalidBody', message } });
    expect((await get('true')).body).toBe('kept');
  });

  it('invalidate counts a key given twice once', async () => {
    const r = await invalidate('{"keys":["a","a","b"]}');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ keys: 2 });
  });

  it('a __proto__ property is refused by name; a syntax error names its position', async () => {
    const proto = await invalidate('{"__proto__":{},"keys":["a"]}');
    expect(proto.json()).toEqual({
      error: {
        code: 'InvalidBody',
        message: 'the body has a "__proto__" or "constructor.prototype" property, which is refused',
      },
    });
    const batch = await app.inject({ method: 'POST', url: '/v1/batch', payload: '{"ops":[],}' });
    expect(batch.json()).toEqual({
      error: { code: 'InvalidBody', message: 'the body is not valid JSON (at character 10)' },
    });
  });

  it.each([
    ['PUT', '/v1/cache/k?TTL=5'],
    ['PUT', '/v1/cache/k?ttl[]=5'],
    ['GET', '/v1/cache/k?foo=bar'],
    ['DELETE', '/v1/cache/k?x=1'],
    ['POST', '/v1/invalidate?all=true'],
    ['POST', '/v1/batch?x'],
  ])('%s %s → 400 InvalidRequest naming the unknown parameter; nothing written', async (method, url) => {
    await put('k', 'kept');
    const payload = method === 'POST' ? (url.startsWith('/v1/batch') ? '{"ops":[]}' : '{"all":true}') : 'new';
    const r = await app.inject({ method: method as 'PUT', url, payload });
    expect(r.statusCode).toBe(400);
    const name = new URLSearchParams(url.split('?')[1]).keys().next().value;
    expect(r.json()).toEqual({ error: { code: 'InvalidRequest', message: `unknown query parameter "${name}"` } });
    expect((await get('k')).body).toBe('kept');
  });

  it('an invalidate body over 8 MiB is 413 BodyTooLarge naming the limit', async () => {
    const r = await invalidate(`{"keys":["${'a'.repeat(8 * 1024 * 1024)}"]}`);
    expect(r.statusCode).toBe(413);
    expect(r.json()).toEqual({
      error: { code: 'BodyTooLarge', message: `the body is larger than the limit of ${8 * 1024 * 1024} bytes` },
    });
  });

  it('an invalidate body of 1000 keys of 1024 escaped bytes (over 2 MiB) is within the limit', async () => {
    const key = '\\u0001'.repeat(1024);
    const keys = Array.from({ length: 1000 }, (_, i) => `${key.slice(0, -6 * 4)}${String(i).padStart(4, '0')}`);
    const payload = `{"keys":[${keys.map((k) => `"${k}"`).join(',')}]}`;
    expect(payload.length).toBeGreaterThan(2 * 1024 * 1024);
    const r = await invalidate(payload);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ keys: 1000 });
  });
});
