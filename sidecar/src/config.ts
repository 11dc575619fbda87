/**
 * Sidecar configuration: the only reader of process.argv, process.env and the config file.
 *
 * Every flag `--foo-bar` can also be given as the environment variable `RIPPLECACHE_FOO_BAR` and (except
 * the password and the file path itself) as the camelCase key of the YAML file named by `--config`,
 * which is what the operator's webhook mounts. Precedence: flag > environment > config file > defaults.
 * A bad value is a {@link ConfigError}; `main.ts` prints it and exits with code 2.
 *
 * This is the loader: the flag table, `--help`, the config file and the precedence. The type and its
 * defaults are in `config-defaults.ts`, the value parsers in `config-values.ts`, the command-line and
 * environment mechanics (shared with the operator) in common/src/flags.ts.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { envName, envValues, FlagError, parseFlags, type FlagSpec as CommonFlagSpec } from '../../common/src/flags.js';
import {
  DURABILITIES,
  L1_POLICIES,
  LOG_LEVELS,
  MAX_VALUE_BYTES_CEILING,
  ON_DISCONNECT,
  SIDECAR_DEFAULTS,
  WRITE_POLICIES,
  type ListenAddress,
  type SidecarConfig,
} from './config-defaults.js';
import {
  bool,
  bytes,
  ConfigError,
  fileMode,
  formatListen,
  int,
  objectName,
  oneOf,
  optionalListen,
  parseListenAddress,
  REDIS_URL,
  redisDb,
  sameSocket,
  str,
  tableName,
  url,
  type Parser,
} from './config-values.js';

export { envName } from '../../common/src/flags.js';
export { ConfigError, formatListen, parseByteQuantity, parseListen, parseListenAddress } from './config-values.js';
/** The result of parsing: a configuration, or a request for the help text or the version. */
export type ConfigResult =
  { kind: 'config'; config: SidecarConfig } | { kind: 'help'; text: string } | { kind: 'version' };

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
  /** A true|false flag: alone it means true (common/src/flags.ts). */
  boolean?: boolean;
}

