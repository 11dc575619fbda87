/**
 * The read and write paths over L1 (in process) and L2 (Redis), and the rules that keep L1 honest.
 * Pure: L2 is an interface, the clock is passed in, no timers.
 *
 * Read: L1 → L2 (single-flight) → origin (read-through, single-flight; only with an origin) → miss. An
 * L2 result is stored in L1 only when
 *   - this caller started the flight,
 *   - the invalidation subscription was up when the read started and still is,
 *   - no invalidation for the key (and no drop of L1) happened while the read was in the air,
 * for min(remaining TTL in Redis, l1.maxTTL). An origin result under the same rules, and only if Redis
 * took it (it holds nothing newer; in L1-only mode there is no Redis), for min(default TTL, l1.maxTTL).
 * Redis failing does not stop a read-through: the origin answers, and nothing is stored in L1.
 *
 * Write / delete: the record and its invalidation message go to Redis in one transaction; then this
 * sidecar's own L1 entry (and any in-flight read of the key) is invalidated, before the caller is
 * answered, whether Redis succeeded or not.
 *
 * Subscription lost: with `drop`, L1 is emptied at once and bypassed until subscribed again; with
 * `serve-stale`, L1 is kept but only consulted when Redis itself is unreachable (answers marked
 * `L1-STALE`; entries never outlive l1.maxTTL anyway), and emptied when the subscription comes back.
 */
import type { OnDisconnect } from '../config-defaults.js';
import { ValueTooLargeError } from '../errors.js';
import type { DropReason, LocalInvalidation } from '../invalidation/invalidation-receiver.js';
import type { InvalidationPublisher } from '../invalidation/invalidation-publisher.js';
import type { L1Store } from '../l1/l1-store.js';
import { SingleFlight } from './single-flight.js';

/** What is cached under a key. */
export interface CacheValue {
  readonly body: Buffer;
  readonly contentType: string;
}

/** A value read from Redis with its remaining TTL in ms (-1: no expiry). */
export interface L2Record extends CacheValue {
  readonly pttlMs: number;
}

/**
 * Redis holds no value but the tombstone of a DELETE (redis/versioned-records.ts, field `del`): `deleted` is the
 * delete's version, `version` the tombstone's — greater when a later invalidation (the cross-cluster
 * bridge) replaced the delete's tombstone and kept its mark. The key reads as absent without asking the
 * database when they are equal; otherwise the database answers, but a row older than `deleted` is the
 * deleted one (absent).
 */
export interface L2Deleted {
  readonly deleted: number;
  readonly version: number;
}

/** True when an L2 answer is a DELETE's tombstone. */
export function isL2Deleted(r: L2Record | L2Deleted): r is L2Deleted {
  return (r as Partial<L2Record>).body === undefined;
}

/** Redis as seen by the tiers; implemented by `redis/redis-l2.ts`. Every call is time-boxed. */
export interface L2Store {
  /** True while the command connection is up (a cheap check, no round trip). */
  readonly available: boolean;
  /** The key's value; its DELETE's tombstone; null when Redis holds neither (no record, or an invalidation). */
  get(key: string): Promise<L2Record | L2Deleted | null>;
  /** Stores the record with a TTL (0: none) and publishes `invalidation` in the same transaction. */
  set(key: string, value: CacheValue, ttlSeconds: number, invalidation: string): Promise<void>;
  /** Deletes keys and publishes `invalidation` in the same transaction; returns how many existed. */
  delete(keys: readonly string[], invalidation: string): Promise<number>;
  /** Deletes every record the sidecars wrote, then publishes `invalidation`. */
  deleteAll(invalidation: string): Promise<number>;
  /** Publishes `invalidation`, which names `keys` (on Redis Cluster from the keys' bucket's primary). */
  publish(invalidation: string, keys?: readonly string[]): Promise<void>;
}

export type ReadTier = 'L1' | 'L1-STALE' | 'L2' | 'ORIGIN';

/** What an origin load returns: the value, whether Redis took it, the row's version (0 or absent: none). */
export interface LoadedOriginValue {
  readonly value: CacheValue;
  readonly filled: boolean;
  readonly version?: number;
}

