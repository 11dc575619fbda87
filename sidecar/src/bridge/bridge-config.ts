/**
 * The bridge's command line (`ripplecache-bridge`), through common/src/flags.ts: every flag also reads
 * `RIPPLECACHE_<FLAG>` (repeatable flags: comma-separated). Pure: argv and env are passed in.
 *
 * Peers are named: `--peer NAME=URL` (repeatable), with optional `--peer-channel NAME=CHANNEL` and
 * `--peer-password-env NAME=VARIABLE` (the password is read from that environment variable, so that it
 * comes from a Secret and never appears on a command line or in a log).
 *
 * Redis Cluster: `--redis-cluster` says the local `--redis` is a seed of a Redis Cluster; `--peer-cluster
 * NAME` (repeatable) says the same of a peer's URL. The bridge then uses ioredis' Cluster client and the
 * sidecars' bucketed key layout there (bridge-redis.ts).
 */
import { DEFAULT_INVALIDATION_CHANNEL } from '../../../common/src/protocol.js';
import { FlagError, envValues, parseFlags, valuesByFlag, type FlagSpec } from '../../../common/src/flags.js';
import { MAX_VISITED } from '../../../common/src/invalidation-message.js';
import { ConfigError, REDIS_URL, bool, int, oneOf, parseListen, str } from '../config-values.js';
import { LOG_LEVELS, type LogLevel } from '../config-defaults.js';
import type { HostPort } from '../../../common/src/host-port.js';

export interface BridgePeerConfig {
  name: string;
  url: string;
  channel: string;
  password?: string;
  /** `url` is a seed of a Redis Cluster (`--peer-cluster NAME`). */
  cluster?: true;
}

export interface BridgeConfig {
  /** Default 0.0.0.0:7072: /metrics, /healthz, /readyz, /v1/peers. */
  listen: HostPort;
  /** The local Redis primary. */
  redis: string;
  /** `redis` is a seed of a Redis Cluster (`--redis-cluster`). Default false. */
  redisCluster: boolean;
  redisPassword?: string;
  /** The local invalidation channel. Default `ripplecache:invalidations`. */
  channel: string;
  /** This CacheCluster's name (`namespace/name`), the `origin` of relayed messages. */
  cluster: string;
  peers: BridgePeerConfig[];
  /** Default 2000. */
  redisTimeoutMs: number;
  /** Default 500. */
  maxBatch: number;
  /** Default 100000. */
  maxPending: number;
  /** Default 60000. */
  tombstoneTtlMs: number;
  /** Default info. */
  logLevel: LogLevel;
}

export const BRIDGE_DEFAULTS = {
  listen: { host: '0.0.0.0', port: 7072 },
  channel: DEFAULT_INVALIDATION_CHANNEL,
  redisTimeoutMs: 2000,
  maxBatch: 500,
  maxPending: 100_000,
  tombstoneTtlMs: 60_000,
  logLevel: 'info',
} as const satisfies { logLevel: LogLevel } & Record<string, unknown>;

/**
 * Peers at most: a relayed message names this cluster and every peer in `visited`, which a bridge takes for
 * malformed past MAX_VISITED (and then repairs all its peers).
 */
export const MAX_PEERS = MAX_VISITED - 1;

/** A Kubernetes namespace or CacheCluster name: a DNS label (RFC 1123), at most 63 characters. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `--cluster`: `namespace/name`, what the operator renders and what peers' bridges compare (relay-plan.ts). */
function clusterName(raw: string, where: string): string {
  const s = str(raw, where);
  const parts = s.split('/');
  if (parts.length !== 2 || !parts.every((p) => DNS_LABEL.test(p))) {
    throw new ConfigError(
      `${where}: "${s}" is not NAMESPACE/NAME (each a Kubernetes DNS label: lowercase letters, digits and '-', at most 63)`,
    );
  }
  return s;
}

