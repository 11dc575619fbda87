/**
 * The sidecar's configuration: its type, with every setting's meaning and default, and the defaults
 * themselves. `config.ts` builds one from flags, environment and the config file (`config-values.ts` holds
 * the value parsers). Components import their settings' types from here, not from the loader.
 */
import { DEFAULT_INVALIDATION_CHANNEL } from '../../common/src/protocol.js';
import type { HostPort } from '../../common/src/host-port.js';

export type L1Policy = 'lru' | 'lfu' | 'fifo' | 'ttl';
export type WritePolicy = 'write-through' | 'write-back' | 'write-around';
export type OnDisconnect = 'drop' | 'serve-stale';
export type Durability = 'replicated' | 'primary';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const L1_POLICIES: readonly L1Policy[] = ['lru', 'lfu', 'fifo', 'ttl'];
export const WRITE_POLICIES: readonly WritePolicy[] = ['write-through', 'write-back', 'write-around'];
export const ON_DISCONNECT: readonly OnDisconnect[] = ['drop', 'serve-stale'];
export const DURABILITIES: readonly Durability[] = ['replicated', 'primary'];
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

/** A `HOST:PORT` to listen on (common/src/host-port.ts). */
export type ListenAddress = HostPort;

export interface SidecarConfig {
  /** Address of the HTTP API. Default `127.0.0.1:7070` (the app in the same pod is the only client). */
  listen: ListenAddress;
  /**
   * Address of a second HTTP listener serving only `GET /metrics`, `/healthz` and `/readyz` (nothing of the
   * cache API), so that Prometheus and the kubelet's httpGet probes can reach them on the pod IP while the
   * unauthenticated API stays on loopback. Default: none (off). The operator's webhook sets `[::]:7071`.
   */
  metricsListen: ListenAddress | undefined;
  /** URL of the Redis primary (`redis://` or `rediss://`). Default: none, the sidecar runs L1-only. */
  redis: string | undefined;
  /**
   * `--redis` is a seed address of a Redis Cluster: the sidecar uses ioredis' Cluster client and the
   * bucketed key layout (sidecar/src/write/key-layout.ts). Default false (one primary, as before).
   */
  redisCluster: boolean;
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
  /**
   * When a write-back journal append or a versioned record write (write-through, write-around, with an
   * origin) is acknowledged: `replicated` waits after the Redis step until at least one replica has it
   * (`WAIT 1 durabilityTimeoutMs`) and answers 503 `ReplicationTimeout` when none did in time; `primary`
   * (default) acknowledges once the primary has it. The operator renders `replicated` for replication
   * CacheClusters with replicas (README "Durability").
   */
  durability: Durability;
  /** Longest wait for a replica's acknowledgement with `durability: replicated`, in ms. Default 1000. */
  durabilityTimeoutMs: number;
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
  redisCluster: false,
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
  durability: 'primary',
  durabilityTimeoutMs: 1000,
  logLevel: 'info',
  cacheCluster: undefined,
} satisfies SidecarConfig);