/** Loads a key from the origin and fills Redis (write/read-through.ts). */
export interface OriginLoader {
  load(key: string): Promise<LoadedOriginValue | null>;
}
export type ReadResult = { tier: ReadTier; value: CacheValue } | { tier: 'none'; value?: undefined };

/** Counters the tiers report to (metrics). */
export interface TierEvents {
  l1Evicted(count: number): void;
  l1Dropped(reason: DropReason, entries: number): void;
  published(): void;
}

export interface TieredCacheOptions {
  l1: L1Store<CacheValue>;
  /** Absent: L1-only mode. */
  l2?: L2Store;
  publisher: InvalidationPublisher;
  clock: () => number;
  /** l1.maxTTLSeconds in ms. 0 disables L1 in front of L2 (in L1-only mode: no cap). */
  l1MaxTTLMs: number;
  onDisconnect: OnDisconnect;
  events?: TierEvents;
  /** Read-through on a miss (absent: no origin). */
  readThrough?: OriginLoader;
  /** TTL of values read through, in ms (the default TTL); 0: none. */
  readThroughTTLMs?: number;
}

/** Bytes counted per L1 entry on top of key, value and content type. */
export const L1_ENTRY_OVERHEAD_BYTES = 64;

const MISS: ReadResult = { tier: 'none' };
const NO_EVENTS: TierEvents = { l1Evicted: () => {}, l1Dropped: () => {}, published: () => {} };

export class TieredCache implements LocalInvalidation {
  readonly l1: L1Store<CacheValue>;
  private readonly l2: L2Store | undefined;
  private readonly publisher: InvalidationPublisher;
  private readonly clock: () => number;
  private readonly l1MaxTTLMs: number;
  private readonly serveStale: boolean;
  private readonly events: TierEvents;
  private readonly flights = new SingleFlight<L2Record | L2Deleted | null>();
  private readonly readThrough: OriginLoader | undefined;
  private readonly readThroughTTLMs: number;
  private readonly originFlights = new SingleFlight<LoadedOriginValue | null>();
  /** True while the invalidation subscription is up (always true in L1-only mode). */
  private subscribedNow: boolean;
  private everSubscribed = false;
  /** Bumped whenever L1 as a whole stops being trustworthy; reads started before must not fill. */
  private epoch = 0;

  constructor(options: TieredCacheOptions) {
    this.l1 = options.l1;
    this.l2 = options.l2;
    this.publisher = options.publisher;
    this.clock = options.clock;
    this.l1MaxTTLMs = options.l1MaxTTLMs;
    this.serveStale = options.onDisconnect === 'serve-stale';
    this.events = options.events ?? NO_EVENTS;
    this.readThrough = options.readThrough;
    this.readThroughTTLMs = options.readThroughTTLMs ?? 0;
    this.subscribedNow = options.l2 === undefined;
  }

  /** True in L1-only mode. */
  get l1Only(): boolean {
    return this.l2 === undefined;
  }

  /** True while the invalidation subscription is up (always in L1-only mode). */
  get isSubscribed(): boolean {
    return this.subscribedNow;
  }

  /** True when L2 is configured and its command connection is up. */
  get l2Available(): boolean {
    return this.l2?.available ?? false;
  }

  /** Reads through the tiers. Rejects with the L2 adapter's errors when L2 was needed and failed. */
  async get(key: string): Promise<ReadResult> {
    const value = this.getL1(key);
    return value === undefined ? this.getBeyondL1(key) : { tier: 'L1', value };
  }

  /**
   * The fast path of `get`, synchronous: the L1 value when L1 may answer on its own (subscribed, or
   * L1-only mode). On undefined, continue with {@link getBeyondL1}.
   */
  getL1(key: string): CacheValue | undefined {
    return this.subscribedNow ? this.l1.get(key, this.clock()) : undefined;
  }

  /** The rest of `get` after {@link getL1} found nothing: stale L1 (serve-stale), L2, origin, miss. */
  async getBeyondL1(key: string): Promise<ReadResult> {
    const now = this.clock();
    const l2 = this.l2;
    if (l2 === undefined) return this.readThrough === undefined ? MISS : this.readOrigin(this.readThrough, key, true);
    if (!this.subscribedNow && this.serveStale && !l2.available) {
      const value = this.l1.peek(key, now);
      if (value !== undefined) return { tier: 'L1-STALE', value };
    }
    return this.readL2(l2, key, now);
  }

