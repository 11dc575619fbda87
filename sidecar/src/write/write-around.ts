/**
 * Write-around: the database only; then the key's Redis record is replaced by a tombstone at the write's
 * version and the key is invalidated in every L1. The next read misses, loads the row from the database
 * (read-through) and fills Redis at the row's version — which the tombstone admits, while a read-through
 * that fetched the row *before* this write (an older version) is refused, so a slow reader can never put
 * the old value back. DELETE is as under write-through.
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

export class WriteAroundPolicy implements WritePolicyHandler {
  readonly name = 'write-around';

  constructor(private readonly options: DirectPolicyOptions) {}

  // ttlSeconds is unused: the value is cached by the next read, with the default TTL.
  put(key: string, value: CacheValue, _ttlSeconds: number): Promise<void> {
    return writeDirect(
      this.options,
      key,
      (version) => this.options.origin.put(key, value.body, value.contentType, version),
      (records, version, invalidation) => records.tombstone(key, version, invalidation),
    );
  }

  delete(key: string): Promise<void> {
    return deleteDirect(this.options, key);
  }

  /** Puts and deletes alike leave a tombstone in Redis (the next read fills it from the database). */
  writeMany(writes: readonly PolicyWrite[]): Promise<(Error | undefined)[]> {
    return writeDirectMany(this.options, writes, (records, w, version, invalidation) =>
      records.tombstone(w.key, version, invalidation, w.op === 'delete'),
    );
  }
}
