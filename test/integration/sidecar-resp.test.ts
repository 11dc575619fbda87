/**
 * The RESP front (`--listen-resp`) and Unix sockets (`--listen unix:…`) through real sidecar processes on a
 * real redis-server and PostgreSQL origin: ioredis, node-redis and `redis-cli` over TCP and Unix sockets;
 * pipelined and concurrent clients; binary values; the write policies and invalidation seen across two
 * sidecars (one used over HTTP, one over RESP); a seeded fuzz of malformed input that must neither crash
 * the sidecar nor grow it nor disturb other connections; socket files (mode bits, a stale file from a
 * killed sidecar, one in use, removal on shutdown).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../fixtures/prng.js';
import { useRedisAndPostgres } from '../harness/origin-fixture.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startSidecar, type SidecarProcess } from '../harness/sidecar.js';
import { trackTempDir } from '../harness/tools.js';

const env = useRedisAndPostgres();
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ripplecache-resp-'));
trackTempDir(dir);

const clients: { disconnect(): void }[] = [];
afterAll(() => {
  for (const c of clients) c.disconnect();
});

function ioredis(options: { port?: number; path?: string; password?: string }): Redis {
  const c = new Redis({ ...options, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: false });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

async function redisCli(args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', args, { timeout: 10_000 });
  return stdout.trim();
}

/** One raw exchange: sends `bytes`, returns everything received until the server closes or `ms` passes. */
function raw(
  target: { port: number } | { path: string },
  bytes: Buffer | string,
  ms = 3000,
): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = 'path' in target ? createConnection(target.path) : createConnection(target.port, '127.0.0.1');
    const got: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed });
    };
    const timer = setTimeout(done, ms);
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('connect', () => sock.write(bytes));
  });
}