  /**
   * The remaining TTL of the key's Redis record in ms: -1 when it has none, -2 when Redis holds no value
   * for the key (L1 and the origin are not consulted). `undefined` in L1-only mode (no Redis to ask).
   */
  async ttlMs(key: string): Promise<number | undefined> {
    const l2 = this.l2;
    if (l2 === undefined) return undefined;
    const record = await l2.get(key);
    if (record === null || isL2Deleted(record)) return -2;
    return record.pttlMs < 0 ? -1 : record.pttlMs;
  }

  /** Writes a value (L1-only mode: into L1; otherwise into Redis, then invalidates it locally). */
  async put(key: string, value: CacheValue, ttlSeconds: number): Promise<void> {
    const l2 = this.l2;
    if (l2 === undefined) {
      let ttlMs = ttlSeconds > 0 ? ttlSeconds * 1000 : Infinity;
      if (this.l1MaxTTLMs > 0) ttlMs = Math.min(ttlMs, this.l1MaxTTLMs);
      if (!this.storeL1(key, value, this.clock() + ttlMs)) {
        throw new ValueTooLargeError(`the entry is larger than the L1 byte bound (${this.l1.maxBytes} bytes)`);
      }
      return;
    }
    try {
      await l2.set(key, value, ttlSeconds, this.publisher.keys([key]));
      this.events.published();
    } finally {
      this.invalidateKeys([key]);
    }
  }

  /** Removes keys from every tier and invalidates them in every sidecar. Returns how many L2 held. */
  async delete(keys: readonly string[]): Promise<number> {
    const l2 = this.l2;
    if (l2 === undefined) {
      let n = 0;
      for (const key of keys) if (this.l1.delete(key)) n++;
      return n;
    }
    try {
      const n = await l2.delete(keys, this.publisher.keys(keys));
      this.events.published();
      return n;
    } finally {
      this.invalidateKeys(keys);
    }
  }

  /**
   * `POST /v1/invalidate`: drops keys (or everything) from every sidecar's L1, and from L2 too when
   * `includeL2`. Returns whether a message was published (false in L1-only mode).
   */
  async invalidate(target: { keys: readonly string[] } | { all: true }, includeL2: boolean): Promise<boolean> {
    const l2 = this.l2;
    const all = 'all' in target;
    try {
      if (l2 === undefined) return false;
      const message = all ? this.publisher.all() : this.publisher.keys(target.keys);
      if (includeL2) {
        if (all) await l2.deleteAll(message);
        else await l2.delete(target.keys, message);
      } else {
        await l2.publish(message, all ? [] : target.keys);
      }
      this.events.published();
      return true;
    } finally {
      if (all) this.dropAll('invalidate-all');
      else this.invalidateKeys(target.keys);
    }
  }

  /** Removes expired L1 entries, visiting at most `budget` slots. */
  sweep(budget: number): number {
    return this.l1.sweep(this.clock(), budget);
  }

  // --- LocalInvalidation -------------------------------------------------------------------------

  invalidateKeys(keys: readonly string[]): void {
    for (const key of keys) {
      this.l1.delete(key);
      this.flights.invalidate(key);
      this.originFlights.invalidate(key);
    }
  }

  dropAll(reason: DropReason): void {
    const entries = this.l1.size;
    this.l1.clear();
    this.flights.invalidateAll();
    this.originFlights.invalidateAll();
    this.epoch++;
    this.events.l1Dropped(reason, entries);
  }

  subscriptionLost(): void {
    if (this.l2 === undefined || !this.subscribedNow) return;
    this.subscribedNow = false;
    this.epoch++;
    this.flights.invalidateAll();
    this.originFlights.invalidateAll();
    if (!this.serveStale) this.dropAll('subscription-lost');
  }

  subscribed(): void {
    if (this.l2 === undefined || this.subscribedNow) return;
    if (this.everSubscribed) {
      // Whatever L1 holds may have missed invalidations while we were not listening.
      this.dropAll('resubscribed');
    } else {
      this.flights.invalidateAll();
      this.originFlights.invalidateAll();
      this.epoch++;
    }
    this.everSubscribed = true;
    this.subscribedNow = true;
  }

