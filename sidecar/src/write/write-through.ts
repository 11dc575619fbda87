/**
 * Write-through: the database first, then Redis, then the invalidation; the caller gets its 204 only
 * after both. A database failure returns the error and leaves the cache as it was.
 *
 * Two concurrent writers: each takes a version before writing the database; the database keeps the
 * newer one (`WHERE version < new`), and the Redis record is replaced only by a newer version, so Redis
 * never ends older than the database whatever order the two fills land in. A writer whose database write
 * was superseded (the same or a newer version was already there: the newer writer's, or a row the
 * application wrote itself) does not fill Redis; it replaces a record at its version or older by an
 * invalidation tombstone (a newer one, the newer writer's, stays) and publishes the invalidation, so that
 * Redis cannot keep a value older than the database. Its PUT still answers 204: the write was applied in
 * version order and found already overtaken, as if a newer write had followed it.
 *
 * Redis failing between the database commit and the fill: the error is returned (503), the database holds
 * the value, and Redis may keep serving the previous value until its TTL or the next write of the key.
 */
import type { CacheValue } from '../tiers/tiered-cache.js';
import { writeDirectMany } from './write-direct-many.js';
import {
  deleteDirect,
  writeDirect,
  type DirectPolicyOptions,
  type PolicyWrite,
  type WritePolicyHandler,
} from './write-policy.js';

export class WriteThroughPolicy implements WritePolicyHandler {
  readonly name = 'write-through';

  constructor(private readonly options: DirectPolicyOptions) {}

  put(key: string, value: CacheValue, ttlSeconds: number): Promise<void> {
    return writeDirect(
      this.options,
      key,
      (version) => this.options.origin.put(key, value.body, value.contentType, version),
      (records, version, invalidation) => records.fill(key, value, ttlSeconds, version, invalidation),
    );
  }

  delete(key: string): Promise<void> {
    return deleteDirect(this.options, key);
  }

  writeMany(writes: readonly PolicyWrite[]): Promise<(Error | undefined)[]> {
    return writeDirectMany(this.options, writes, (records, w, version, invalidation) =>
      w.op === 'put'
        ? records.fill(w.key, w.value, w.ttlSeconds, version, invalidation)
        : records.tombstone(w.key, version, invalidation, true),
    );
  }
}
