/**
 * What the write policies share. A policy is chosen per sidecar (`--write-policy`) and used for PUT and
 * DELETE when an origin is configured (without an origin every policy just writes Redis, as before).
 *
 * | policy        | PUT                                                     | DELETE                                  |
 * |---------------|---------------------------------------------------------|-----------------------------------------|
 * | write-through | database, then the Redis record (version-guarded) and   | database tombstone, then Redis          |
 * |               | the invalidation; 204 after both                        | tombstone and invalidation              |
 * | write-back    | journal entry + Redis record + invalidation in one      | journal entry (a delete) + Redis        |
 * |               | script; 204; the flusher writes the database later      | tombstone + invalidation; flushed later |
 * | write-around  | database, then a Redis tombstone + invalidation (the    | as write-through                        |
 * |               | next read misses and fills from the database)           |                                         |
 *
 * Every write takes a version first (redis/versioned-records.ts); the database and Redis only ever move to a
 * newer version. With `--durability replicated` the Redis step is followed by a WAIT for one replica
 * (redis/replica-waiter.ts) before the 204.
 */
import type { Origin, WriteOutcome } from '../origin/origin.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import type { VersionedRecords, VersionSource } from '../redis/versioned-records.js';

export type WritePolicyName = 'write-through' | 'write-back' | 'write-around';

export interface WritePolicyHandler {
  readonly name: WritePolicyName;
  /** Stores a value; resolves once the policy's durability point is reached (then the API answers 204). */
  put(key: string, value: CacheValue, ttlSeconds: number): Promise<void>;
  /** Deletes a key per the policy's rules. */
  delete(key: string): Promise<void>;
  /**
   * Writes of distinct keys sharing one origin call (`POST /v1/batch`; write-through and write-around, see
   * write-direct-many.ts). One outcome per write: undefined once stored, or its error. Absent: the batch
   * route calls put/delete per key (write-back groups those itself, write-back.ts).
   */
  writeMany?(writes: readonly PolicyWrite[]): Promise<(Error | undefined)[]>;
}

/** One write of a batch. */
export type PolicyWrite =
  | { readonly op: 'put'; readonly key: string; readonly value: CacheValue; readonly ttlSeconds: number }
  | { readonly op: 'delete'; readonly key: string };

/** Builds invalidation messages (S's InvalidationPublisher); a message is built only when it is sent. */
export interface InvalidationSource {
  keys(keys: readonly string[]): string;
}

/** Dependencies shared by write-through and write-around. */
export interface DirectPolicyOptions {
  origin: Origin;
  /** Redis records; absent in L1-only mode (then only this sidecar's L1 is invalidated). */
  records?: VersionedRecords;
  /** Where versions come from: `records` itself, or a LocalVersionSource in L1-only mode. */
  versions: VersionSource;
  publisher: InvalidationSource;
  /** Drops keys from this sidecar's L1 (and marks in-flight reads of them stale). */
  invalidateLocal(keys: readonly string[]): void;
  /** Called for every invalidation message sent (metrics). */
  onPublished?: () => void;
  /**
   * `--durability replicated`: waits until a replica has the Redis step (WAIT), before the write is
   * acknowledged; rejects with ReplicationTimeoutError (503) when none does in time. Absent: `primary`.
   */
  replicas?: ReplicaWait;
}

/** What the write policies need of redis/replica-waiter.ts. */
export interface ReplicaWait {
  /** `keys`: the cache keys written (on Redis Cluster the WAIT goes to the primary of each key's slot). */
  wait(keys?: readonly string[]): Promise<void>;
}

/**
 * The sequence write-through, write-around and their DELETE share: take a version, write the origin at
 * it, and only when the origin applied it (it held nothing newer) update the Redis record and publish the
 * invalidation; this sidecar's L1 entry is dropped whatever happened.
 *
 * When the origin superseded the write (it held this version or a newer one: a row the application wrote
 * itself, say), Redis may hold an older record than the database: a record at the write's version or
 * older is replaced by an invalidation tombstone (VersionedRecords.supersede; a newer one is left alone)
 * and the invalidation is published, so that every sidecar's next read loads the row from the database.
 * The write still succeeds (204): it was applied in version order, then found already overtaken.
 */
export async function writeDirect(
  options: DirectPolicyOptions,
  key: string,
  originStep: (version: number) => Promise<WriteOutcome>,
  redisStep: (records: VersionedRecords, version: number, invalidation: string) => Promise<unknown>,
): Promise<void> {
  const { origin, records, versions, publisher } = options;
  origin.checkKey(key);
  const version = await versions.nextVersion(key);
  const outcome = await originStep(version);
  try {
    if (records !== undefined) {
      if (outcome === 'applied') await redisStep(records, version, publisher.keys([key]));
      else await records.supersede(key, version, publisher.keys([key]));
      options.onPublished?.();
      // The record (and the version counter before it) on a replica before the 204: a failover to the
      // most advanced replica keeps both (README "Durability").
      await options.replicas?.wait([key]);
    }
  } finally {
    options.invalidateLocal([key]);
  }
}

/** Deletes the key in the origin (a tombstone at a new version), then leaves a Redis tombstone. */
export function deleteDirect(options: DirectPolicyOptions, key: string): Promise<void> {
  return writeDirect(
    options,
    key,
    (version) => options.origin.delete(key, version),
    (records, version, invalidation) => records.tombstone(key, version, invalidation, true),
  );
}
