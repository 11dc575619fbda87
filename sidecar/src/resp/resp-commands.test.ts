import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { InvalidationPublisher } from '../invalidation/invalidation-publisher.js';
import { validateKey } from '../key.js';
import { createL1Store } from '../l1/create-l1-store.js';
import { createSidecarMetrics } from '../metrics.js';
import { TieredCache, type CacheValue } from '../tiers/tiered-cache.js';
import type { WritePolicyHandler } from '../write/write-policy.js';
import {
  COMMANDS,
  commandKeys,
  respErrorPrefix,
  RespCommandError,
  unknownCommandMessage,
  type RespBackend,
  type RespSession,
} from './resp-commands.js';
import { toBuffer, writeValue, type Output, type RespValue } from './resp-encoder.js';

/** An L1-only sidecar's backend (no Redis, no I/O), with an optional write policy that records its calls. */
function backend(options: { writer?: WritePolicyHandler; password?: string } = {}): RespBackend {
  const cache = new TieredCache({
    l1: createL1Store<CacheValue>('lru', { maxEntries: 100, maxBytes: 1e6 }),
    publisher: new InvalidationPublisher('me'),
    clock: () => 1_000,
    l1MaxTTLMs: 0,
    onDisconnect: 'drop',
  });
  const metrics = createSidecarMetrics({ l1Entries: () => 0, l1Bytes: () => 0, redisUp: () => 0, subscribed: () => 1 });
  return {
    cache,
    ...(options.writer ? { writer: options.writer } : {}),
    checkKey: (k) => void validateKey(k),
    metrics,
    defaultTTLSeconds: 3600,
    maxValueBytes: 1024,
    password: options.password,
    version: 'test',
  };
}

function session(): RespSession {
  return {
    id: 7,
    protocol: 2,
    name: '',
    libName: '',
    libVersion: '',
    authenticated: true,
    remote: 'unix',
    createdAt: 0,
    closeAfterReply: false,
  };
}

/** Runs a command as the connection does (arity is the connection's check) and returns its RESP bytes. */
async function run(b: RespBackend, s: RespSession, ...args: (string | Buffer)[]): Promise<string> {
  const argv = args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a));
  const spec = COMMANDS.get((argv[0] as Buffer).toString().toLowerCase());
  if (spec === undefined) throw new Error('unknown');
  let value: RespValue;
  try {
    value = await spec.run(b, s, argv);
  } catch (err) {
    if (err instanceof RespCommandError) return `-${err.prefix} ${err.message}`;
    const code = (err as { code?: ErrorCode }).code;
    if (code !== undefined) return `-${respErrorPrefix(code)} ${(err as Error).message}`;
    throw err;
  }
  const out: Output = [];
  writeValue(out, value, s.protocol);
  return toBuffer(out).toString('latin1');
}

