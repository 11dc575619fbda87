/**
 * Builds the write path of a sidecar that has an origin: the origin adapter, the versioned Redis records,
 * the read-through loader, the configured write policy and — for write-back — the journal and its
 * flusher. `app.ts` calls it; every dependency is passed in.
 */
import type { Origin, OriginEvents } from '../origin/origin.js';
import { BucketedJournal } from '../redis/bucketed-journal.js';
import { publishInBucket } from '../redis/bucket-publish.js';
import type { RedisClient } from '../redis/redis-client.js';
import { ReplicaWaiter, type ReplicaWaitEvents } from '../redis/replica-waiter.js';
import { HttpOrigin } from '../origin/http-origin.js';
import { createPostgresPool, PostgresOrigin } from '../origin/postgres-origin.js';
import { groupByBucket } from './bucket-batching.js';
import { sweepInterval } from './bucket-schedule.js';
import { SINGLE_LAYOUT, type KeyLayout } from './key-layout.js';
import { ReadThrough } from './read-through.js';
import { LocalVersionSource, VersionedRecords } from '../redis/versioned-records.js';
import { WriteAroundPolicy } from './write-around.js';
import { WriteBackFlusher, type FlusherEvents, type FlusherLog, type PendingSnapshot } from './write-back-flusher.js';
import { WriteBackJournal } from '../redis/write-back-journal.js';
import { WriteBackPolicy } from './write-back.js';
import type { InvalidationSource, WritePolicyHandler, WritePolicyName } from './write-policy.js';
import { WriteThroughPolicy } from './write-through.js';

/** Time box of each origin call (connect, statement, HTTP request), ms. */
export const ORIGIN_TIMEOUT_MS = 5000;

export interface WritePathOptions {
  /** `postgres://…`, `postgresql://…`, `http://…` or `https://…`. */
  originUrl: string;
  /** PostgreSQL table (`name` or `schema.name`). */
  originTable: string;
  writePolicy: WritePolicyName;
  writeBack: {
    flushIntervalMs: number;
    flushBatchSize: number;
    maxPending: number;
    claimTimeoutMs: number;
    /** Coalescing window per key, ms (0: off). */
    coalesceWindowMs?: number;
  };
  /** TTL of read-through fills in Redis, seconds. */
  defaultTTLSeconds: number;
  /**
   * The Redis primary connection of the write path (a connection of its own under durability
   * `replicated`: WAIT blocks it); absent in L1-only mode.
   */
  redis: RedisClient | undefined;
  /** Record keys, journal streams and version counters (key-layout.ts). Default the single layout. */
  layout?: KeyLayout;
  /**
   * `--durability replicated`: WAIT for one replica, at most `timeoutMs`, after every journal append and
   * versioned record write. Absent: `primary` (no wait).
   */
  durability?: { timeoutMs: number; events?: ReplicaWaitEvents };
  channel: string;
  /** This sidecar's id: its write-back consumer name. */
  senderId: string;
  publisher: InvalidationSource;
  invalidateLocal: (keys: readonly string[]) => void;
  onPublished: () => void;
  onRedisError: (err: unknown) => void;
  originEvents: OriginEvents;
  flusherEvents: FlusherEvents;
  log: FlusherLog;
  clock: () => number;
}

export interface WritePath {
  readonly origin: Origin;
  readonly policy: WritePolicyHandler;
  readonly readThrough: ReadThrough;
  /** Present under write-back. */
  readonly flusher: WriteBackFlusher | undefined;
  /** The write-back backlog for the metrics, read at scrape time (zeros under the other policies). */
  pending(): Promise<PendingSnapshot>;
  /** Starts the flusher (write-back). */
  start(): void;
  /** Drains the flusher (at most `timeoutMs`), then closes the origin. Resolves true when drained. */
  close(timeoutMs: number): Promise<boolean>;
}

/**
 * A configuration the write path cannot run with. `loadConfig()` rejects both cases first (a
 * ConfigError, exit code 2), so only a config built in code reaches this: buildApp() rejects with it.
 */
export class WritePathConfigError extends Error {
  override readonly name = 'WritePathConfigError';
}

