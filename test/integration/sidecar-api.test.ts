/**
 * The HTTP API over real sockets: bad inputs against a Redis-backed sidecar (and proof that nothing
 * changed, in Redis and in L1), eviction order per policy, TTLs, the byte bound, and graceful shutdown.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

let primary: RedisProcess;
let redis: Redis;
let S: SidecarProcess;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  primary = await startRedis();
  redis = new Redis(primary.port, '127.0.0.1');
  S = await startSidecar({ name: 'S', args: ['--redis', primary.url, '--channel', 'ripplecache:it-api'] });
}, 60_000);

afterAll(async () => {
  await stopAllSidecars();
  redis?.disconnect();
  await primary?.stop();
});

/**
 * A raw HTTP request, so that the path reaches the server byte for byte and any method can be used.
 * A body over 1 MiB is announced with its Content-Length but only its first 64 KiB are sent: the sidecar
 * must answer 413 from the header alone (as it does for a client using Expect: 100-continue), and a client
 * still pushing megabytes when the server closes could see a reset instead of the answer.
 */
function raw(
  port: number,
  method: string,
  path: string,
  body?: Buffer,
): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: body ? { 'content-type': 'text/plain', 'content-length': body.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined, headers: res.headers });
          req.destroy();
        });
      },
    );
    req.on('error', reject);
    if (body && body.length > 1024 * 1024) {
      req.write(body.subarray(0, 64 * 1024));
      return;
    }
    if (body) req.write(body);
    req.end();
  });
}

describe('sidecar API: bad inputs leave the cache unchanged', () => {
  it.each([
    ['empty key', 'PUT', '/v1/cache/', undefined, 400, 'InvalidKey'],
    ['2 KB key', 'PUT', `/v1/cache/${'k'.repeat(2048)}`, undefined, 400, 'InvalidKey'],
    ['invalid UTF-8 key', 'PUT', '/v1/cache/keep%FF', undefined, 400, 'InvalidKey'],
    ['invalid UTF-8 key (GET)', 'GET', '/v1/cache/%C3%28', undefined, 400, 'InvalidKey'],
    ['negative TTL', 'PUT', '/v1/cache/keep?ttl=-10', undefined, 400, 'InvalidTTL'],
    ['huge TTL', 'PUT', '/v1/cache/keep?ttl=1000000000000', undefined, 400, 'InvalidTTL'],
    ['10 MB body', 'PUT', '/v1/cache/keep', Buffer.alloc(10 * 1024 * 1024, 'x'), 413, 'ValueTooLarge'],
    ['wrong method', 'POST', '/v1/cache/keep', undefined, 405, 'MethodNotAllowed'],
    ['wrong method on /v1/invalidate', 'DELETE', '/v1/invalidate', undefined, 405, 'MethodNotAllowed'],
  ] as const)('%s', async (_name, method, path, body, status, code) => {
    await S.put('keep', 'original', { ttl: 600 });
    await waitFor('keep in L1', async () => (await S.get('keep')).tier === 'L1', 5000, 5);
    const before = { dbsize: await redis.dbsize(), record: await redis.hgetall('rc:keep') };

    const r = await raw(S.port, method, path, body ?? (method === 'PUT' ? Buffer.from('changed') : undefined));
    expect(r.status).toBe(status);
    expect(r.json).toEqual({ error: { code, message: expect.any(String) } });

    expect(await redis.dbsize()).toBe(before.dbsize);
    expect(await redis.hgetall('rc:keep')).toEqual(before.record);
    const after = await S.get('keep');
    expect(after.body).toBe('original');
    expect(after.tier).toBe('L1'); // not even invalidated
  });
});

