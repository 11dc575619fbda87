/**
 * The commands of the RESP front and what each one does, on the same service layer as the HTTP routes:
 * reads through {@link TieredCache} (L1 → Redis → origin read-through), writes through the configured
 * write policy (or the tiers when there is no origin), keys checked by the same rule. No cache semantics
 * live here: each command is a translation of the HTTP call it stands for (docs/sidecar.md "RESP front").
 *
 * Errors: a {@link SidecarError} is answered `-<CODE> <message>` with its stable code in upper snake case
 * (`InvalidKey` → `-INVALID_KEY …`, `ValueTooLarge` → `-VALUE_TOO_LARGE …`); what Redis clients expect
 * of the protocol itself (unknown command, wrong number of arguments, syntax) is `-ERR …` as redis-server
 * words it, and `-NOAUTH`, `-WRONGPASS`, `-NOPROTO` likewise.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { InvalidKeyError, InvalidTTLError, SidecarError, ValueTooLargeError, type ErrorCode } from '../errors.js';
import type { SidecarMetrics } from '../metrics.js';
import type { CacheValue, ReadResult, TieredCache } from '../tiers/tiered-cache.js';
import { MAX_TTL_SECONDS, TTL_RULE } from '../ttl.js';
import type { WritePolicyHandler } from '../write/write-policy.js';
import { array, bulk, integer, map, simple, type Protocol, type RespValue } from './resp-encoder.js';

/** What the commands use: the same objects the HTTP routes are given. */
export interface RespBackend {
  cache: TieredCache;
  /** The write policy against the origin (absent: no origin, writes go to the tiers). */
  writer?: WritePolicyHandler;
  /** The HTTP routes' key rule (1–1024 bytes of UTF-8, and storable by the origin). Throws InvalidKeyError. */
  checkKey(key: string): void;
  metrics: SidecarMetrics;
  defaultTTLSeconds: number;
  maxValueBytes: number;
  /** `--resp-password`: when set, AUTH (or HELLO … AUTH) must give it before any other command. */
  password?: string | undefined;
  /** The sidecar's version, for HELLO and INFO. */
  version: string;
}

/** Per-connection state the commands read and change. */
export interface RespSession {
  readonly id: number;
  protocol: Protocol;
  name: string;
  libName: string;
  libVersion: string;
  authenticated: boolean;
  readonly remote: string;
  readonly createdAt: number;
  /** The connection ends once this command's reply is written (QUIT). */
  closeAfterReply: boolean;
}

/** An error reply that is not a SidecarError: the protocol's own (`ERR`, `NOAUTH`, `WRONGPASS`, `NOPROTO`). */
export class RespCommandError extends Error {
  override readonly name = 'RespCommandError';
  readonly prefix: string;
  constructor(prefix: string, message: string) {
    super(message);
    this.prefix = prefix;
  }
}

type Result = RespValue | Promise<RespValue>;
type Handler = (backend: RespBackend, session: RespSession, args: Buffer[]) => Result;

export interface CommandSpec {
  readonly name: string;
  /** redis-server's convention: n > 0 exactly n arguments (name included), n < 0 at least -n. */
  readonly arity: number;
  /** COMMAND's flags. */
  readonly flags: readonly string[];
  /** COMMAND's first key, last key (-1: the last argument) and step. */
  readonly keys: readonly [number, number, number];
  /** Allowed before AUTH when a password is set. */
  readonly noAuth?: boolean;
  readonly run: Handler;
}

