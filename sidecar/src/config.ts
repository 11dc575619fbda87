/**
 * Sidecar configuration: the only reader of process.argv, process.env and the config file.
 *
 * Every flag `--foo-bar` can also be given as the environment variable `RIPPLECACHE_FOO_BAR` and (except
 * the password and the file path itself) as the camelCase key of the YAML file named by `--config`,
 * which is what the operator's webhook mounts. Precedence: flag > environment > config file > defaults.
 * A bad value is a {@link ConfigError}; `main.ts` prints it and exits with code 2.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_INVALIDATION_CHANNEL } from '../../common/src/protocol.js';
import { parseQuantity, QuantityError } from '../../common/src/quantity.js';

export type L1Policy = 'lru' | 'lfu' | 'fifo' | 'ttl';
export type WritePolicy = 'write-through' | 'write-back' | 'write-around';
export type OnDisconnect = 'drop' | 'serve-stale';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const L1_POLICIES: readonly L1Policy[] = ['lru', 'lfu', 'fifo', 'ttl'];
export const WRITE_POLICIES: readonly WritePolicy[] = ['write-through', 'write-back', 'write-around'];
export const ON_DISCONNECT: readonly OnDisconnect[] = ['drop', 'serve-stale'];
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Largest value Redis can hold in one string (512 MiB); also the ceiling of `maxValueBytes`. */
export const MAX_VALUE_BYTES_CEILING = 512 * 1024 * 1024;

/** Settings of the in-process L1 cache. */
export interface L1Config {
  /** Eviction policy. Default `lru`. `ttl` evicts the entry closest to expiry first. */
  policy: L1Policy;
  /** Upper bound on the number of entries. Default 10000. */
  maxEntries: number;
  /** Upper bound on the bytes held (key + value + content type + 64 bytes per entry). Default 64 MiB. */
  maxBytes: number;
  /**
   * Upper bound on an entry's life in L1, in seconds; an entry also never outlives its remaining TTL in
   * Redis. 0 disables L1 in front of Redis. Default 60.
   */
  maxTTLSeconds: number;
}

/** Settings of the write-back journal and flusher (`--write-policy write-back`). */
export interface WriteBackConfig {
  /** Flush the queue at least this often, in ms. Default 1000. */
  flushIntervalMs: number;
  /** Largest batch written to the database at once. Default 500. */
  flushBatchSize: number;
  /**
   * Journaled writes not yet in the database, cluster-wide, at most; further writes are refused with 503
   * `WriteBackBacklogFull`. Default 100000.
   */
  maxPending: number;
}

/** A `HOST:PORT` to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface SidecarConfig {
  /** Address of the HTTP API. Default `127.0.0.1:7070` (the app in the same pod is the only client). */
  listen: ListenAddress;
  /**
   * Address of a second HTTP listener serving only `GET /metrics`, `/healthz` and `/readyz` (nothing of the
   * cache API), so that Prometheus and the kubelet's httpGet probes can reach them on the pod IP while the
   * unauthenticated API stays on loopback. Default: none (off). The operator's webhook sets `0.0.0.0:7071`.
   */
  metricsListen: ListenAddress | undefined;
  /** URL of the Redis primary (`redis://` or `rediss://`). Default: none, the sidecar runs L1-only. */
  redis: string | undefined;
  /** URLs of the primary's replicas; when empty they are discovered with `INFO replication`. Default []. */
  redisReplicas: string[];
  /** Redis password (overrides one in the URLs). Never logged. Default: none, or the URL's. */
  redisPassword: string | undefined;
  /** Pub/sub channel of invalidation messages (the CacheCluster's). Default `ripplecache:invalidations`. */
  channel: string;
  l1: L1Config;
  /** TTL of a write that names none, in seconds; 0 means no expiry. Default 3600. */
  defaultTTLSeconds: number;
  /**
   * Write policy against the origin: `write-through` (default), `write-back` or `write-around` (README
   * "Write policies"). Without an origin every policy just writes Redis.
   */
  writePolicy: WritePolicy;
  writeBack: WriteBackConfig;
  /**
   * Idle time after which a write-back entry taken by a sidecar that stopped working on it (it died) is
   * claimed by another, in ms. Default 30000.
   */
  writeBackClaimTimeoutMs: number;
  /**
   * The application database, `postgres://…` or `http(s)://…`: read-through on a miss, and the target of
   * the write policy. Default: none. Its password is never logged.
   */
  origin: string | undefined;
  /** PostgreSQL table of the origin, `name` or `schema.name`, created if absent. Default `cache_entries`. */
  originTable: string;
  /**
   * What to do with L1 when the invalidation subscription is lost: `drop` (default) empties L1 at once so
   * nothing stale is served; `serve-stale` keeps answering L1 hits while Redis is unreachable, marked
   * `X-Cache: L1-STALE`, for at most `l1.maxTTLSeconds`.
   */
  onDisconnect: OnDisconnect;
  /** Largest value accepted by PUT, in bytes. Default 1 MiB. */
  maxValueBytes: number;
  /** Time box of every Redis call, in ms. Default 500. */
  redisTimeoutMs: number;
  /** Log level. Default `info`. */
  logLevel: LogLevel;
  /**
   * Name of the CacheCluster this sidecar belongs to: every metric carries it as the label `cachecluster`,
   * so that cluster-wide gauges (the write-back backlog) can be aggregated per CacheCluster. The operator
   * writes it into the `sidecar.yaml` it renders. Default: none (no label).
   */
  cacheCluster: string | undefined;
}