describe('RESP commands on an L1-only sidecar', () => {
  it('SET, GET, MGET, MSET, EXISTS, DEL, EXPIRE mean what the HTTP calls mean', async () => {
    const b = backend();
    const s = session();
    expect(await run(b, s, 'SET', 'a', 'one')).toBe('+OK\r\n');
    expect(await run(b, s, 'GET', 'a')).toBe('$3\r\none\r\n');
    expect(await run(b, s, 'GET', 'none')).toBe('$-1\r\n');
    expect(await run(b, s, 'MSET', 'b', 'x', 'c', 'y', 'b', 'z')).toBe('+OK\r\n');
    expect(await run(b, s, 'MGET', 'a', 'b', 'none', 'c')).toBe('*4\r\n$3\r\none\r\n$1\r\nz\r\n$-1\r\n$1\r\ny\r\n');
    expect(await run(b, s, 'EXISTS', 'a', 'a', 'none')).toBe(':2\r\n');
    expect(await run(b, s, 'EXPIRE', 'a', '100')).toBe(':1\r\n');
    expect(await run(b, s, 'EXPIRE', 'none', '100')).toBe(':0\r\n');
    expect(await run(b, s, 'EXPIRE', 'a', '0')).toBe(':1\r\n');
    expect(await run(b, s, 'GET', 'a')).toBe('$-1\r\n');
    expect(await run(b, s, 'DEL', 'b', 'b', 'c', 'none')).toBe(':2\r\n');
    expect(await run(b, s, 'GET', 'b')).toBe('$-1\r\n');
    // In RESP3 a missing value is the null type.
    s.protocol = 3;
    expect(await run(b, s, 'GET', 'b')).toBe('_\r\n');
  });

  it('writes through the write policy with the TTL of EX/PX or the default, and counts distinct DEL keys', async () => {
    const puts: [string, string, number][] = [];
    const deletes: string[] = [];
    const writer: WritePolicyHandler = {
      name: 'write-back',
      put: (k, v, ttl) => {
        puts.push([k, v.body.toString(), ttl]);
        expect(v.contentType).toBe('application/octet-stream');
        return Promise.resolve();
      },
      delete: (k) => {
        deletes.push(k);
        return Promise.resolve();
      },
    };
    const b = backend({ writer });
    const s = session();
    await run(b, s, 'SET', 'k', 'v1');
    await run(b, s, 'SET', 'k', 'v2', 'EX', '60');
    await run(b, s, 'SET', 'k', 'v3', 'px', '120000');
    expect(puts).toEqual([
      ['k', 'v1', 3600],
      ['k', 'v2', 60],
      ['k', 'v3', 120],
    ]);
    expect(await run(b, s, 'DEL', 'x', 'y', 'x')).toBe(':2\r\n');
    expect(deletes).toEqual(['x', 'y']);
  });

  it.each([
    [['SET', 'k', 'v', 'EX', '0'], /^-INVALID_TTL /],
    [['SET', 'k', 'v', 'EX', '315360001'], /^-INVALID_TTL /],
    [['SET', 'k', 'v', 'PX', '1500'], /^-INVALID_TTL .*PX must be a multiple of 1000 milliseconds \(got PX 1500\)/],
    [['SET', 'k', 'v', 'EX', 'ten'], /^-ERR value is not an integer or out of range/],
    [['SET', 'k', 'v', 'EX'], /^-ERR syntax error/],
    [['SET', 'k', 'v', 'EX', '5', 'PX', '5000'], /^-ERR syntax error/],
    [['SET', 'k', 'v', 'NX'], /^-ERR SET NX is not supported/],
    [['SET', 'k', 'v', 'KEEPTTL'], /^-ERR SET KEEPTTL is not supported/],
    [['SET', 'k', 'v', 'GET'], /^-ERR SET GET is not supported/],
    [['SET', 'k', 'x'.repeat(1025)], /^-VALUE_TOO_LARGE /],
    [['SET', '', 'v'], /^-INVALID_KEY the key is empty/],
    [['GET', Buffer.from([0xc3])], /^-INVALID_KEY the key is not valid UTF-8/],
    [['EXPIRE', 'k', '10', 'NX'], /^-ERR EXPIRE NX is not supported/],
    [['MSET', 'a', '1', 'b'], /^-ERR wrong number of arguments for 'mset'/],
    [['TTL', 'k'], /^-INVALID_REQUEST TTL needs Redis/],
    [['SELECT', '1'], /^-ERR DB index is out of range/],
    [['HELLO', '4'], /^-NOPROTO /],
    [['HELLO', 'x'], /^-ERR Protocol version is not an integer/],
    [['AUTH', 'pw'], /^-ERR AUTH <password> called without any password configured/],
    [['CLIENT', 'KILL', 'x'], /^-ERR unknown subcommand 'KILL'/],
    [['CLIENT', 'SETNAME', 'a b'], /^-ERR Client names cannot contain spaces/],
    [['COMMAND', 'GETKEYS'], /^-ERR unknown subcommand 'GETKEYS'/],
  ] as const)('%j is refused with the right prefix', async (args, expected) => {
    expect(await run(backend(), session(), ...args)).toMatch(expected);
  });

  it('HELLO switches to RESP3 and answers a map; CLIENT and COMMAND answer what clients probe', async () => {
    const b = backend();
    const s = session();
    const hello = await run(b, s, 'HELLO', '3', 'SETNAME', 'app');
    expect(s.protocol).toBe(3);
    expect(s.name).toBe('app');
    expect(hello.startsWith('%8\r\n$6\r\nserver\r\n$5\r\nredis\r\n')).toBe(true);
    expect(hello).toContain('$5\r\nproto\r\n:3\r\n');
    expect(await run(b, s, 'CLIENT', 'GETNAME')).toBe('$3\r\napp\r\n');
    expect(await run(b, s, 'CLIENT', 'ID')).toBe(':7\r\n');
    expect(await run(b, s, 'CLIENT', 'SETINFO', 'LIB-NAME', 'ioredis')).toBe('+OK\r\n');
    expect(await run(b, s, 'CLIENT', 'INFO')).toContain('lib-name=ioredis');
    expect(await run(b, s, 'COMMAND', 'COUNT')).toBe(`:${COMMANDS.size}\r\n`);
    expect(await run(b, s, 'COMMAND', 'INFO', 'get', 'nosuch')).toMatch(
      /^\*2\r\n\*10\r\n\$3\r\nget\r\n:2\r\n~2\r\n\+readonly/,
    );
    expect(await run(b, s, 'COMMAND', 'DOCS')).toBe('%0\r\n');
    expect(await run(b, s, 'PING')).toBe('+PONG\r\n');
    expect(await run(b, s, 'ECHO', 'hé')).toBe('$3\r\nhé\r\n'.replace('hé', Buffer.from('hé').toString('latin1')));
    expect(await run(b, s, 'QUIT')).toBe('+OK\r\n');
    expect(s.closeAfterReply).toBe(true);
  });

  it('checks the password of --resp-password as user default; HELLO AUTH authenticates too', async () => {
    const b = backend({ password: 'pw' });
    const s = { ...session(), authenticated: false };
    expect(await run(b, s, 'HELLO', '3')).toMatch(/^-NOAUTH /);
    expect(await run(b, s, 'AUTH', 'wrong')).toMatch(/^-WRONGPASS /);
    expect(await run(b, s, 'AUTH', 'admin', 'pw')).toMatch(/^-WRONGPASS /);
    expect(s.authenticated).toBe(false);
    expect(await run(b, s, 'HELLO', '2', 'AUTH', 'default', 'pw')).toMatch(/^\*16\r\n/);
    expect(s.authenticated).toBe(true);
    expect(COMMANDS.get('get')?.noAuth).toBeUndefined();
    expect(COMMANDS.get('auth')?.noAuth).toBe(true);
  });
});

