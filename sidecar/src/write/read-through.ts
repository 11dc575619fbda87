/**
 * Read-through: a key neither L1 nor Redis holds is loaded from the origin and stored in Redis with the
 * default TTL at the row's version — only if Redis holds nothing newer (redis/versioned-records.ts), so a load
 * that raced with a write can never put the older value back. (Single flight and the L1 fill are the
 * tiers' business: tiers/tiered-cache.ts.) Redis being down does not stop the read: the value is
 * returned from the origin without being cached in Redis.
 */
import type { Origin } from '../origin/origin.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import type { VersionedRecords } from '../redis/versioned-records.js';

export interface ReadThroughOptions {
  origin: Origin;
  /** Absent in L1-only mode. */
  records?: VersionedRecords;
  /** TTL of the Redis record, seconds (0: none). */
  defaultTTLSeconds: number;
  /** Called when the Redis fill failed (the value is still returned). */
  onFillError?: (err: unknown) => void;
}

export interface LoadedValue {
  readonly value: CacheValue;
  readonly version: number;
  /** True when Redis now holds this value (false: Redis held something newer, or was unavailable). */
  readonly filled: boolean;
}

export class ReadThrough {
  constructor(private readonly options: ReadThroughOptions) {}

  /** Loads the key from the origin; null when the origin does not have it. */
  async load(key: string): Promise<LoadedValue | null> {
    const { origin, records } = this.options;
    const record = await origin.get(key);
    if (record === null) return null;
    const value: CacheValue = { body: record.body, contentType: record.contentType };
    let filled = false;
    if (records !== undefined) {
      try {
        filled = await records.fill(key, value, this.options.defaultTTLSeconds, record.version);
      } catch (err) {
        this.options.onFillError?.(err);
      }
    }
    return { value, version: record.version, filled };
  }
}