/** Every default, in one place. */
export const SIDECAR_DEFAULTS: Readonly<SidecarConfig> = Object.freeze({
  listen: { host: '127.0.0.1', port: 7070 },
  metricsListen: undefined,
  redis: undefined,
  redisReplicas: [],
  redisPassword: undefined,
  channel: DEFAULT_INVALIDATION_CHANNEL,
  l1: { policy: 'lru', maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxTTLSeconds: 60 },
  defaultTTLSeconds: 3600,
  writePolicy: 'write-through',
  writeBack: { flushIntervalMs: 1000, flushBatchSize: 500, maxPending: 100_000 },
  writeBackClaimTimeoutMs: 30_000,
  origin: undefined,
  originTable: 'cache_entries',
  onDisconnect: 'drop',
  maxValueBytes: 1024 * 1024,
  redisTimeoutMs: 500,
  logLevel: 'info',
  cacheCluster: undefined,
} satisfies SidecarConfig);

/** A flag, environment variable or config-file value that cannot be used. Exit code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'InvalidConfiguration';
  readonly exitCode = 2;
}

/** The result of parsing: a configuration, or a request for the help text or the version. */
export type ConfigResult =
  { kind: 'config'; config: SidecarConfig } | { kind: 'help'; text: string } | { kind: 'version' };

type Parser = (raw: unknown, where: string) => unknown;