/** Every error code, as a RESP error prefix: `ValueTooLarge` → `VALUE_TOO_LARGE`. */
export function respErrorPrefix(code: ErrorCode): string {
  return code.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

const OK: RespValue = simple('OK');
const CONTENT_TYPE = 'application/octet-stream';
const TIER_LABEL = { L1: 'l1', 'L1-STALE': 'l1-stale', L2: 'l2', ORIGIN: 'origin' } as const;

function lower(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toLowerCase();
}

function syntaxError(): RespCommandError {
  return new RespCommandError('ERR', 'syntax error');
}

/** A key argument: valid UTF-8 (keys are strings in every tier), then the HTTP routes' rule. */
function key(backend: RespBackend, arg: Buffer): string {
  if (!isUtf8(arg)) throw new InvalidKeyError('the key is not valid UTF-8');
  const k = arg.toString('utf8');
  backend.checkKey(k);
  return k;
}

/** A whole number argument, as redis-server reads one (optional `-`, digits). */
function wholeNumber(arg: Buffer | undefined): number {
  const s = arg?.toString('latin1') ?? '';
  if (!/^-?\d{1,16}$/.test(s)) throw new RespCommandError('ERR', 'value is not an integer or out of range');
  return Number(s);
}

/** A TTL in seconds under the HTTP API's rule (1 to 10 years, whole seconds). */
/** `seconds`, checked against the HTTP API's TTL rule; `given` is what the client sent, for the message. */
function ttlSeconds(seconds: number, given: string): number {
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new InvalidTTLError(`${TTL_RULE} (got ${given})`);
  return seconds;
}

/** The value of a SET/MSET, with the HTTP API's size limit (the parser already bounds it). */
function value(backend: RespBackend, arg: Buffer): CacheValue {
  if (arg.length > backend.maxValueBytes) {
    throw new ValueTooLargeError(`the value is larger than the limit of ${backend.maxValueBytes} bytes`);
  }
  // A copy: the argument is a view into a socket chunk, which the write path may keep a while.
  return { body: Buffer.from(arg), contentType: CONTENT_TYPE };
}

/** The tier label that writes are recorded under, as the HTTP routes do. */
function writeTier(backend: RespBackend): string {
  const { writer, cache } = backend;
  return writer === undefined ? (cache.l1Only ? 'l1' : 'l2') : writer.name === 'write-back' ? 'l2' : 'origin';
}

function put(backend: RespBackend, k: string, v: CacheValue, ttl: number): Promise<void> {
  return backend.writer === undefined ? backend.cache.put(k, v, ttl) : backend.writer.put(k, v, ttl);
}

/** A read, recorded in the same request metrics as an HTTP GET. */
function get(
  backend: RespBackend,
  k: string,
  started: number,
): CacheValue | undefined | Promise<CacheValue | undefined> {
  const { cache, metrics } = backend;
  const hit = cache.getL1(k);
  if (hit !== undefined) {
    metrics.request('get', 'l1', 'hit', (performance.now() - started) / 1000);
    return hit;
  }
  return cache.getBeyondL1(k).then((result: ReadResult) => {
    const seconds = (performance.now() - started) / 1000;
    if (result.tier === 'none') {
      metrics.request('get', cache.l1Only ? 'l1' : 'l2', 'miss', seconds);
      return undefined;
    }
    metrics.request('get', TIER_LABEL[result.tier], 'hit', seconds);
    return result.value;
  });
}

function valueReply(v: CacheValue | undefined): RespValue {
  return bulk(v === undefined ? null : v.body);
}

// --- data commands ------------------------------------------------------------------------------------

const GET: Handler = (backend, _session, args) => {
  const started = performance.now();
  const v = get(backend, key(backend, args[1] as Buffer), started);
  return v instanceof Promise ? v.then(valueReply) : valueReply(v);
};

const MGET: Handler = async (backend, _session, args) => {
  const started = performance.now();
  const keys = args.slice(1).map((a) => key(backend, a));
  const values = await Promise.all(keys.map(async (k) => get(backend, k, started)));
  return array(values.map(valueReply));
};

const EXISTS: Handler = async (backend, _session, args) => {
  const started = performance.now();
  const keys = args.slice(1).map((a) => key(backend, a));
  const values = await Promise.all(keys.map(async (k) => get(backend, k, started)));
  return integer(values.filter((v) => v !== undefined).length);
};

/** SET key value [EX seconds | PX milliseconds]: the HTTP PUT; other options are refused by name. */
const SET: Handler = async (backend, _session, args) => {
  const k = key(backend, args[1] as Buffer);
  let ttl: number | undefined;
  for (let i = 3; i < args.length; i++) {
    const option = lower(args[i]);
    if ((option === 'ex' || option === 'px') && ttl === undefined) {
      if (i + 1 >= args.length) throw syntaxError();
      const n = wholeNumber(args[++i]);
      if (option === 'ex') ttl = ttlSeconds(n, `EX ${n}`);
      else if (n % 1000 !== 0 || n <= 0)
        throw new InvalidTTLError(`${TTL_RULE}: PX must be a multiple of 1000 milliseconds (got PX ${n})`);
      else ttl = ttlSeconds(n / 1000, `PX ${n}`);
      continue;
    }
    if (['nx', 'xx', 'keepttl', 'get', 'exat', 'pxat'].includes(option)) {
      throw new RespCommandError(
        'ERR',
        `SET ${option.toUpperCase()} is not supported by the ripplecache sidecar (the cache API has no conditional or read-modify writes); supported: SET key value [EX seconds|PX milliseconds]`,
      );
    }
    throw syntaxError();
  }
  const v = value(backend, args[2] as Buffer);
  const started = performance.now();
  await put(backend, k, v, ttl ?? backend.defaultTTLSeconds);
  backend.metrics.request('put', writeTier(backend), 'stored', (performance.now() - started) / 1000);
  return OK;
};

/** MSET k v [k v …]: one PUT per key with the default TTL, concurrently (not atomic, as separate PUTs). */
const MSET: Handler = async (backend, _session, args) => {
  if (args.length % 2 !== 1) throw new RespCommandError('ERR', "wrong number of arguments for 'mset' command");
  // The last value of a key given twice wins, as in Redis.
  const entries = new Map<string, CacheValue>();
  for (let i = 1; i < args.length; i += 2) {
    const k = key(backend, args[i] as Buffer);
    entries.delete(k);
    entries.set(k, value(backend, args[i + 1] as Buffer));
  }
  const started = performance.now();
  await Promise.all([...entries].map(([k, v]) => put(backend, k, v, backend.defaultTTLSeconds)));
  const seconds = (performance.now() - started) / 1000;
  for (let i = 0; i < entries.size; i++) backend.metrics.request('put', writeTier(backend), 'stored', seconds);
  return OK;
};

/**
 * DEL k [k …]: the HTTP DELETE of each distinct key. Answers how many Redis (or, L1-only, L1) held; with
 * an origin the write policy does not say whether the key existed (it writes a tombstone either way), so
 * the answer is the number of distinct keys.
 */
const DEL: Handler = async (backend, _session, args) => {
  const keys = [...new Set(args.slice(1).map((a) => key(backend, a)))];
  const started = performance.now();
  let n: number;
  const { writer } = backend;
  if (writer === undefined) {
    n = await backend.cache.delete(keys);
  } else {
    await Promise.all(keys.map((k) => writer.delete(k)));
    n = keys.length;
  }
  const seconds = (performance.now() - started) / 1000;
  for (const _ of keys) backend.metrics.request('delete', writeTier(backend), 'deleted', seconds);
  return integer(n);
};

async function remainingTTL(backend: RespBackend, args: Buffer[]): Promise<number> {
  const ms = await backend.cache.ttlMs(key(backend, args[1] as Buffer));
  if (ms === undefined) {
    throw new SidecarError('InvalidRequest', 'TTL needs Redis: this sidecar runs L1-only (no --redis)');
  }
  return ms;
}

/** PTTL key: the Redis record's remaining TTL in ms; -1 none, -2 Redis holds no value for the key. */
const PTTL: Handler = async (backend, _session, args) => integer(await remainingTTL(backend, args));

/** TTL key: as PTTL, in seconds rounded as redis-server rounds. */
const TTL: Handler = async (backend, _session, args) => {
  const ms = await remainingTTL(backend, args);
  return integer(ms < 0 ? ms : Math.floor((ms + 500) / 1000));
};

/**
 * EXPIRE key seconds: a read of the key (as GET) and, when found, a write of the same value and
 * Content-Type with the new TTL (as PUT, through the write policy). Not atomic with a concurrent write of
 * the key by someone else. seconds <= 0 deletes the key (as DEL), as in Redis. 1 when the key was found.
 */
const EXPIRE: Handler = async (backend, session, args) => {
  if (args.length > 3) {
    throw new RespCommandError(
      'ERR',
      `EXPIRE ${lower(args[3]).toUpperCase()} is not supported by the ripplecache sidecar; supported: EXPIRE key seconds`,
    );
  }
  const k = key(backend, args[1] as Buffer);
  const seconds = wholeNumber(args[2]);
  const started = performance.now();
  const found = await get(backend, k, started);
  if (found === undefined) return integer(0);
  if (seconds <= 0) {
    await DEL(backend, session, [args[0] as Buffer, args[1] as Buffer]);
    return integer(1);
  }
  await put(backend, k, found, ttlSeconds(seconds, `EXPIRE ${seconds}`));
  backend.metrics.request('put', writeTier(backend), 'stored', (performance.now() - started) / 1000);
  return integer(1);
};

// --- connection commands ------------------------------------------------------------------------------

const PING: Handler = (_backend, _session, args) => {
  if (args.length > 2) throw new RespCommandError('ERR', "wrong number of arguments for 'ping' command");
  if (args.length === 2) return bulk(args[1] as Buffer);
  return simple('PONG');
};

const ECHO: Handler = (_backend, _session, args) => bulk(args[1] as Buffer);

function digest(s: Buffer | string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Checks a password in constant time; `user` must be `default` (the only user). */
function authenticate(backend: RespBackend, session: RespSession, user: string, password: Buffer): void {
  if (backend.password === undefined) {
    throw new RespCommandError(
      'ERR',
      'AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
    );
  }
  if (user !== 'default' || !timingSafeEqual(digest(password), digest(backend.password))) {
    throw new RespCommandError('WRONGPASS', 'invalid username-password pair or user is disabled.');
  }
  session.authenticated = true;
}

const AUTH: Handler = (backend, session, args) => {
  if (args.length > 3) throw syntaxError();
  const user = args.length === 3 ? (args[1] as Buffer).toString('utf8') : 'default';
  authenticate(backend, session, user, args[args.length - 1] as Buffer);
  return OK;
};

function helloReply(backend: RespBackend, session: RespSession): RespValue {
  return map([
    ['server', bulk('redis')],
    ['version', bulk('7.0.0')],
    ['proto', integer(session.protocol)],
    ['id', integer(session.id)],
    ['mode', bulk('standalone')],
    ['role', bulk('master')],
    ['modules', array([])],
    ['ripplecache', bulk(backend.version)],
  ]);
}

/** HELLO [protover [AUTH user password] [SETNAME name]]: protocol 2 or 3. */
const HELLO: Handler = (backend, session, args) => {
  let protocol: Protocol = session.protocol;
  let i = 1;
  if (args.length > 1) {
    const v = (args[1] as Buffer).toString('latin1');
    if (v !== '2' && v !== '3') {
      if (!/^-?\d+$/.test(v)) throw new RespCommandError('ERR', 'Protocol version is not an integer or out of range');
      throw new RespCommandError('NOPROTO', 'sorry, this protocol version is not supported.');
    }
    protocol = v === '3' ? 3 : 2;
    i = 2;
  }
  let name: string | undefined;
  for (; i < args.length; i++) {
    const option = lower(args[i]);
    if (option === 'auth' && i + 2 < args.length) {
      authenticate(backend, session, (args[i + 1] as Buffer).toString('utf8'), args[i + 2] as Buffer);
      i += 2;
    } else if (option === 'setname' && i + 1 < args.length) {
      name = clientName(args[++i] as Buffer);
    } else {
      throw new RespCommandError('ERR', `Syntax error in HELLO option '${option}'`);
    }
  }
  if (backend.password !== undefined && !session.authenticated) {
    throw new RespCommandError(
      'NOAUTH',
      'HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  }
  session.protocol = protocol;
  if (name !== undefined) session.name = name;
  return helloReply(backend, session);
};

function clientName(arg: Buffer): string {
  const name = arg.toString('utf8');
  if (/[\s]/.test(name) || !/^[\x21-\x7e]*$/.test(name)) {
    throw new RespCommandError('ERR', 'Client names cannot contain spaces, newlines or special characters.');
  }
  return name;
}

function clientInfoLine(session: RespSession): string {
  const age = Math.floor((Date.now() - session.createdAt) / 1000);
  return (
    `id=${session.id} addr=${session.remote} laddr= fd=-1 name=${session.name} age=${age} idle=0 flags=N db=0 ` +
    `sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 ` +
    `events=r cmd=client|info user=default redir=-1 resp=${session.protocol} lib-name=${session.libName} lib-ver=${session.libVersion}\n`
  );
}

/** CLIENT SETNAME|GETNAME|ID|INFO|SETINFO|LIST: what client libraries send at connect. */
const CLIENT: Handler = (_backend, session, args) => {
  const sub = lower(args[1]);
  switch (sub) {
    case 'setname':
      if (args.length !== 3) break;
      session.name = clientName(args[2] as Buffer);
      return OK;
    case 'getname':
      if (args.length !== 2) break;
      return bulk(session.name === '' ? null : session.name);
    case 'id':
      if (args.length !== 2) break;
      return integer(session.id);
    case 'info':
      if (args.length !== 2) break;
      return bulk(clientInfoLine(session));
    case 'list':
      if (args.length !== 2) break;
      return bulk(clientInfoLine(session));
    case 'setinfo': {
      if (args.length !== 4) break;
      const attr = lower(args[2]);
      const v = (args[3] as Buffer).toString('utf8');
      if (!/^[\x21-\x7e]*$/.test(v)) {
        throw new RespCommandError('ERR', `${attr} cannot contain spaces, newlines or special characters.`);
      }
      if (attr === 'lib-name') session.libName = v;
      else if (attr === 'lib-ver') session.libVersion = v;
      else throw new RespCommandError('ERR', `Unrecognized option '${(args[2] as Buffer).toString('utf8')}'`);
      return OK;
    }
    default:
      throw new RespCommandError(
        'ERR',
        `unknown subcommand '${(args[1] as Buffer).toString('utf8')}'. The ripplecache sidecar supports CLIENT SETNAME, GETNAME, ID, INFO, LIST and SETINFO.`,
      );
  }
  throw new RespCommandError('ERR', `wrong number of arguments for 'client|${sub}' command`);
};

/** SELECT 0: the only database. */
const SELECT: Handler = (_backend, _session, args) => {
  const db = wholeNumber(args[1]);
  if (db !== 0)
    throw new RespCommandError('ERR', 'DB index is out of range (the ripplecache sidecar has database 0 only)');
  return OK;
};

const QUIT: Handler = (_backend, session) => {
  session.closeAfterReply = true;
  return OK;
};

/** INFO: the fields client libraries read (`loading`, `redis_version`, `role`), nothing else. */
const INFO: Handler = (backend, session) =>
  bulk(
    [
      '# Server',
      'redis_version:7.0.0',
      'redis_mode:standalone',
      `ripplecache_version:${backend.version}`,
      `process_id:${process.pid}`,
      `uptime_in_seconds:${Math.floor(process.uptime())}`,
      '',
      '# Clients',
      `client_id:${session.id}`,
      '',
      '# Persistence',
      'loading:0',
      '',
      '# Replication',
      'role:master',
      'connected_slaves:0',
      '',
    ].join('\r\n'),
  );

// --- the table ----------------------------------------------------------------------------------------

function spec(
  name: string,
  arity: number,
  flags: readonly string[],
  keys: readonly [number, number, number],
  run: Handler,
  noAuth = false,
): CommandSpec {
  return { name, arity, flags, keys, run, ...(noAuth ? { noAuth } : {}) };
}

const NO_KEYS = [0, 0, 0] as const;

/** Every command the front answers, by lower-case name. COMMAND is added below (it lists this table). */
export const COMMANDS = new Map<string, CommandSpec>(
  [
    spec('get', 2, ['readonly', 'fast'], [1, 1, 1], GET),
    spec('set', -3, ['write', 'denyoom'], [1, 1, 1], SET),
    spec('del', -2, ['write'], [1, -1, 1], DEL),
    spec('mget', -2, ['readonly', 'fast'], [1, -1, 1], MGET),
    spec('mset', -3, ['write', 'denyoom'], [1, -1, 2], MSET),
    spec('exists', -2, ['readonly', 'fast'], [1, -1, 1], EXISTS),
    spec('ttl', 2, ['readonly', 'fast'], [1, 1, 1], TTL),
    spec('pttl', 2, ['readonly', 'fast'], [1, 1, 1], PTTL),
    spec('expire', -3, ['write', 'fast'], [1, 1, 1], EXPIRE),
    spec('ping', -1, ['fast'], NO_KEYS, PING),
    spec('echo', 2, ['fast'], NO_KEYS, ECHO),
    spec('hello', -1, ['noscript', 'loading', 'stale', 'fast', 'no_auth'], NO_KEYS, HELLO, true),
    spec('auth', -2, ['noscript', 'loading', 'stale', 'fast', 'no_auth'], NO_KEYS, AUTH, true),
    spec('client', -2, ['admin', 'noscript', 'loading', 'stale'], NO_KEYS, CLIENT),
    spec('select', 2, ['loading', 'stale', 'fast'], NO_KEYS, SELECT),
    spec('quit', -1, ['noscript', 'loading', 'stale', 'fast', 'no_auth'], NO_KEYS, QUIT, true),
    spec('info', -1, ['loading', 'stale'], NO_KEYS, INFO),
  ].map((s) => [s.name, s]),
);

function commandInfo(s: CommandSpec): RespValue {
  return array([
    bulk(s.name),
    integer(s.arity),
    { type: 'set', value: s.flags.map((f) => simple(f)) },
    integer(s.keys[0]),
    integer(s.keys[1]),
    integer(s.keys[2]),
    { type: 'set', value: [] },
    array([]),
    array([]),
    array([]),
  ]);
}

/** COMMAND, COMMAND COUNT|INFO|DOCS|LIST: enough for clients and redis-cli that probe. */
const COMMAND: Handler = (_backend, _session, args) => {
  if (args.length === 1) return array([...COMMANDS.values()].map(commandInfo));
  const sub = lower(args[1]);
  const named = args.slice(2).map((a) => lower(a));
  switch (sub) {
    case 'count':
      return integer(COMMANDS.size);
    case 'list':
      return array([...COMMANDS.keys()].map((n) => bulk(n)));
    case 'info':
      return array(
        (named.length === 0 ? [...COMMANDS.keys()] : named).map((n) => {
          const s = COMMANDS.get(n);
          return s === undefined ? bulk(null) : commandInfo(s);
        }),
      );
    case 'docs':
      // No documentation: an empty reply, which redis-cli and client libraries accept.
      return { type: 'map', value: [] };
    default:
      throw new RespCommandError(
        'ERR',
        `unknown subcommand '${(args[1] as Buffer).toString('utf8')}'. The ripplecache sidecar supports COMMAND, COMMAND COUNT, INFO, DOCS and LIST.`,
      );
  }
};
COMMANDS.set('command', spec('command', -1, ['loading', 'stale'], NO_KEYS, COMMAND));

/** The keys a command names (for the per-key ordering of a connection's commands). */
export function commandKeys(s: CommandSpec, args: readonly Buffer[]): Buffer[] {
  const [first, lastSpec, step] = s.keys;
  if (first === 0) return [];
  const last = lastSpec < 0 ? args.length + lastSpec : lastSpec;
  const keys: Buffer[] = [];
  for (let i = first; i <= last && i < args.length; i += step) keys.push(args[i] as Buffer);
  return keys;
}

/** The error message redis-server gives for a command it does not know. */
export function unknownCommandMessage(args: readonly Buffer[]): string {
  const name = (args[0] as Buffer).toString('utf8').slice(0, 128);
  const rest = args
    .slice(1, 4)
    .map((a) => `'${a.toString('utf8').slice(0, 64)}' `)
    .join('');
  return `unknown command '${name}', with args beginning with: ${rest}`;
}
