/**
 * What the sidecar does with hostile or sloppy HTTP input, over real sockets against real sidecar
 * processes (redis-server and PostgreSQL behind one of them): `ttl` values, keys PostgreSQL cannot hold,
 * any Content-Type, requests Node's parser refuses, `Expect: 100-continue`, the README's invalidate example
 * run with curl, and a seeded fuzz of malformed requests.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../fixtures/prng.js';
import { useRedisAndPostgres } from '../harness/origin-fixture.js';
import { startSidecar, type SidecarProcess } from '../harness/sidecar.js';

const env = useRedisAndPostgres();
const run = promisify(execFile);

const TABLE = 'http_input';
/** Write-through to PostgreSQL, Redis in front. */
let P: SidecarProcess;
/** L1-only, values of at most 1 KiB: Expect and the fuzz. */
let L: SidecarProcess;

beforeAll(async () => {
  [P, L] = await Promise.all([
    startSidecar({
      name: 'P',
      args: [
        '--redis',
        `${env.redis.url}/3`,
        '--channel',
        'ripplecache:it-http-input',
        '--origin',
        env.pg.url,
        '--origin-table',
        TABLE,
      ],
    }),
    startSidecar({ name: 'L', args: ['--max-value-bytes', '1Ki'] }),
  ]);
  // The origin creates its table on first use.
  expect((await P.put('init', 'x')).status).toBe(204);
}, 60_000);

interface Exchange {
  /** Every byte the server sent. */
  raw: Buffer;
  /** The server closed its side with a FIN. */
  ended: boolean;
  /** A socket error (e.g. ECONNRESET), if any. */
  error: string | undefined;
  timedOut: boolean;
}

/**
 * Writes `chunks` on a fresh connection (each after the previous was flushed) and reads until the server
 * closes. With `end`, half-closes after writing (Node then aborts a request still in progress: only for
 * requests that are cut short).
 */
function exchange(
  port: number,
  chunks: (string | Buffer)[],
  opts: { end?: boolean; timeoutMs?: number; until?: (raw: Buffer) => boolean } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let ended = false;
    let error: string | undefined;
    let timedOut = false;
    const s = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, opts.timeoutMs ?? 10_000);
    s.on('data', (d: Buffer) => {
      parts.push(d);
      if (opts.until?.(Buffer.concat(parts))) s.end();
    });
    s.on('end', () => {
      ended = true;
      s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ raw: Buffer.concat(parts), ended, error, timedOut });
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        await new Promise<void>((r) => s.write(c, () => r()));
      }
      if (opts.end === true && !s.destroyed) s.end();
    });
  });
}

interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses the responses in `raw` (Content-Length bodies only); throws on anything malformed. */
function parseResponses(raw: Buffer, method = 'GET'): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end === -1) throw new Error(`incomplete response head: ${JSON.stringify(raw.subarray(at).toString('latin1'))}`);
    const [statusLine = '', ...lines] = raw.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) [\x20-\x7e]*$/.exec(statusLine);
    if (!m) throw new Error(`malformed status line: ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
      if (!h?.[1]) throw new Error(`malformed header line: ${JSON.stringify(line)}`);
      headers[h[1].toLowerCase()] = h[2] ?? '';
    }
    const status = Number(m[1]);
    at = end + 4;
    if (headers['transfer-encoding'] !== undefined) throw new Error('unexpected chunked response');
    const noBody = status < 200 || status === 204 || status === 304 || method === 'HEAD';
    const length = noBody ? 0 : Number(headers['content-length'] ?? NaN);
    if (!Number.isInteger(length)) throw new Error(`response ${status} without a Content-Length`);
    if (at + length > raw.length) throw new Error(`response ${status} body cut short`);
    out.push({ status, headers, body: raw.subarray(at, at + length) });
    at += length;
  }
  return out;
}

/** The error code of a response whose body must be the API's JSON error. */
function errorCode(r: ParsedResponse): string {
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const json = JSON.parse(r.body.toString()) as unknown;
  expect(json).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
  return (json as { error: { code: string } }).error.code;
}

/** A well-formed request; the server closes the connection after answering it. */
const request = (method: string, path: string, headers: string[] = [], body = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}` +
  `${body || method === 'PUT' || method === 'POST' ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;

/** One request on its own connection; its one response. */
async function one(port: number, text: string | Buffer, method = 'GET'): Promise<ParsedResponse> {
  const x = await exchange(port, [text]);
  expect(x.timedOut).toBe(false);
  const responses = parseResponses(x.raw, method);
  expect(responses).toHaveLength(1);
  return responses[0] as ParsedResponse;
}

describe('ttl: plain decimal digits, 1..315360000', () => {
  it.each(['1e309', 'Infinity', '0x10', '1e3', '+5', '%2B5', '%201', '1%20', '', '0', '315360001', '1&ttl=2'])(
    'PUT ?ttl=%s → 400 InvalidTTL, and nothing reaches Redis or PostgreSQL',
    async (ttl) => {
      const key = `ttl-${encodeURIComponent(ttl)}`;
      const r = await one(P.port, request('PUT', `/v1/cache/${encodeURIComponent(key)}?ttl=${ttl}`, [], 'x'), 'PUT');
      expect(r.status).toBe(400);
      expect(errorCode(r)).toBe('InvalidTTL');
      expect(await env.rawClient(3).exists(`rc:${key}`)).toBe(0);
      const rows = await env.admin.query(`SELECT 1 FROM ${TABLE} WHERE key = $1`, [key]);
      expect(rows.rowCount).toBe(0);
    },
  );

  it('ttl=010 is ten seconds in Redis', async () => {
    const r = await one(P.port, request('PUT', '/v1/cache/ttl-ten?ttl=010', [], 'x'), 'PUT');
    expect(r.status).toBe(204);
    const pttl = await env.rawClient(3).pttl('rc:ttl-ten');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(10_000);
  });
});

/** Calls sidecar P made to PostgreSQL so far (every operation and outcome). */
async function originCalls(): Promise<number> {
  let sum = 0;
  for (const line of (await P.metrics()).split('\n'))
    if (line.startsWith('ripplecache_sidecar_origin_requests_total{')) sum += Number(line.split(' ').pop());
  return sum;
}

describe('a key PostgreSQL cannot hold (NUL) is InvalidKey on every route', () => {
  it.each([
    ['GET', '/v1/cache/a%00b', ''],
    ['HEAD', '/v1/cache/a%00b', ''],
    ['GET', '/v1/cache/a%00b?consistency=all', ''],
    ['PUT', '/v1/cache/a%00b', 'x'],
    ['DELETE', '/v1/cache/a%00b', ''],
    ['POST', '/v1/invalidate', '{"keys":["a\\u0000b"]}'],
    ['POST', '/v1/invalidate', '{"keys":["a\\u0000b"],"tier":"all"}'],
  ])('%s %s → 400 InvalidKey', async (method, path, body) => {
    const before = await originCalls();
    const r = await one(P.port, request(method, path, [], body), method);
    expect(r.status).toBe(400);
    if (method !== 'HEAD') expect(errorCode(r)).toBe('InvalidKey');
    // Refused before PostgreSQL was asked.
    expect(await originCalls()).toBe(before);
  });
});

describe('any Content-Type is stored as sent', () => {
  it.each([
    ['empty', 'Content-Type: ', 'application/octet-stream'],
    ['absent', '', 'application/octet-stream'],
    ['no slash', 'Content-Type: text', 'text'],
    ['separators only', 'Content-Type: ;;;', ';;;'],
    ['spaces around', 'Content-Type:    text/plain   ', 'text/plain'],
    ['multipart without a boundary', 'Content-Type: multipart/form-data', 'multipart/form-data'],
    ['form', 'Content-Type: application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    ['JSON, body not JSON', 'Content-Type: application/json', 'application/json'],
    ['unterminated quote', 'Content-Type: text/plain; charset="x', 'text/plain; charset="x'],
    ['Latin-1 byte', Buffer.from('Content-Type: text/caf\u00e9', 'latin1'), 'text/caf\u00e9'],
  ])('%s → 204; GET answers it with the bytes; the PostgreSQL row has it', async (name, header, expected) => {
    const key = `ct-${name.replace(/\W+/g, '-')}`;
    const body = Buffer.from('{"not json', 'latin1');
    const head = Buffer.concat([
      Buffer.from(`PUT /v1/cache/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`),
      typeof header === 'string'
        ? Buffer.from(header ? `${header}\r\n` : '')
        : Buffer.concat([header, Buffer.from('\r\n')]),
      Buffer.from(`Content-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
    const w = await one(P.port, head, 'PUT');
    expect(w.status).toBe(204);
    for (const tier of ['L2', 'L1']) {
      const g = await one(P.port, request('GET', `/v1/cache/${key}`));
      expect(g.status).toBe(200);
      expect(g.headers['x-cache']).toBe(tier);
      expect(g.headers['content-type']).toBe(expected);
      expect(g.body.equals(body)).toBe(true);
    }
    const row = await env.admin.query<{ content_type: string }>(`SELECT content_type FROM ${TABLE} WHERE key = $1`, [
      key,
    ]);
    expect(row.rows[0]?.content_type).toBe(expected);
  });
});