interface FlagSpec {
  /** Flag name without dashes, e.g. `l1-max-entries`. */
  flag: string;
  /** Dotted path in {@link SidecarConfig} and in the config file, e.g. `l1.maxEntries`. */
  path: string;
  help: string;
  parse: Parser;
  /** Repeatable flag; the environment variable takes a comma-separated list. */
  repeatable?: boolean;
  /** Not readable from the config file (secrets, the file path). */
  noFile?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Value parsers. Each takes a string (flag, env) or a YAML value (file) and names `where` on error.

function str(raw: unknown, where: string): string {
  if (typeof raw === 'number') return String(raw);
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${where}: expected a non-empty string`);
  return raw;
}

function int(min: number, max: number): Parser {
  return (raw, where) => {
    const s = typeof raw === 'number' ? String(raw) : str(raw, where).trim();
    if (!/^-?\d+$/.test(s)) throw new ConfigError(`${where}: "${s}" is not a whole number`);
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`${where}: ${s} is out of range (${min}..${max})`);
    }
    return n;
  };
}

function oneOf<T extends string>(values: readonly T[]): Parser {
  return (raw, where) => {
    const s = str(raw, where);
    if (!(values as readonly string[]).includes(s)) {
      throw new ConfigError(`${where}: "${s}" is not one of ${values.join(', ')}`);
    }
    return s;
  };
}

/**
 * Parses a byte count: `1048576`, or a Kubernetes quantity such as `64Mi`, `1.5Gi`, `512k`, `1G` — exactly
 * what the CRD's quantity fields accept (common/src/quantity.ts; a fraction of a byte rounds up).
 */
export function parseByteQuantity(raw: unknown, where: string): number {
  const s = typeof raw === 'number' ? String(raw) : str(raw, where).trim();
  let n: number;
  try {
    n = parseQuantity(s);
  } catch (err) {
    if (err instanceof QuantityError && err.problem === 'out-of-range')
      throw new ConfigError(`${where}: "${s}" is out of range`);
    throw new ConfigError(`${where}: "${s}" is not a byte count (e.g. 1048576, 64Mi, 1.5Gi, 512Ki, 1G)`);
  }
  if (n < 1) throw new ConfigError(`${where}: "${s}" is out of range`);
  return n;
}

function bytes(max: number): Parser {
  return (raw, where) => {
    const n = parseByteQuantity(raw, where);
    if (n > max) throw new ConfigError(`${where}: ${n} bytes is more than the maximum ${max}`);
    return n;
  };
}

function url(protocols: readonly string[]): Parser {
  return (raw, where) => {
    const s = str(raw, where);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(`${where}: not a URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
    }
    if (!protocols.includes(u.protocol)) {
      throw new ConfigError(`${where}: scheme "${u.protocol}" is not one of ${protocols.join(', ')}`);
    }
    if (!u.hostname) throw new ConfigError(`${where}: the URL names no host`);
    return s;
  };
}