export function createOrigin(
  url: string,
  table: string,
  events: OriginEvents,
  onIdleError: (err: Error) => void,
): Origin {
  const scheme = new URL(url).protocol;
  if (scheme === 'postgres:' || scheme === 'postgresql:') {
    const u = new URL(url);
    const description = `postgres://${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname} table ${table}`;
    return new PostgresOrigin({
      pool: createPostgresPool({ url, timeoutMs: ORIGIN_TIMEOUT_MS, onIdleError }),
      table,
      description,
      events,
    });
  }
  if (scheme === 'http:' || scheme === 'https:') return new HttpOrigin({ url, timeoutMs: ORIGIN_TIMEOUT_MS, events });
  throw new WritePathConfigError(`--origin: scheme ${scheme} is not postgres:, postgresql:, http: or https:`);
}

export function createWritePath(o: WritePathOptions): WritePath {
  if (o.writePolicy === 'write-back' && o.redis === undefined) {
    throw new WritePathConfigError('--write-policy write-back needs --redis: its journal is a Redis Stream');
  }
  const origin = createOrigin(o.originUrl, o.originTable, o.originEvents, (err) =>
    o.log.warn({ origin: 'postgres', error: err.message }, 'An idle database connection failed'),
  );
  const layout = o.layout ?? SINGLE_LAYOUT;
  const records =
    o.redis === undefined
      ? undefined
      : new VersionedRecords({ client: o.redis, channel: o.channel, layout, onError: o.onRedisError });
  const versions = records ?? new LocalVersionSource(o.clock);
  const replicas =
    o.redis !== undefined && o.durability !== undefined
      ? new ReplicaWaiter({
          client: o.redis,
          slotOf: (key) => layout.bucketOf(key).slot,
          timeoutMs: o.durability.timeoutMs,
          ...(o.durability.events ? { events: o.durability.events } : {}),
          onError: o.onRedisError,
        })
      : undefined;
  const readThrough = new ReadThrough({
    origin,
    ...(records ? { records } : {}),
    defaultTTLSeconds: o.defaultTTLSeconds,
    onFillError: () => {},
  });
  const direct = {
    origin,
    ...(records ? { records } : {}),
    versions,
    publisher: o.publisher,
    invalidateLocal: o.invalidateLocal,
    onPublished: o.onPublished,
    ...(replicas ? { replicas } : {}),
  };

  let flusher: WriteBackFlusher | undefined;
  let policy: WritePolicyHandler;
  if (o.writePolicy === 'write-back' && o.redis !== undefined && records !== undefined) {
    const redis = o.redis;
    const journal =
      layout.buckets.length > 1
        ? new BucketedJournal({
            client: redis,
            layout,
            consumer: o.senderId,
            channel: o.channel,
            onError: o.onRedisError,
            clock: o.clock,
            sweepMs: sweepInterval(o.writeBack.claimTimeoutMs),
          })
        : new WriteBackJournal({ client: redis, consumer: o.senderId, channel: o.channel, onError: o.onRedisError });
    flusher = new WriteBackFlusher({
      journal,
      origin,
      records,
      flushIntervalMs: o.writeBack.flushIntervalMs,
      flushBatchSize: o.writeBack.flushBatchSize,
      claimIdleMs: o.writeBack.claimTimeoutMs,
      coalesceWindowMs: o.writeBack.coalesceWindowMs ?? 0,
      maxPending: o.writeBack.maxPending,
      events: o.flusherEvents,
      log: o.log,
      clock: o.clock,
      announce: async (keys) => {
        try {
          // One message per bucket on Redis Cluster, from the bucket's primary (bucket-publish.ts).
          const groups = groupByBucket(keys, (k) => layout.bucketOf(k).index);
          await Promise.all(
            [...groups.values()].map((g) =>
              publishInBucket(redis, layout, o.channel, o.publisher.keys(g.items), g.items),
            ),
          );
          o.onPublished();
        } finally {
          // The receiver skips this sidecar's own messages: its own L1 is invalidated here.
          o.invalidateLocal(keys);
        }
      },
    });
    policy = new WriteBackPolicy({
      journal,
      flusher,
      origin,
      maxPending: o.writeBack.maxPending,
      publisher: o.publisher,
      invalidateLocal: o.invalidateLocal,
      onPublished: o.onPublished,
      ...(replicas ? { replicas } : {}),
    });
  } else if (o.writePolicy === 'write-around') {
    policy = new WriteAroundPolicy(direct);
  } else {
    policy = new WriteThroughPolicy(direct);
  }

  return {
    origin,
    policy,
    readThrough,
    flusher,
    pending: async () => (flusher ? flusher.refreshPending() : { pending: 0, oldestPendingSeconds: 0 }),
    start: () => flusher?.start(),
    close: async (timeoutMs) => {
      const drained = flusher ? await flusher.stop(timeoutMs) : true;
      await origin.close();
      return drained;
    },
  };
}