function httpOverUnix(
  path: string,
  method: string,
  url: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method, path: url, headers: { host: 'x' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const TABLE = 't_resp';
let A: SidecarProcess; // used over HTTP
let B: SidecarProcess; // used over RESP (TCP and Unix), and HTTP over a Unix socket
let respPort: number;
const respSock = join(dir, 'b-resp.sock');
const httpSock = join(dir, 'b-http.sock');

function groupArgs(db: number, policy: string, table: string): string[] {
  return env.writerArgs({ db, channel: 'ripplecache:it-resp', table, policy });
}

beforeAll(async () => {
  respPort = await freePort();
  [A, B] = await Promise.all([
    startSidecar({ name: 'resp-A', args: groupArgs(1, 'write-through', TABLE) }),
    startSidecar({
      name: 'resp-B',
      args: [
        ...groupArgs(1, 'write-through', TABLE),
        '--listen-resp',
        `127.0.0.1:${respPort}`,
        '--listen-resp',
        `unix:${respSock}`,
        '--listen',
        `unix:${httpSock}`,
        '--socket-mode',
        '0600',
      ],
    }),
  ]);
});

describe('the RESP front with Redis clients', () => {
  it('serves ioredis over TCP and a Unix socket: the data commands with the HTTP API semantics', async () => {
    const tcp = ioredis({ port: respPort });
    const unix = ioredis({ path: respSock });
    expect(await tcp.ping()).toBe('PONG');
    expect(await tcp.set('io:1', 'one', 'EX', 120)).toBe('OK');
    expect(await unix.get('io:1')).toBe('one');
    expect(await tcp.ttl('io:1')).toBeGreaterThan(100);
    expect(await tcp.pttl('io:1')).toBeGreaterThan(100_000);
    expect(await tcp.set('io:2', 'two', 'PX', 60_000)).toBe('OK');
    expect(await tcp.mget('io:1', 'io:2', 'io:none')).toEqual(['one', 'two', null]);
    expect(await tcp.mset('io:3', 'three', 'io:4', 'four')).toBe('OK');
    expect(await tcp.exists('io:3', 'io:4', 'io:none', 'io:3')).toBe(3);
    // Without EX, the --default-ttl (3600 s) applies, as for a PUT without ?ttl=.
    expect(await tcp.ttl('io:3')).toBeGreaterThan(3500);
    expect(await tcp.expire('io:3', 50)).toBe(1);
    expect(await tcp.ttl('io:3')).toBeLessThanOrEqual(50);
    expect(await tcp.expire('io:none', 50)).toBe(0);
    expect(await tcp.ttl('io:none')).toBe(-2);
    expect(await tcp.del('io:3', 'io:4')).toBe(2);
    expect(await unix.get('io:3')).toBeNull();
    expect(await tcp.echo('hé')).toBe('hé');
    expect(await tcp.select(0)).toBe('OK');
    expect(await tcp.client('SETNAME', 'probe')).toBe('OK');
    expect(await tcp.client('GETNAME')).toBe('probe');

    // Binary values, byte for byte, including CRLF and bytes that are not UTF-8.
    const binary = Buffer.from([0, 13, 10, 255, 0x80, 36, 42, 13, 10]);
    expect(await tcp.set('io:bin', binary)).toBe('OK');
    expect(await unix.getBuffer('io:bin')).toEqual(binary);
    // The same value through the HTTP API (stored as application/octet-stream).
    const overHttp = await fetch(`${B.url}/v1/cache/io%3Abin`);
    expect(overHttp.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await overHttp.arrayBuffer())).toEqual(binary);
    const big = Buffer.alloc(512 * 1024, 7);
    expect(await tcp.set('io:big', big)).toBe('OK');
    expect((await unix.getBuffer('io:big'))?.equals(big)).toBe(true);
  });

  it('answers errors with the stable codes of the HTTP API as prefixes, and names what it does not do', async () => {
    const c = ioredis({ port: respPort });
    await expect(c.get(Buffer.from([0xff, 0xfe]))).rejects.toThrow(/^INVALID_KEY the key is not valid UTF-8/);
    await expect(c.get('k'.repeat(1025))).rejects.toThrow(/^INVALID_KEY .*1025 bytes/);
    await expect(c.get('nul\u0000key')).rejects.toThrow(/^INVALID_KEY/);
    await expect(c.set('io:t', 'v', 'EX', 0)).rejects.toThrow(/^INVALID_TTL/);
    await expect(c.set('io:t', 'v', 'PX', 1500)).rejects.toThrow(
      /^INVALID_TTL .*PX must be a multiple of 1000 milliseconds/,
    );
    await expect(c.set('io:t', 'v', 'NX')).rejects.toThrow(/^ERR SET NX is not supported/);
    await expect(c.call('FLUSHALL')).rejects.toThrow(/^ERR unknown command 'FLUSHALL'/);
    await expect(c.call('GET')).rejects.toThrow(/^ERR wrong number of arguments for 'get' command/);
    await expect(c.select(1)).rejects.toThrow(/^ERR DB index is out of range/);
    await expect(c.call('HELLO', '4')).rejects.toThrow(/^NOPROTO/);
    // Over the value limit (1 MiB): refused from the bulk header, then the connection is closed.
    const r = await raw({ port: respPort }, `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${2 * 1024 * 1024}\r\n`);
    expect(r.data.toString()).toMatch(
      /^-VALUE_TOO_LARGE a bulk string of 2097152 bytes is larger than the limit of 1048576 bytes\r\n$/,
    );
    expect(r.closed).toBe(true);
    // The connection that saw errors still works.
    expect(await c.ping()).toBe('PONG');
    expect(await B.metric('ripplecache_sidecar_resp_commands_total', { command: 'get', result: 'INVALID_KEY' })).toBe(
      3,
    );
    expect(
      await B.metric('ripplecache_sidecar_resp_commands_total', { command: 'unknown', result: 'ERR' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('serves node-redis in RESP2 and RESP3 (HELLO 3), over TCP and a Unix socket', async () => {
    for (const [RESP, socket] of [
      [2, { host: '127.0.0.1', port: respPort }],
      [3, { path: respSock }],
    ] as const) {
      const c = createClient({ socket: { ...socket, reconnectStrategy: false }, RESP });
      c.on('error', () => {});
      await c.connect();
      try {
        expect(await c.set(`nr:${RESP}`, 'v', { EX: 60 })).toBe('OK');
        expect(await c.get(`nr:${RESP}`)).toBe('v');
        expect(await c.mGet([`nr:${RESP}`, 'nr:none'])).toEqual(['v', null]);
        expect(await c.del(`nr:${RESP}`)).toBe(1);
        expect(await c.get(`nr:${RESP}`)).toBeNull();
        const hello = (await c.sendCommand(['HELLO', String(RESP)])) as unknown;
        expect(JSON.stringify(hello)).toContain(`"proto"`);
      } finally {
        c.destroy();
      }
    }
  });

  it('serves redis-cli over TCP and a Unix socket, RESP2 and RESP3, including its probes', async () => {
    expect(await redisCli(['-p', String(respPort), 'SET', 'cli:1', 'v1', 'EX', '60'])).toBe('OK');
    expect(await redisCli(['-s', respSock, 'GET', 'cli:1'])).toBe('v1');
    expect(await redisCli(['-3', '-s', respSock, 'GET', 'cli:1'])).toBe('v1');
    expect(await redisCli(['-s', respSock, 'COMMAND', 'COUNT'])).toMatch(/^\d+$/);
    expect(await redisCli(['-s', respSock, 'COMMAND', 'DOCS'])).toBe('');
    expect(await redisCli(['-s', respSock, 'INFO'])).toContain('loading:0');
    // Piped commands (one connection, pipelined).
    const { stdout } = await promisify(execFile)('sh', [
      '-c',
      `printf 'SET cli:2 a\\nGET cli:2\\nDEL cli:2\\nGET cli:2\\n' | redis-cli -s ${respSock}`,
    ]);
    expect(stdout.split('\n').slice(0, 4)).toEqual(['OK', 'a', '1', '']);
  });

  it("answers pipelined commands in order, with a key's commands seen in the order they were sent", async () => {
    const c = ioredis({ path: respSock });
    const p = c.pipeline();
    for (let i = 0; i < 300; i++) {
      p.set('pipe:k', `v${i}`);
      p.get('pipe:k');
      p.ping();
    }
    const results = await p.exec();
    expect(results).toHaveLength(900);
    for (let i = 0; i < 300; i++) {
      expect(results?.[3 * i]).toEqual([null, 'OK']);
      expect(results?.[3 * i + 1]).toEqual([null, `v${i}`]);
      expect(results?.[3 * i + 2]).toEqual([null, 'PONG']);
    }
  });

  it('serves concurrent clients, each seeing its own writes', async () => {
    const many = Array.from({ length: 12 }, (_, i) => ioredis(i % 2 ? { port: respPort } : { path: respSock }));
    await Promise.all(
      many.map(async (c, n) => {
        for (let i = 0; i < 40; i++) {
          await c.set(`conc:${n}`, `${n}-${i}`);
          expect(await c.get(`conc:${n}`)).toBe(`${n}-${i}`);
        }
      }),
    );
    expect(await B.metric('ripplecache_sidecar_resp_connections')).toBeGreaterThanOrEqual(12);
  });

  it('shares writes and invalidations with a sidecar used over HTTP (write-through: the database has them)', async () => {
    const c = ioredis({ port: respPort });
    // RESP write → HTTP read on the other sidecar, and the row in PostgreSQL.
    expect(await c.set('x:1', 'resp-v1')).toBe('OK');
    expect(await A.get('x:1')).toMatchObject({ status: 200, body: 'resp-v1' });
    await waitFor('x:1 in A L1', async () => (await A.get('x:1')).tier === 'L1', 10_000, 20);
    const row = await env.admin.query<{ value: Buffer }>(`SELECT value FROM ${TABLE} WHERE key = $1`, ['x:1']);
    expect(row.rows[0]?.value.toString()).toBe('resp-v1');
    // RESP write again: A's L1 copy is invalidated.
    expect(await c.set('x:1', 'resp-v2')).toBe('OK');
    await waitFor('A sees resp-v2', async () => (await A.get('x:1')).body === 'resp-v2', 10_000, 20);
    // HTTP write on A → B's L1 (filled over RESP) is invalidated.
    expect(await c.get('x:1')).toBe('resp-v2');
    expect((await A.put('x:1', 'http-v3')).status).toBe(204);
    await waitFor('B sees http-v3 over RESP', async () => (await c.get('x:1')) === 'http-v3', 10_000, 20);
    // DEL over RESP → gone on A.
    expect(await c.del('x:1')).toBe(1);
    await waitFor('A sees x:1 gone', async () => (await A.get('x:1')).status === 404, 10_000, 20);
    // Read-through over RESP: a row the application wrote itself.
    await env.admin.query(`INSERT INTO ${TABLE} (key, value, content_type, version) VALUES ($1, $2, $3, 1)`, [
      'x:db',
      Buffer.from('from-db'),
      'text/plain',
    ]);
    expect(await c.get('x:db')).toBe('from-db');
    // The HTTP API over B's Unix socket.
    expect(await httpOverUnix(httpSock, 'GET', '/v1/cache/x%3Adb')).toEqual({ status: 200, body: 'from-db' });
    expect(
      await B.metric('ripplecache_sidecar_requests_total', { operation: 'get', tier: 'origin', outcome: 'hit' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('survives a seeded fuzz of malformed frames, huge lengths and nested arrays, bounded, other clients unaffected', async () => {
    const bystander = ioredis({ port: respPort });
    await bystander.set('fuzz:bystander', 'still-here');
    const rssBefore = rssBytes(B.pid);
    const random = prng(20261202);
    const fixed = [
      '*1\r\n$536870912\r\n', // a 512 MiB bulk header
      `*${2 ** 40}\r\n`, // a huge multibulk count
      '*2\r\n*2\r\n*2\r\n*2\r\n$1\r\na\r\n', // nested arrays
      '*1\r\n$-1\r\n',
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabcdef\r\n', // bulk longer than announced
      `GET ${'a'.repeat(70 * 1024)}\r\n`, // an inline line over 64 KiB
      'x'.repeat(200 * 1024), // no newline at all
      '"unbalanced\r\n',
    ];
    const alphabet = ['*', '$', '\r\n', '-', '1', '9', '0', 'GET', 'SET', ' ', '"', '\x00', '\xff', '*3\r\n', '$5\r\n'];
    const inputs: string[] = [...fixed];
    for (let i = 0; i < 60; i++) {
      let s = '';
      const n = 1 + Math.floor(random() * 40);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(random() * alphabet.length)];
      inputs.push(s);
    }
    for (const [i, input] of inputs.entries()) {
      const target = i % 2 ? { port: respPort } : { path: respSock };
      const r = await raw(target, Buffer.from(input, 'latin1'), i < fixed.length ? 5000 : 200);
      const text = r.data.toString('latin1');
      // Either a reply to what could be read (an error, or replies to the valid commands before the bad
      // input), or nothing while the client is mid-command: never a hang of the server, never a crash.
      if (i < fixed.length) {
        expect(text, `input ${i}`).toMatch(/-(ERR Protocol error|VALUE_TOO_LARGE|ERR unknown command)/);
      }
      expect(await bystander.get('fuzz:bystander')).toBe('still-here');
    }
    expect(await redisCli(['-p', String(respPort), 'PING'])).toBe('PONG');
    // Nothing was buffered for the huge lengths: RSS grew by far less than one of them.
    expect(rssBytes(B.pid) - rssBefore).toBeLessThan(64 * 1024 * 1024);
    expect(
      await B.metric('ripplecache_sidecar_resp_connections_closed_on_error_total', { reason: 'too-large' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      await B.metric('ripplecache_sidecar_resp_connections_closed_on_error_total', { reason: 'malformed' }),
    ).toBeGreaterThanOrEqual(5);
  });
});

describe('write-back and AUTH over RESP', () => {
  it('write-back: SETs are acknowledged from the journal and reach the database; AUTH is required when set', async () => {
    const port = await freePort();
    const table = 't_resp_wb';
    const W = await startSidecar({
      name: 'resp-wb',
      args: [...groupArgs(2, 'write-back', table), '--listen-resp', `127.0.0.1:${port}`],
      env: { RIPPLECACHE_RESP_PASSWORD: 'resp-secret' },
    });
    const anonymous = ioredis({ port });
    // ioredis starts with HELLO, which redis-server (and the sidecar) refuse before AUTH.
    await expect(anonymous.get('wb:1')).rejects.toThrow(/^NOAUTH/);
    const inline = await raw({ port }, 'GET wb:1\r\nAUTH wrong\r\nAUTH resp-secret\r\nGET wb:none\r\n', 1000);
    expect(inline.data.toString()).toBe(
      '-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n$-1\r\n',
    );
    const c = ioredis({ port, password: 'resp-secret' });
    const p = c.pipeline();
    for (let i = 0; i < 200; i++) p.set(`wb:${i}`, `v${i}`);
    const results = await p.exec();
    expect(results?.every(([err, r]) => err === null && r === 'OK')).toBe(true);
    await waitFor(
      'write-back rows',
      async () => {
        const r = await env.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE value IS NOT NULL`);
        return Number(r.rows[0]?.n) === 200;
      },
      20_000,
      100,
    );
    expect(await c.get('wb:7')).toBe('v7');
    expect(W.output()).not.toContain('resp-secret');
    await W.stop();
  });
});

describe('Unix sockets', () => {
  it('applies the mode, replaces a stale socket file, refuses one in use, and removes them on shutdown', async () => {
    const http = join(dir, 'u-http.sock');
    const resp = join(dir, 'u-resp.sock');
    const args = ['--listen', `unix:${http}`, '--listen-resp', `unix:${resp}`, '--socket-mode', '0640'];
    // B (0600) and this one (0640): the modes given.
    expect(statSync(respSock).mode & 0o777).toBe(0o600);
    expect(statSync(httpSock).mode & 0o777).toBe(0o600);
    const first = await startSidecar({ name: 'unix-1', args });
    expect(statSync(http).isSocket()).toBe(true);
    expect(statSync(http).mode & 0o777).toBe(0o640);
    expect(statSync(resp).mode & 0o777).toBe(0o640);
    // A second sidecar on the same sockets: refused, exit code 1, the first one untouched.
    const second = await startSidecar({ name: 'unix-2', args, wait: 'none' });
    await waitFor('unix-2 exits', async () => second.output().includes('is in use'), 20_000, 100);
    expect(await second.signal('SIGTERM')).toBe(1);
    expect(await httpOverUnix(http, 'GET', '/healthz')).toMatchObject({ status: 200 });
    // Killed: the socket files stay behind, stale; a new sidecar replaces them.
    await first.signal('SIGKILL');
    expect(existsSync(http) && existsSync(resp)).toBe(true);
    const third = await startSidecar({ name: 'unix-3', args });
    expect(await redisCli(['-s', resp, 'PING'])).toBe('PONG');
    expect(await httpOverUnix(http, 'PUT', '/v1/cache/u', 'v')).toMatchObject({ status: 204 });
    expect(await redisCli(['-s', resp, 'GET', 'u'])).toBe('v');
    // SIGTERM: both files removed.
    expect(await third.signal('SIGTERM')).toBe(0);
    expect(existsSync(http)).toBe(false);
    expect(existsSync(resp)).toBe(false);
  });
});