describe('sidecar single-flight', () => {
  it('64 concurrent misses for one key cause one Redis read', async () => {
    await S.put('sf', 'value');
    const hmgetCalls = async () => Number(/cmdstat_hmget:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
    const before = await hmgetCalls();
    // Hold Redis for 300 ms (less than the 500 ms time box) so that all 64 requests miss while the first
    // read is in the air.
    await redis.call('CLIENT', 'PAUSE', '300', 'ALL');
    const results = await Promise.all(Array.from({ length: 64 }, () => S.get('sf')));
    expect(results.every((r) => r.status === 200 && r.body === 'value')).toBe(true);
    const reads = (await hmgetCalls()) - before;
    console.log(
      `[single-flight] 64 concurrent GETs: ${reads} Redis read(s); tiers ${JSON.stringify(results.reduce<Record<string, number>>((m, r) => ({ ...m, [r.tier ?? '?']: (m[r.tier ?? '?'] ?? 0) + 1 }), {}))}`,
    );
    expect(reads).toBe(1);
    expect(results.filter((r) => r.tier === 'L2').length).toBeGreaterThan(32);
  });
});

describe('sidecar L1 eviction, TTLs and bounds over HTTP', () => {
  it('eviction order is right for each policy (L1-only sidecars with 3 entries)', async () => {
    const start = (policy: string) =>
      startSidecar({ name: policy, args: ['--l1-policy', policy, '--l1-max-entries', '3', '--l1-max-ttl', '0'] });
    const [lru, lfu, fifo, ttl, tinylfu] = await Promise.all(['lru', 'lfu', 'fifo', 'ttl', 'tinylfu'].map(start));
    const present = async (s: SidecarProcess, keys: string[]) => {
      const out: string[] = [];
      for (const k of keys) if ((await s.get(k)).status === 200) out.push(k);
      return out;
    };
    for (const s of [lru!, lfu!, fifo!]) for (const k of ['a', 'b', 'c']) await s.put(k, k);

    await lru!.get('a'); // a is now the most recent; b the least
    await lru!.put('d', 'd');
    expect(await present(lru!, ['a', 'b', 'c', 'd'])).toEqual(['a', 'c', 'd']);

    await fifo!.get('a'); // hits do not matter; a was inserted first
    await fifo!.put('d', 'd');
    expect(await present(fifo!, ['a', 'b', 'c', 'd'])).toEqual(['b', 'c', 'd']);

    for (let i = 0; i < 3; i++) await lfu!.get('a');
    await lfu!.get('c'); // uses: a 4, c 2, b 1
    await lfu!.put('d', 'd'); // evicts b
    await lfu!.put('e', 'e'); // evicts d (1 use, older than nothing else at 1 use)
    expect(await present(lfu!, ['a', 'b', 'c', 'd', 'e'])).toEqual(['a', 'c', 'e']);

    await ttl!.put('a', 'a', { ttl: 300 });
    await ttl!.put('b', 'b', { ttl: 100 });
    await ttl!.put('c', 'c', { ttl: 200 });
    await ttl!.put('d', 'd', { ttl: 400 }); // evicts b, the closest to expiry
    expect(await present(ttl!, ['a', 'b', 'c', 'd'])).toEqual(['a', 'c', 'd']);

    // W-TinyLFU with 3 entries: a 1-entry window in front of probation and protected.
    for (const k of ['a', 'b', 'c']) await tinylfu!.put(k, k);
    for (let i = 0; i < 3; i++) await tinylfu!.get('a'); // a: probation -> protected
    await tinylfu!.put('d', 'd'); // c leaves the window and loses to b (both seen once): c goes
    for (let i = 0; i < 2; i++) await tinylfu!.get('d');
    await tinylfu!.put('e', 'e'); // d (seen 3 times) beats b (once): b goes, d enters probation
    expect(await tinylfu!.metric('ripplecache_sidecar_l1_evictions_total')).toBe(2);
    expect(await present(tinylfu!, ['a', 'b', 'c', 'd', 'e'])).toEqual(['a', 'd', 'e']);

    for (const s of [lru!, lfu!, fifo!, ttl!, tinylfu!]) {
      expect(await s.metric('ripplecache_sidecar_l1_evictions_total')).toBeGreaterThanOrEqual(1);
      await s.stop();
    }
  });

  it('TTLs expire: an L1 entry never outlives the remaining TTL in Redis, nor l1.maxTTL', async () => {
    await S.put('short', 'x', { ttl: 1 });
    expect((await S.get('short')).status).toBe(200);
    expect((await S.get('short')).tier).toBe('L1');
    await sleep(1100);
    expect((await S.get('short')).status).toBe(404);

    const capped = await startSidecar({
      name: 'capped',
      args: ['--redis', primary.url, '--channel', 'ripplecache:it-api', '--l1-max-ttl', '1'],
    });
    await capped.put('long', 'v1', { ttl: 3600 });
    await capped.get('long');
    expect((await capped.get('long')).tier).toBe('L1');
    await redis.hset('rc:long', 'v', 'v2'); // behind the sidecar's back: no invalidation
    expect((await capped.get('long')).body).toBe('v1');
    await sleep(1100);
    const r = await capped.get('long');
    expect(r.body).toBe('v2');
    expect(r.tier).toBe('L2');
    await capped.stop();
  });

  it('the byte bound holds with large values', async () => {
    const s = await startSidecar({ name: 'bytes', args: ['--l1-max-bytes', '1Mi', '--max-value-bytes', '512Ki'] });
    const big = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 30; i++) {
      expect((await s.put(`big${i}`, big)).status).toBe(204);
      expect(await s.metric('ripplecache_sidecar_l1_bytes')).toBeLessThanOrEqual(1024 * 1024);
    }
    expect(await s.metric('ripplecache_sidecar_l1_entries')).toBe(5);
    expect(await s.metric('ripplecache_sidecar_l1_evictions_total')).toBe(25);
    expect((await s.get('big29')).body.length).toBe(200 * 1024);
    expect((await s.get('big0')).status).toBe(404);
    await s.stop();
  });
});

describe('sidecar graceful shutdown', () => {
  it('SIGTERM: readiness fails, the in-flight request finishes, the process exits 0', async () => {
    const s = await startSidecar({ name: 'term', args: ['--redis', primary.url, '--channel', 'ripplecache:it-api'] });
    // An in-flight PUT: headers and half of the body sent.
    const sock = connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let response = '';
    sock.on('data', (d) => {
      response += d.toString();
    });
    sock.write(
      'PUT /v1/cache/inflight HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello',
    );
    await sleep(100);
    const exit = s.signal('SIGTERM');
    await sleep(300);
    // Not ready any more: the listener is closed to new connections.
    await expect(s.readyz()).rejects.toThrow();
    sock.write('world');
    expect(await exit).toBe(0);
    await waitFor('response read', async () => response.includes('\r\n\r\n'), 2000, 10);
    expect(response.split('\r\n')[0]).toBe('HTTP/1.1 204 No Content');
    expect(await redis.hget('rc:inflight', 'v')).toBe('helloworld');
    sock.destroy();
    expect(s.output()).toContain('Received a termination signal; draining');
    expect(s.output()).toContain('Stopped');
  });

  it('a bad flag exits with code 2 and a clear message', async () => {
    await expect(startSidecar({ name: 'bad', args: ['--l1-policy', 'random'], wait: 'healthz' })).rejects.toThrow(
      /exited with code 2 before it was ready:\n.*--l1-policy: "random" is not one of lru, lfu, fifo, ttl/,
    );
  });
});