  // --- internals ---------------------------------------------------------------------------------

  private async readL2(l2: L2Store, key: string, now: number): Promise<ReadResult> {
    const fillable = this.subscribedNow && this.l1MaxTTLMs > 0;
    const epoch = this.epoch;
    const { flight, owner } = this.flights.run(key, () => l2.get(key));
    let record: L2Record | L2Deleted | null;
    try {
      record = await flight.promise;
    } catch (err) {
      if (this.serveStale && !this.subscribedNow) {
        const value = this.l1.peek(key, this.clock());
        if (value !== undefined) return { tier: 'L1-STALE', value };
      }
      // Redis is unreachable: the origin still answers (nothing is cached on the way).
      if (this.readThrough !== undefined) return this.readOrigin(this.readThrough, key, false);
      throw err;
    }
    if (record === null) return this.readThrough === undefined ? MISS : this.readOrigin(this.readThrough, key, true);
    if (isL2Deleted(record)) {
      // A DELETE's tombstone: absent. When a later invalidation replaced it (version above the delete's),
      // the database answers, except with a row older than the delete (the deleted row, not yet flushed).
      if (record.version <= record.deleted || this.readThrough === undefined) return MISS;
      return this.readOrigin(this.readThrough, key, true, record.deleted);
    }
    if (owner && fillable && !flight.stale && epoch === this.epoch && this.subscribedNow) {
      const ttlMs = record.pttlMs < 0 ? this.l1MaxTTLMs : Math.min(record.pttlMs, this.l1MaxTTLMs);
      if (ttlMs > 0) this.storeL1(key, { body: record.body, contentType: record.contentType }, now + ttlMs);
    }
    return { tier: 'L2', value: record };
  }

  /**
   * Read-through: loads the key from the origin (one flight per key), which fills Redis; stores the value
   * in L1 under the same rules as an L2 read, only if Redis took it, and only when `mayFill`. A row older
   * than `deletedAt` (a DELETE's version seen in Redis) was deleted: a miss. (Checked per caller, not in
   * the flight: a caller may join a flight started before the delete's tombstone was there.)
   */
  private async readOrigin(loader: OriginLoader, key: string, mayFill: boolean, deletedAt = 0): Promise<ReadResult> {
    const l1Only = this.l2 === undefined;
    const fillable = mayFill && this.subscribedNow && (l1Only || this.l1MaxTTLMs > 0);
    const epoch = this.epoch;
    const { flight, owner } = this.originFlights.run(key, () => loader.load(key));
    const loaded = await flight.promise;
    if (loaded === null || (deletedAt > 0 && (loaded.version ?? 0) < deletedAt)) return MISS;
    if (owner && fillable && !flight.stale && epoch === this.epoch && this.subscribedNow && (l1Only || loaded.filled)) {
      let ttlMs = this.readThroughTTLMs > 0 ? this.readThroughTTLMs : Infinity;
      if (this.l1MaxTTLMs > 0) ttlMs = Math.min(ttlMs, this.l1MaxTTLMs);
      this.storeL1(key, loaded.value, this.clock() + ttlMs);
    }
    return { tier: 'ORIGIN', value: loaded.value };
  }

  /** Stores in L1; false (and any old entry for the key removed) when the entry exceeds the byte bound. */
  private storeL1(key: string, value: CacheValue, expiresAt: number): boolean {
    const size = Buffer.byteLength(key) + value.body.length + value.contentType.length + L1_ENTRY_OVERHEAD_BYTES;
    if (size > this.l1.maxBytes) {
      this.l1.delete(key);
      return false;
    }
    // Bodies from Redis (and from request parsing) are views into larger socket buffers; keeping a view
    // would keep the whole buffer alive. L1 holds its own copy, of exactly the counted size.
    const body = Buffer.allocUnsafeSlow(value.body.length);
    value.body.copy(body);
    const evicted = this.l1.set(key, { body, contentType: value.contentType }, size, expiresAt);
    if (evicted > 0) this.events.l1Evicted(evicted);
    return true;
  }
}