const SPECS: readonly (FlagSpec & { help: string })[] = [
  { name: 'listen', help: 'HOST:PORT of /metrics, /healthz, /readyz and /v1/peers (default 0.0.0.0:7072)' },
  { name: 'redis', help: 'URL of the local Redis primary, redis://host:port[/db] (required)' },
  {
    name: 'redis-cluster',
    boolean: true,
    help: 'true: --redis is a seed address of a Redis Cluster (topology cluster) (default false)',
  },
  { name: 'redis-password', help: 'password of the local Redis (never logged)' },
  { name: 'channel', help: `local invalidation channel (default ${DEFAULT_INVALIDATION_CHANNEL})` },
  { name: 'cluster', help: 'name of this CacheCluster, namespace/name: the origin of relayed messages (required)' },
  {
    name: 'peer',
    repeatable: true,
    help: 'NAME=redis://host:port[/db] of a peer, repeatable (at least one); NAME: its --cluster',
  },
  {
    name: 'peer-channel',
    repeatable: true,
    help: `NAME=CHANNEL: a peer's channel (default ${DEFAULT_INVALIDATION_CHANNEL})`,
  },
  {
    name: 'peer-cluster',
    repeatable: true,
    help: "NAME: that peer's URL is a seed address of a Redis Cluster (topology cluster), repeatable",
  },
  {
    name: 'peer-password-env',
    repeatable: true,
    help: "NAME=VARIABLE: the environment variable holding a peer's password",
  },
  { name: 'redis-timeout-ms', help: 'time box of each Redis command, ms (default 2000)' },
  { name: 'max-batch', help: 'keys per relay call at most (default 500)' },
  { name: 'max-pending', help: 'keys waiting per peer before it is repaired instead (default 100000)' },
  { name: 'tombstone-ttl-ms', help: 'life of the tombstones written in peers, ms (default 60000)' },
  { name: 'log-level', help: `${LOG_LEVELS.join('|')} (default ${BRIDGE_DEFAULTS.logLevel})` },
];

export type BridgeConfigResult =
  { kind: 'run'; config: BridgeConfig } | { kind: 'help'; text: string } | { kind: 'version' };

export function bridgeHelpText(): string {
  const lines = [
    'Usage: ripplecache-bridge --cluster NS/NAME --redis URL --peer NAME=URL [flags]',
    '',
    'Relays the invalidations of one CacheCluster to its peers (other CacheClusters or Redis servers caching',
    'the same database). Each flag can also be set with the environment variable RIPPLECACHE_<FLAG>.',
    '',
  ];
  for (const s of SPECS) lines.push(`  --${s.name.padEnd(20)} ${s.help}`);
  return lines.join('\n');
}

/** A Redis Cluster has database 0 only: a URL naming another one cannot be meant for it. */
function requireDbZero(url: string, where: string): void {
  const path = new URL(url).pathname;
  if (path !== '' && path !== '/' && path !== '/0') {
    throw new ConfigError(`${where}: ${path.slice(1)} is not database 0, the only one a Redis Cluster has`);
  }
}

/** NAME=VALUE → [NAME, VALUE]. */
function pair(raw: string, flag: string): [string, string] {
  const i = raw.indexOf('=');
  if (i <= 0 || i === raw.length - 1) throw new ConfigError(`--${flag}: "${raw}" is not NAME=VALUE`);
  return [raw.slice(0, i), raw.slice(i + 1)];
}

