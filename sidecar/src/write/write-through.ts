/**
 * Write-through: the database first, then Redis, then the invalidation; the caller gets its 204 only
 * after both. A database failure returns the error and leaves the cache as it was.
 *
 * Two concurrent writers: each takes a version before writing the database; the database keeps the
 * newer one (`WHERE version < new`), and the Redis record is replaced only by a newer version, so Redis
 * never ends older than the database whatever order the two fills land in. A writer whose database write
 * was superseded (a newer version was already there) leaves Redis to the newer writer.
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