/** Parses `HOST:PORT` (`[::1]:7070` for IPv6). Port 0 asks the OS for a free port. */
export function parseListen(raw: unknown, where: string): ListenAddress {
  const s = str(raw, where);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ConfigError(`${where}: "${s}" is not HOST:PORT (e.g. 127.0.0.1:7070)`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Like {@link parseListen}, but an empty value means "off" (so a flag can turn off a file's setting). */
function optionalListen(raw: unknown, where: string): ListenAddress | undefined {
  if (raw === '') return undefined;
  return parseListen(raw, where);
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/** True when two listen addresses would compete for the same socket (same fixed port, same or wildcard host). */
function sameSocket(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  return a.host === b.host || WILDCARD_HOSTS.has(a.host) || WILDCARD_HOSTS.has(b.host);
}

const REDIS_URL = url(['redis:', 'rediss:']);

/** A PostgreSQL table name: `name` or `schema.name` (letters, digits, `_`, `$`; at most 63 each). */
function tableName(raw: unknown, where: string): string {
  const s = str(raw, where);
  if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/.test(s)) {
    throw new ConfigError(`${where}: "${s}" is not a table name (name or schema.name: letters, digits, _ and $)`);
  }
  return s;
}

/** A Kubernetes object name (lowercase RFC 1123 subdomain), such as a CacheCluster's. */
function objectName(raw: unknown, where: string): string {
  const s = str(raw, where);
  if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    throw new ConfigError(`${where}: "${s}" is not a Kubernetes object name (lowercase letters, digits, '-' and '.')`);
  }
  return s;
}

const FLAGS: readonly FlagSpec[] = [
  {
    flag: 'listen',
    path: 'listen',
    parse: parseListen,
    help: `HOST:PORT of the HTTP API (default ${SIDECAR_DEFAULTS.listen.host}:${SIDECAR_DEFAULTS.listen.port})`,
  },
  {
    flag: 'metrics-listen',
    path: 'metricsListen',
    parse: optionalListen,
    help: 'HOST:PORT of a second listener serving only /metrics, /healthz and /readyz (no cache API), e.g. 0.0.0.0:7071 for Prometheus and kubelet probes; default: off',
  },
  {
    flag: 'redis',
    path: 'redis',
    parse: REDIS_URL,
    help: 'URL of the Redis primary, redis://[:password@]host:port[/db]; without it the sidecar runs L1-only',
  },
  {
    flag: 'redis-replica',
    path: 'redisReplicas',
    parse: REDIS_URL,
    repeatable: true,
    help: 'URL of a replica, repeatable (env: comma-separated); default: discovered with INFO replication',
  },
  {
    flag: 'redis-password',
    path: 'redisPassword',
    parse: str,
    noFile: true,
    help: 'Redis password (overrides a password in the URLs; never logged)',
  },
  {
    flag: 'channel',
    path: 'channel',
    parse: str,
    help: `pub/sub channel of invalidation messages (default ${SIDECAR_DEFAULTS.channel})`,
  },
  {
    flag: 'l1-policy',
    path: 'l1.policy',
    parse: oneOf(L1_POLICIES),
    help: `L1 eviction policy: ${L1_POLICIES.join('|')} (default ${SIDECAR_DEFAULTS.l1.policy})`,
  },
  {
    flag: 'l1-max-entries',
    path: 'l1.maxEntries',
    parse: int(1, 100_000_000),
    help: `L1 entry bound (default ${SIDECAR_DEFAULTS.l1.maxEntries})`,
  },
  {
    flag: 'l1-max-bytes',
    path: 'l1.maxBytes',
    parse: bytes(2 ** 48),
    help: 'L1 byte bound, bytes or a quantity such as 64Mi (default 64Mi)',
  },
  {
    flag: 'l1-max-ttl',
    path: 'l1.maxTTLSeconds',
    parse: int(0, 86_400 * 365),
    help: `longest life of an L1 entry in seconds; 0 disables L1 in front of Redis (default ${SIDECAR_DEFAULTS.l1.maxTTLSeconds})`,
  },
  {
    flag: 'default-ttl',
    path: 'defaultTTLSeconds',
    parse: int(0, 86_400 * 3650),
    help: `TTL in seconds of a PUT without ?ttl=; 0 = no expiry (default ${SIDECAR_DEFAULTS.defaultTTLSeconds})`,
  },
  {
    flag: 'write-policy',
    path: 'writePolicy',
    parse: oneOf(WRITE_POLICIES),
    help: `${WRITE_POLICIES.join('|')} against the origin (default ${SIDECAR_DEFAULTS.writePolicy}; without --origin writes go to Redis)`,
  },
  {
    flag: 'write-back-flush-interval-ms',
    path: 'writeBack.flushIntervalMs',
    parse: int(1, 3_600_000),
    help: `write-back: flush the journal to the origin at least every N ms (default ${SIDECAR_DEFAULTS.writeBack.flushIntervalMs})`,
  },
  {
    flag: 'write-back-flush-batch-size',
    path: 'writeBack.flushBatchSize',
    parse: int(1, 1_000_000),
    help: `write-back: entries per batch at most; this many local writes also start a flush (default ${SIDECAR_DEFAULTS.writeBack.flushBatchSize})`,
  },
  {
    flag: 'write-back-max-pending',
    path: 'writeBack.maxPending',
    parse: int(1, 100_000_000),
    help: `write-back: journaled writes not yet in the origin (cluster-wide) at most; further writes get 503 (default ${SIDECAR_DEFAULTS.writeBack.maxPending})`,
  },
  {
    flag: 'write-back-claim-timeout-ms',
    path: 'writeBackClaimTimeoutMs',
    parse: int(100, 3_600_000),
    help: `write-back: entries idle this long in a sidecar that died are claimed by another (default ${SIDECAR_DEFAULTS.writeBackClaimTimeoutMs})`,
  },
  {
    flag: 'origin',
    path: 'origin',
    parse: url(['postgres:', 'postgresql:', 'http:', 'https:']),
    help: 'application database: postgres://user[:password]@host:port/db or http(s)://service/prefix (read-through and the write policy)',
  },
  {
    flag: 'origin-table',
    path: 'originTable',
    parse: tableName,
    help: `PostgreSQL table of the origin, created if absent (default ${SIDECAR_DEFAULTS.originTable})`,
  },
  {
    flag: 'on-disconnect',
    path: 'onDisconnect',
    parse: oneOf(ON_DISCONNECT),
    help: `when the invalidation subscription is lost: drop L1 (consistency) or serve-stale L1 hits marked L1-STALE (availability) (default ${SIDECAR_DEFAULTS.onDisconnect})`,
  },
  {
    flag: 'max-value-bytes',
    path: 'maxValueBytes',
    parse: bytes(MAX_VALUE_BYTES_CEILING),
    help: 'largest value a PUT accepts, bytes or a quantity (default 1Mi)',
  },
  {
    flag: 'redis-timeout-ms',
    path: 'redisTimeoutMs',
    parse: int(1, 60_000),
    help: `time box of every Redis call in ms (default ${SIDECAR_DEFAULTS.redisTimeoutMs})`,
  },
  {
    flag: 'cache-cluster',
    path: 'cacheCluster',
    parse: objectName,
    help: 'name of the CacheCluster this sidecar belongs to, the label `cachecluster` of every metric (the operator sets it); default: none',
  },
  {
    flag: 'log-level',
    path: 'logLevel',
    parse: oneOf(LOG_LEVELS),
    help: `${LOG_LEVELS.join('|')} (default ${SIDECAR_DEFAULTS.logLevel})`,
  },
];

/** Keys the YAML file may hold, and the flag spec each one maps to. */
const FILE_KEYS = new Map(FLAGS.filter((f) => !f.noFile).map((f) => [f.path, f] as const));
const FILE_SECTIONS = new Set(['l1', 'writeBack']);

/** `--l1-policy` → `RIPPLECACHE_L1_POLICY`. */
export function envName(flag: string): string {
  return `RIPPLECACHE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** The `--help` text: every flag with its environment variable and default. */
export function helpText(): string {
  const lines = [
    'Usage: ripplecache-sidecar [flags]',
    '',
    'A local L1 cache in front of Redis with an HTTP API on 127.0.0.1, kept consistent across pods by',
    'invalidation messages on a Redis pub/sub channel. Each flag can also be set with the environment',
    'variable shown, or (camelCase) in the YAML file given with --config. Precedence: flag > env > file.',
    '',
    'Flags:',
  ];
  const all: { flag: string; help: string; env: string }[] = [
    ...FLAGS.map((f) => ({ flag: `--${f.flag}`, help: f.help, env: envName(f.flag) })),
    {
      flag: '--config FILE',
      help: 'YAML config file (camelCase keys, e.g. l1: {policy: lfu, maxBytes: 64Mi})',
      env: envName('config'),
    },
    { flag: '--version', help: 'print the version (ripplecache-sidecar X.Y.Z) and exit', env: '' },
    { flag: '--help', help: 'print this help and exit', env: '' },
  ];
  for (const f of all) {
    lines.push(`  ${f.flag}`);
    lines.push(`      ${f.help}`);
    if (f.env) lines.push(`      env: ${f.env}`);
  }
  lines.push('', 'Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad flag or config.');
  return lines.join('\n');
}

type Layer = Map<string, unknown>;

function parseArgv(argv: readonly string[]): { layer: Layer; help: boolean; version: boolean; configFile?: string } {
  const layer: Layer = new Map();
  let help = false;
  let version = false;
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (flags start with --)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    // The name first: an unknown flag is reported as such wherever it is and whatever follows it.
    const spec = name === 'config' ? undefined : FLAGS.find((f) => f.flag === name);
    if (name !== 'config' && !spec) throw new ConfigError(`unknown flag --${name}`);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw new ConfigError(`--${name} needs a value`);
      }
      i++;
    }
    if (!spec) {
      configFile = str(value, '--config');
      continue;
    }
    const parsed = spec.parse(value, `--${name}`);
    if (spec.repeatable) {
      const list = (layer.get(spec.path) as unknown[] | undefined) ?? [];
      list.push(parsed);
      layer.set(spec.path, list);
    } else {
      layer.set(spec.path, parsed);
    }
  }
  return configFile === undefined ? { layer, help, version } : { layer, help, version, configFile };
}

function parseEnv(env: Readonly<Record<string, string | undefined>>): Layer {
  const layer: Layer = new Map();
  for (const spec of FLAGS) {
    const name = envName(spec.flag);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (spec.repeatable) {
      layer.set(
        spec.path,
        raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => spec.parse(s, name)),
      );
    } else {
      layer.set(spec.path, spec.parse(raw, name));
    }
  }
  return layer;
}

/** Parses the YAML text of a config file; unknown keys are an error that names them. */
export function parseConfigFile(text: string, file: string): Layer {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const layer: Layer = new Map();
  if (doc === null || doc === undefined) return layer;
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError(`${file}: expected a mapping at the top level`);
  const unknown: string[] = [];
  const visit = (obj: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (!prefix && FILE_SECTIONS.has(key)) {
        if (value === null || value === undefined) continue;
        if (typeof value !== 'object' || Array.isArray(value)) {
          throw new ConfigError(`${file}: ${key}: expected a mapping`);
        }
        visit(value as Record<string, unknown>, key);
        continue;
      }
      const spec = FILE_KEYS.get(path);
      if (!spec) {
        unknown.push(path);
        continue;
      }
      if (value === null || value === undefined) continue;
      const where = `${file}: ${path}`;
      if (spec.repeatable) {
        if (!Array.isArray(value)) throw new ConfigError(`${where}: expected a list`);
        layer.set(
          path,
          value.map((v, i) => spec.parse(v, `${where}[${i}]`)),
        );
      } else {
        layer.set(path, spec.parse(value, where));
      }
    }
  };
  visit(doc as Record<string, unknown>, '');
  if (unknown.length > 0) throw new ConfigError(`${file}: unknown keys: ${unknown.join(', ')}`);
  return layer;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj = target;
  for (const part of parts.slice(0, -1)) obj = obj[part] as Record<string, unknown>;
  obj[parts[parts.length - 1] ?? path] = value;
}

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a config file; injected so that tests need no file system. */
  readFile: (path: string) => string;
}

/** Builds the configuration from flags, environment, config file and defaults (in that order). */
export function parseConfig(sources: ConfigSources): ConfigResult {
  const flags = parseArgv(sources.argv);
  if (flags.help) return { kind: 'help', text: helpText() };
  if (flags.version) return { kind: 'version' };
  const env = parseEnv(sources.env);
  const configFile = flags.configFile ?? (sources.env[envName('config')] || undefined);
  let file: Layer = new Map();
  if (configFile !== undefined) {
    let text: string;
    try {
      text = sources.readFile(configFile);
    } catch (err) {
      throw new ConfigError(`--config ${configFile}: cannot be read: ${(err as Error).message}`);
    }
    file = parseConfigFile(text, configFile);
  }
  const config = structuredClone(SIDECAR_DEFAULTS) as SidecarConfig;
  for (const layer of [file, env, flags.layer]) {
    for (const [path, value] of layer) setPath(config as unknown as Record<string, unknown>, path, value);
  }
  if (config.metricsListen !== undefined && sameSocket(config.metricsListen, config.listen)) {
    const show = (a: ListenAddress) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
    throw new ConfigError(
      `--metrics-listen ${show(config.metricsListen)} overlaps --listen ${show(config.listen)}: give the metrics listener a port of its own`,
    );
  }
  if (config.redis === undefined && config.redisReplicas.length > 0) {
    throw new ConfigError('--redis-replica needs --redis (the primary)');
  }
  if (config.origin !== undefined && config.writePolicy === 'write-back' && config.redis === undefined) {
    throw new ConfigError(
      '--write-policy write-back with --origin needs --redis: the write-back journal is a Redis Stream',
    );
  }
  return { kind: 'config', config };
}

/** Reads the real process arguments, environment and file system. */
export function loadConfig(): ConfigResult {
  return parseConfig({
    argv: process.argv.slice(2),
    env: process.env,
    readFile: (path) => readFileSync(path, 'utf8'),
  });
}

/** Replaces the password of a Redis URL with `***`, for logs. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/** The configuration as it may be logged: no password anywhere. */
export function redactedConfig(config: SidecarConfig): Record<string, unknown> {
  return {
    ...config,
    redis: config.redis === undefined ? undefined : redactUrl(config.redis),
    redisReplicas: config.redisReplicas.map(redactUrl),
    redisPassword: config.redisPassword === undefined ? undefined : '***',
    origin: config.origin === undefined ? undefined : redactUrl(config.origin),
  };
}