const FLAGS: readonly FlagSpec[] = [
  {
    flag: 'listen',
    path: 'listen',
    parse: parseListenAddress,
    repeatable: true,
    help: `HOST:PORT or unix:/PATH of the HTTP API, repeatable (env: comma-separated) (default ${SIDECAR_DEFAULTS.listen.map(formatListen).join(',')})`,
  },
  {
    flag: 'listen-resp',
    path: 'listenResp',
    parse: parseListenAddress,
    repeatable: true,
    help: 'HOST:PORT or unix:/PATH of the Redis-protocol (RESP) front, repeatable (env: comma-separated): Redis clients get L1, Redis, read-through and the write policy with GET, SET, DEL, MGET, ... (docs/sidecar.md); default: off',
  },
  {
    flag: 'socket-mode',
    path: 'socketMode',
    parse: fileMode,
    help: 'permissions of the Unix sockets of --listen and --listen-resp, octal (default 0660)',
  },
  {
    flag: 'resp-password',
    path: 'respPassword',
    parse: str,
    noFile: true,
    help: 'password the RESP front asks for with AUTH before any other command (never logged); default: none, as the HTTP API',
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
    flag: 'redis-cluster',
    path: 'redisCluster',
    parse: bool,
    boolean: true,
    help: 'true: --redis is a seed address of a Redis Cluster (the operator renders the Service of every node); the sidecar then uses the Cluster client and the bucketed key layout (README "The sidecar on Redis Cluster") (default false)',
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
    flag: 'write-back-coalesce-window-ms',
    path: 'writeBack.coalesceWindowMs',
    parse: int(0, 1_800_000),
    help: `write-back: hold each key's writes N ms before writing the database, so a hot key is written once per window (adds up to N ms of database lag; must be under half of --write-back-claim-timeout-ms; default ${SIDECAR_DEFAULTS.writeBack.coalesceWindowMs}: off)`,
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
    flag: 'durability',
    path: 'durability',
    parse: oneOf(DURABILITIES),
    help: `${DURABILITIES.join('|')}: with replicated, a write-back append or versioned record write is acknowledged only once a replica has it (WAIT 1), else 503 ReplicationTimeout (default ${SIDECAR_DEFAULTS.durability}; the operator renders replicated for replication clusters)`,
  },
  {
    flag: 'durability-timeout-ms',
    path: 'durabilityTimeoutMs',
    parse: int(1, 60_000),
    help: `longest wait in ms for a replica to acknowledge a write with --durability replicated (default ${SIDECAR_DEFAULTS.durabilityTimeoutMs})`,
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

/** The flags as common/src/flags.ts sees them: every entry of {@link FLAGS}, and `--config`. */
const COMMAND_LINE: readonly CommonFlagSpec[] = [
  ...FLAGS.map((f) => ({
    name: f.flag,
    ...(f.repeatable ? { repeatable: true } : {}),
    ...(f.boolean ? { boolean: true } : {}),
  })),
  { name: 'config' },
];
const FLAG_BY_NAME = new Map(FLAGS.map((f) => [f.flag, f] as const));

/** Adds a parsed value to a layer: a repeatable flag's values make a list. */
function setValue(layer: Layer, spec: FlagSpec, parsed: unknown): void {
  if (!spec.repeatable) layer.set(spec.path, parsed);
  else layer.set(spec.path, [...((layer.get(spec.path) as unknown[] | undefined) ?? []), parsed]);
}

/** The command line (common/src/flags.ts); each value is parsed as it is read, so errors come left to right. */
function parseArgv(argv: readonly string[]): { layer: Layer; help: boolean; version: boolean; configFile?: string } {
  const layer: Layer = new Map();
  let configFile: string | undefined;
  let parsed;
  try {
    parsed = parseFlags(argv, COMMAND_LINE, {
      builtins: true,
      onFlag: (name, value) => {
        const spec = FLAG_BY_NAME.get(name);
        if (spec) setValue(layer, spec, spec.parse(value, `--${name}`));
        else configFile = str(value, '--config');
      },
    });
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    const message = err.problem === 'unexpected-argument' ? `${err.message} (flags start with --)` : err.message;
    throw new ConfigError(message, { cause: err });
  }
  const { help, version } = parsed;
  return configFile === undefined ? { layer, help, version } : { layer, help, version, configFile };
}

/** The `RIPPLECACHE_<FLAG>` variables; an error names the variable. */
function parseEnv(env: Readonly<Record<string, string | undefined>>): Layer {
  const layer: Layer = new Map();
  for (const [name, values] of envValues(env, COMMAND_LINE)) {
    const spec = FLAG_BY_NAME.get(name);
    if (!spec) continue; // RIPPLECACHE_CONFIG: read by parseConfig
    const where = envName(name);
    layer.set(spec.path, spec.repeatable ? values.map((v) => spec.parse(v, where)) : spec.parse(values[0], where));
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
        // A single value stands for a list of one (`listen: 127.0.0.1:7070`).
        if (!Array.isArray(value)) {
          if (typeof value === 'object') throw new ConfigError(`${where}: expected a list`);
          layer.set(path, [spec.parse(value, where)]);
          continue;
        }
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
  if (config.listen.length === 0) throw new ConfigError('--listen: give at least one address for the HTTP API');
  const named: Array<[string, ListenAddress]> = [
    ...config.listen.map((a) => ['--listen', a] as [string, ListenAddress]),
    ...config.listenResp.map((a) => ['--listen-resp', a] as [string, ListenAddress]),
    ...(config.metricsListen ? [['--metrics-listen', config.metricsListen] as [string, ListenAddress]] : []),
  ];
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      const [flagA, a] = named[i] as [string, ListenAddress];
      const [flagB, b] = named[j] as [string, ListenAddress];
      if (!sameSocket(a, b)) continue;
      throw new ConfigError(
        flagB === '--metrics-listen'
          ? `--metrics-listen ${formatListen(b)} overlaps ${flagA} ${formatListen(a)}: give the metrics listener a port of its own`
          : `${flagB} ${formatListen(b)} overlaps ${flagA} ${formatListen(a)}: give each listener an address of its own`,
      );
    }
  }
  if (config.redis === undefined && config.redisReplicas.length > 0) {
    throw new ConfigError('--redis-replica needs --redis (the primary)');
  }
  if (config.redisCluster && config.redis === undefined) {
    throw new ConfigError('--redis-cluster needs --redis (a seed address of the cluster)');
  }
  if (config.redisCluster && config.redis !== undefined && redisDb(config.redis) !== 0) {
    throw new ConfigError('--redis: Redis Cluster has only database 0; drop the /db of the URL');
  }
  if (config.redisCluster && config.redisReplicas.length > 0) {
    throw new ConfigError(
      '--redis-replica cannot be used with --redis-cluster: the replicas of each shard are found from the cluster',
    );
  }
  if (config.origin !== undefined && config.writePolicy === 'write-back' && config.redis === undefined) {
    throw new ConfigError(
      '--write-policy write-back with --origin needs --redis: the write-back journal is a Redis Stream',
    );
  }
  if (config.writeBack.coalesceWindowMs * 2 >= config.writeBackClaimTimeoutMs) {
    throw new ConfigError(
      `--write-back-coalesce-window-ms ${config.writeBack.coalesceWindowMs} must be under half of --write-back-claim-timeout-ms ${config.writeBackClaimTimeoutMs}: entries held longer would be claimed by another sidecar`,
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
    respPassword: config.respPassword === undefined ? undefined : '***',
    origin: config.origin === undefined ? undefined : redactUrl(config.origin),
  };
}