export function parseBridgeConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BridgeConfigResult {
  let parsed;
  try {
    parsed = parseFlags(argv, SPECS, { builtins: true });
  } catch (err) {
    if (err instanceof FlagError) throw new ConfigError(err.message, { cause: err });
    throw err;
  }
  if (parsed.help) return { kind: 'help', text: bridgeHelpText() };
  if (parsed.version) return { kind: 'version' };
  const fromEnv = envValues(env, SPECS);
  const fromArgs = valuesByFlag(parsed.given);
  const values = (name: string): string[] => fromArgs.get(name) ?? fromEnv.get(name) ?? [];
  const one = (name: string): string | undefined => values(name).at(-1);
  const required = (name: string): string => {
    const v = one(name);
    if (v === undefined || v === '') throw new ConfigError(`--${name} is required`);
    return v;
  };
  const number = (name: string, min: number, max: number, dflt: number): number => {
    const v = one(name);
    return v === undefined ? dflt : (int(min, max)(v, `--${name}`) as number);
  };

  const redis = REDIS_URL(required('redis'), '--redis') as string;
  const cluster = clusterName(required('cluster'), '--cluster');
  const channels = new Map(values('peer-channel').map((r) => pair(r, 'peer-channel')));
  const passwordEnvs = new Map(values('peer-password-env').map((r) => pair(r, 'peer-password-env')));
  const clusterPeers = new Set(values('peer-cluster').map((r) => str(r, '--peer-cluster')));
  const peers: BridgePeerConfig[] = [];
  for (const raw of values('peer')) {
    const [name, url] = pair(raw, 'peer');
    if (peers.some((p) => p.name === name)) throw new ConfigError(`--peer: "${name}" is given twice`);
    REDIS_URL(url, `--peer ${name}`);
    const envVar = passwordEnvs.get(name);
    const password = envVar === undefined ? undefined : env[envVar];
    if (envVar !== undefined && (password === undefined || password === '')) {
      throw new ConfigError(`--peer-password-env ${name}: the environment variable ${envVar} is not set`);
    }
    peers.push({
      name,
      url,
      channel: channels.get(name) ?? DEFAULT_INVALIDATION_CHANNEL,
      ...(password !== undefined ? { password } : {}),
      ...(clusterPeers.has(name) ? { cluster: true as const } : {}),
    });
    if (clusterPeers.has(name)) requireDbZero(url, `--peer ${name}`);
  }
  if (peers.length === 0) throw new ConfigError('--peer: at least one peer is required');
  if (peers.length > MAX_PEERS) {
    throw new ConfigError(
      `--peer: ${peers.length} peers, at most ${MAX_PEERS} (a relayed message names at most ${MAX_VISITED} clusters)`,
    );
  }
  for (const name of [...channels.keys(), ...passwordEnvs.keys(), ...clusterPeers]) {
    if (!peers.some((p) => p.name === name)) throw new ConfigError(`"${name}" is not a --peer`);
  }
  const logLevelRaw = one('log-level');
  const logLevel =
    logLevelRaw === undefined ? BRIDGE_DEFAULTS.logLevel : (oneOf(LOG_LEVELS)(logLevelRaw, '--log-level') as LogLevel);
  const listenRaw = one('listen');
  const redisPassword = one('redis-password');
  const redisClusterRaw = one('redis-cluster');
  const redisCluster = redisClusterRaw === undefined ? false : bool(redisClusterRaw, '--redis-cluster');
  if (redisCluster) requireDbZero(redis, '--redis');
  return {
    kind: 'run',
    config: {
      listen: listenRaw === undefined ? { ...BRIDGE_DEFAULTS.listen } : parseListen(listenRaw, '--listen'),
      redis,
      redisCluster,
      ...(redisPassword !== undefined && redisPassword !== '' ? { redisPassword } : {}),
      channel: one('channel') ?? BRIDGE_DEFAULTS.channel,
      cluster,
      peers,
      redisTimeoutMs: number('redis-timeout-ms', 10, 600_000, BRIDGE_DEFAULTS.redisTimeoutMs),
      maxBatch: number('max-batch', 1, 100_000, BRIDGE_DEFAULTS.maxBatch),
      maxPending: number('max-pending', 1, 100_000_000, BRIDGE_DEFAULTS.maxPending),
      tombstoneTtlMs: number('tombstone-ttl-ms', 1000, 86_400_000, BRIDGE_DEFAULTS.tombstoneTtlMs),
      logLevel,
    },
  };
}
