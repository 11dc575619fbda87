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
import { deleteDirect, type DirectPolicyOptions, type WritePolicyHandler } from './write-policy.js';

export class WriteThroughPolicy implements WritePolicyHandler {
  readonly name = 'write-through';

  constructor(private readonly options: DirectPolicyOptions) {}

  async put(key: string, value: CacheValue, ttlSeconds: number): Promise<void> {
    const { origin, records, versions, publisher } = this.options;
    origin.checkKey(key);
    const version = await versions.nextVersion();
    const outcome = await origin.put(key, value.body, value.contentType, version);
    try {
      if (records !== undefined && outcome === 'applied') {
        await records.fill(key, value, ttlSeconds, version, publisher.keys([key]));
        this.options.onPublished?.();
      }
    } finally {
      this.options.invalidateLocal([key]);
    }
  }

  delete(key: string): Promise<void> {
    return deleteDirect(this.options, key);
  }
}