/** Requests Node's parser (or its Host check) refuses, with the answer they must get. */
const MALFORMED: [string, string, number, string][] = [
  ['malformed request line', 'GARBAGE\r\n\r\n', 400, 'BadRequest'],
  ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 400, 'BadRequest'],
  [
    'headers over 16 KiB',
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    431,
    'HeadersTooLarge',
  ],
  [
    'many headers over 16 KiB',
    `GET /healthz HTTP/1.1\r\nHost: x\r\n${'X-A: aaaaaaaaaa\r\n'.repeat(1500)}\r\n`,
    431,
    'HeadersTooLarge',
  ],
  [
    'bad chunk size',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    400,
    'BadRequest',
  ],
  [
    'chunk without CRLF',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n',
    400,
    'BadRequest',
  ],
  ['control character in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400, 'BadRequest'],
  ['space in a header name', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n', 400, 'BadRequest'],
  ['bad Content-Length', 'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'BadRequest'],
  [
    'two different Content-Lengths',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy',
    400,
    'BadRequest',
  ],
  [
    'Content-Length and chunked',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
    'BadRequest',
  ],
  ['NUL in the request line', 'GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BadRequest'],
  ['bare LF line endings', 'GET /healthz HTTP/1.1\nHost: x\n\n', 400, 'BadRequest'],
  [
    'body cut short (client half-closes)',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort',
    400,
    'BadRequest',
  ],
  [
    'unknown expectation',
    'PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx',
    417,
    'ExpectationFailed',
  ],
];

describe("requests Node's HTTP parser refuses get the API's JSON error and a clean close", () => {
  it.each(MALFORMED)('%s → %i %s, Connection: close, FIN without reset', async (name, text, status, code) => {
    const x = await exchange(L.port, [Buffer.from(text, 'latin1')], { end: name.includes('half-closes') });
    expect(x.timedOut).toBe(false);
    expect(x.error).toBeUndefined();
    expect(x.ended).toBe(true);
    const responses = parseResponses(x.raw);
    expect(responses).toHaveLength(1);
    const r = responses[0] as ParsedResponse;
    expect(r.status).toBe(status);
    expect(r.headers.connection).toBe('close');
    expect(errorCode(r)).toBe(code);
  });

  it.each(MALFORMED.filter(([name]) => !name.includes('client half-closes')))(
    '%s, with a next request right behind it on the same connection: still one answer, then FIN, no reset',
    async (_name, text, status) => {
      // The client does not wait for the answer: the next request is already on the wire (the case that
      // was reset before), and the client keeps its side open until the server closes.
      const x = await exchange(L.port, [Buffer.from(text, 'latin1'), request('GET', '/healthz')]);
      expect(x.timedOut).toBe(false);
      expect(x.error).toBeUndefined();
      expect(x.ended).toBe(true);
      const responses = parseResponses(x.raw);
      expect(responses[0]?.status).toBe(status);
      expect(responses[0]?.headers.connection).toBe('close');
      expect(responses).toHaveLength(1);
    },
  );

  it('a malformed request pipelined behind good ones is answered after them, in order', async () => {
    const x = await exchange(L.port, [
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
        'PUT /v1/cache/pipelined HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok' +
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    ]);
    expect(x.timedOut).toBe(false);
    expect(x.error).toBeUndefined();
    expect(x.ended).toBe(true);
    const responses = parseResponses(x.raw);
    expect(responses.map((r) => r.status)).toEqual([200, 204, 431]);
    expect(responses[2]?.headers.connection).toBe('close');
    expect(errorCode(responses[2] as ParsedResponse)).toBe('HeadersTooLarge');
    expect((await L.get('pipelined')).body).toBe('ok');
  });

  it('the sidecar answers normally afterwards', async () => {
    expect((await L.readyz()).status).toBe(200);
  });
});

describe('Expect: 100-continue', () => {
  it('a Content-Length over --max-value-bytes gets 413 instead of 100 Continue', async () => {
    const x = await exchange(L.port, [
      'PUT /v1/cache/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n',
    ]);
    expect(x.raw.toString('latin1')).not.toContain('100 Continue');
    expect(x.error).toBeUndefined();
    expect(x.ended).toBe(true);
    const responses = parseResponses(x.raw, 'PUT');
    expect(responses).toHaveLength(1);
    expect(responses[0]?.status).toBe(413);
    expect(responses[0]?.headers.connection).toBe('close');
    expect(errorCode(responses[0] as ParsedResponse)).toBe('ValueTooLarge');
    expect((await L.get('big')).status).toBe(404);
  });

  it('a body within the limit gets 100 Continue, then 204 once sent; the value is stored', async () => {
    const body = 'v'.repeat(1024);
    let stage = 0;
    const received: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = connect(L.port, '127.0.0.1');
      s.on('error', reject);
      s.on('data', (d: Buffer) => {
        received.push(d);
        const text = Buffer.concat(received).toString('latin1');
        if (stage === 0 && text.includes('\r\n\r\n')) {
          stage = 1;
          expect(text).toBe('HTTP/1.1 100 Continue\r\n\r\n');
          s.write(body);
        } else if (stage === 1 && /\r\n\r\n[\s\S]*HTTP\/1\.1 204 /.test(text) && text.endsWith('\r\n\r\n')) {
          stage = 2;
          s.end();
          resolve();
        }
      });
      s.write(
        `PUT /v1/cache/small HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
    });
    expect(stage).toBe(2);
    const responses = parseResponses(Buffer.concat(received), 'PUT');
    expect(responses.map((r) => r.status)).toEqual([100, 204]);
    expect((await L.get('small')).body).toBe(body);
  });

  it('the invalidate route has its own (larger) limit: 413 over it, 100 under', async () => {
    const over = await exchange(L.port, [
      'POST /v1/invalidate HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n',
    ]);
    const r = parseResponses(over.raw, 'POST');
    expect(r.map((x) => x.status)).toEqual([413]);
    const under = await exchange(L.port, [
      'POST /v1/invalidate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n',
      '{"all":true}',
    ]);
    expect(parseResponses(under.raw, 'POST').map((x) => x.status)).toEqual([100, 200]);
  });
});

describe('Expect: 100-continue on the batch and invalidate routes', () => {
  /** Only the head: the answer to the expectation decides whether a body would follow. */
  const head = (path: string, length: number) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`;

  it('a batch over 16 MiB gets 413 BatchTooLarge; one of 3 MB (over 2 MiB) gets 100 Continue', async () => {
    const over = parseResponses((await exchange(L.port, [head('/v1/batch', 16 * 1024 * 1024 + 1)])).raw, 'POST');
    expect(over.map((r) => r.status)).toEqual([413]);
    expect(errorCode(over[0] as ParsedResponse)).toBe('BatchTooLarge');
    const under = await exchange(L.port, [head('/v1/batch', 3_000_000)], {
      until: (raw) => raw.toString('latin1').includes('\r\n\r\n'),
    });
    // (The client then hangs up without the body, which the server answers 400: only the first answer counts.)
    expect(under.raw.toString('latin1')).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
  });

  it('an invalidate body over 8 MiB gets 413 BodyTooLarge naming the limit', async () => {
    const over = parseResponses((await exchange(L.port, [head('/v1/invalidate', 8 * 1024 * 1024 + 1)])).raw, 'POST');
    expect(over.map((r) => r.status)).toEqual([413]);
    expect(JSON.parse((over[0] as ParsedResponse).body.toString())).toEqual({
      error: { code: 'BodyTooLarge', message: `the body is larger than the limit of ${8 * 1024 * 1024} bytes` },
    });
  });
});

describe('CONNECT', () => {
  it('gets 400 BadRequest with a JSON body and Connection: close (not a silent close)', async () => {
    const x = await exchange(L.port, ['CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n']);
    const r = parseResponses(x.raw, 'CONNECT');
    expect(r.map((y) => y.status)).toEqual([400]);
    expect(r[0]?.headers.connection).toBe('close');
    expect(errorCode(r[0] as ParsedResponse)).toBe('BadRequest');
    expect((await L.readyz()).status).toBe(200);
  });
});

describe('a non-ASCII Content-Type: header bytes are ISO-8859-1 characters, as HTTP defines them', () => {
  const utf8Bytes = Buffer.from('UTF8/ünï', 'utf8');

  it('UTF-8 bytes sent over HTTP: the same bytes back over HTTP; a batch shows them one character per byte', async () => {
    const put = Buffer.concat([
      Buffer.from('PUT /v1/cache/ct-http HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ', 'latin1'),
      utf8Bytes,
      Buffer.from('\r\nContent-Length: 1\r\n\r\nv', 'latin1'),
    ]);
    expect((await one(P.port, put, 'PUT')).status).toBe(204);
    const got = await one(P.port, request('GET', '/v1/cache/ct-http'));
    expect(Buffer.from(got.headers['content-type'] ?? '', 'latin1')).toEqual(utf8Bytes);
    const body = JSON.stringify({ ops: [{ op: 'get', key: 'ct-http' }] });
    const batch = await one(P.port, request('POST', '/v1/batch', [], body), 'POST');
    expect(JSON.parse(batch.body.toString()).results[0]).toMatchObject({
      status: 200,
      contentType: utf8Bytes.toString('latin1'),
    });
  });

  it('a batch put of "text/ü" is read over HTTP as the ISO-8859-1 byte of ü; one beyond U+00FF is refused', async () => {
    const body = JSON.stringify({
      ops: [
        { op: 'put', key: 'ct-batch', value: 'v', contentType: 'text/ü' },
        { op: 'put', key: 'ct-euro', value: 'v', contentType: 'text/€' },
      ],
    });
    const batch = await one(P.port, request('POST', '/v1/batch', [], body), 'POST');
    expect(batch.status).toBe(200);
    expect(JSON.parse(batch.body.toString()).results).toMatchObject([
      { status: 204 },
      {
        status: 400,
        error: { code: 'InvalidRequest', message: 'ops[1].contentType must be a non-empty string a header can carry' },
      },
    ]);
    const got = await one(P.port, request('GET', '/v1/cache/ct-batch'));
    expect(Buffer.from(got.headers['content-type'] ?? '', 'latin1')).toEqual(
      Buffer.from([...Buffer.from('text/'), 0xfc]),
    );
    expect((await one(P.port, request('GET', '/v1/cache/ct-euro'))).status).toBe(404);
  });
});

describe("the README's invalidate example", () => {
  /** The README's line, pointed at sidecar P. */
  const readmeLine = () => {
    const line = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('curl -X POST') && l.includes('/v1/invalidate'));
    if (line === undefined) throw new Error('README.md has no curl -X POST … /v1/invalidate line');
    return line.replace('http://127.0.0.1:7070', P.url);
  };

  it('works as written, run with the real curl', async () => {
    const put = await P.put('user:42', '{"name":"Ada"}', { contentType: 'application/json', ttl: 300 });
    expect(put.status).toBe(204);
    expect((await P.get('user:42')).tier).toBe('L2');
    expect((await P.get('user:42')).tier).toBe('L1');
    let curl = true;
    try {
      await run('curl', ['--version']);
    } catch {
      curl = false;
    }
    let answer: string;
    if (curl) {
      answer = (await run('bash', ['-c', `${readmeLine().replace(/^curl /, 'curl -sS ')}`])).stdout;
    } else {
      // The bytes curl sends for that line: `-d` labels the body application/x-www-form-urlencoded.
      const body = /-d '([^']*)'/.exec(readmeLine())?.[1] ?? '';
      const x = await exchange(
        P.port,
        [
          `POST /v1/invalidate HTTP/1.1\r\nHost: 127.0.0.1:${P.port}\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n` +
            `Content-Length: ${body.length}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n${body}`,
        ],
        { until: (raw) => /\r\n\r\n\{.*\}$/s.test(raw.toString()) },
      );
      answer = parseResponses(x.raw, 'POST')[0]?.body.toString() ?? '';
    }
    expect(JSON.parse(answer)).toEqual({ keys: 1, tier: 'l1', published: true });
    // L1 dropped; Redis still has it.
    expect((await P.get('user:42')).tier).toBe('L2');
  });

  it('a body that is not JSON is 400 InvalidBody, whatever its Content-Type', async () => {
    for (const ct of ['application/x-www-form-urlencoded', 'application/json', 'text/plain']) {
      const r = await one(P.port, request('POST', '/v1/invalidate', [`Content-Type: ${ct}`], 'keys=user:42'), 'POST');
      expect(r.status).toBe(400);
      expect(errorCode(r)).toBe('InvalidBody');
    }
  });
});

describe('fuzz: 2,000 malformed requests (seeded)', () => {
  const METHODS = [
    'GET',
    'PUT',
    'POST',
    'DELETE',
    'HEAD',
    'PATCH',
    'OPTIONS',
    'G\x00T',
    'get',
    'CONNECT',
    '',
    'PUT PUT',
  ];
  const PATHS = [
    '/v1/cache/k',
    '/v1/cache/a%00b',
    '/v1/cache/%FF',
    '/v1/invalidate',
    '/healthz',
    '/readyz',
    '*',
    '',
    '/v1/cache/k?ttl=1e3',
    `/v1/cache/${'k'.repeat(3000)}`,
    'http://x/v1/cache/k',
    '/v1/cache/k?consistency=all',
  ];
  const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'HTTP/9.9', 'http/1.1', ''];
  const HEADERS = [
    'Host: x',
    'Content-Type: ',
    'Content-Type: ;;',
    'Content-Type: application/json',
    'Content-Length: 5',
    'Content-Length: -1',
    'Content-Length: 99999999',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: gzip, chunked',
    'Expect: 100-continue',
    'Expect: nothing',
    'Connection: close',
    'Connection: keep-alive',
    'X-A: \x7f',
    ': empty-name',
    'NoColon',
    ' Folded: header',
    `X-Long: ${'y'.repeat(17_000)}`,
  ];
  const BODIES = [
    '',
    'hello',
    '{"keys":["k"]}',
    '{"all":true}',
    '5\r\nhello\r\n0\r\n\r\n',
    'zz\r\n',
    '\x00\xff\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n',
  ];

  function generate(next: () => number): Buffer {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
    const headers: string[] = [];
    const n = Math.floor(next() * 5);
    for (let i = 0; i < n; i++) headers.push(pick(HEADERS));
    if (next() < 0.7) headers.unshift('Host: 127.0.0.1');
    const eol = next() < 0.9 ? '\r\n' : pick(['\n', '\r', '\r\r\n']);
    const text = `${pick(METHODS)} ${pick(PATHS)} ${pick(VERSIONS)}${eol}${headers.map((h) => h + eol).join('')}${eol}${pick(BODIES)}`;
    // Byte-level damage: flips, inserts, cuts.
    const bytes = Buffer.from(text, 'latin1');
    const damage = Math.floor(next() * 4);
    let out = bytes;
    for (let i = 0; i < damage; i++) {
      const at = Math.floor(next() * out.length);
      const kind = next();
      if (kind < 0.4) {
        out = Buffer.from(out);
        out[at] = Math.floor(next() * 256);
      } else if (kind < 0.7) {
        out = Buffer.concat([out.subarray(0, at), Buffer.from([Math.floor(next() * 256)]), out.subarray(at)]);
      } else {
        out = out.subarray(0, at);
      }
    }
    return out;
  }

  it('the sidecar never crashes, every answer is well-formed HTTP with a JSON error body, no 500', async () => {
    const next = prng(20_261_202);
    const inputs = Array.from({ length: 2000 }, () => generate(next));
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let cursor = 0;
    const worker = async () => {
      while (cursor < inputs.length) {
        const input = inputs[cursor++] as Buffer;
        // Half-closed after writing, so that a request cut short is answered at once.
        const x = await exchange(L.port, [input], { end: true, timeoutMs: 15_000 });
        const where = JSON.stringify(input.subarray(0, 200).toString('latin1'));
        if (x.timedOut) {
          failures.push(`no close within 15 s for ${where}`);
          continue;
        }
        let responses: ParsedResponse[];
        try {
          responses = parseResponses(x.raw);
        } catch (err) {
          // A HEAD's answer has no body (unless the parser refused the request before knowing it was one).
          try {
            responses = parseResponses(x.raw, 'HEAD');
          } catch {
            failures.push(`${(err as Error).message} for ${where}`);
            continue;
          }
        }
        for (const r of responses) {
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status >= 500) failures.push(`${r.status} for ${where}`);
          if (r.status >= 400 && r.body.length > 0) {
            try {
              const json = JSON.parse(r.body.toString()) as { error?: { code?: unknown; message?: unknown } };
              if (typeof json.error?.code !== 'string' || typeof json.error.message !== 'string')
                failures.push(`error body without code and message for ${where}`);
            } catch {
              failures.push(`${r.status} with a body that is not JSON for ${where}`);
            }
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(failures.slice(0, 20)).toEqual([]);
    // The fuzz reached the parser's refusals, not only the routes.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(100);
    expect(L.output()).not.toContain('Failed to handle a request');
    expect((await L.readyz()).status).toBe(200);
    expect((await L.put('after-fuzz', 'ok')).status).toBe(204);
    expect((await L.get('after-fuzz')).body).toBe('ok');
  }, 300_000);
});