describe('RESP command helpers', () => {
  it('turns every stable error code into an upper snake case prefix', () => {
    expect(respErrorPrefix('ValueTooLarge')).toBe('VALUE_TOO_LARGE');
    expect(respErrorPrefix('InvalidTTL')).toBe('INVALID_TTL');
    expect(respErrorPrefix('WriteBackBacklogFull')).toBe('WRITE_BACK_BACKLOG_FULL');
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[])
      expect(respErrorPrefix(code)).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
  });

  it("names a command's keys from its key positions", () => {
    const b = (...xs: string[]) => xs.map((x) => Buffer.from(x));
    const keys = (name: string, ...args: string[]) => commandKeys(COMMANDS.get(name)!, b(name, ...args)).map(String);
    expect(keys('get', 'k')).toEqual(['k']);
    expect(keys('mset', 'a', '1', 'b', '2')).toEqual(['a', 'b']);
    expect(keys('del', 'a', 'b', 'c')).toEqual(['a', 'b', 'c']);
    expect(keys('ping')).toEqual([]);
  });

  it('words an unknown command as redis-server does', () => {
    expect(unknownCommandMessage([Buffer.from('FLUSHALL'), Buffer.from('ASYNC')])).toBe(
      "unknown command 'FLUSHALL', with args beginning with: 'ASYNC' ",
    );
  });
});
