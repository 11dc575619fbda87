/**
 * The L1 store interface shared by every eviction policy, and the slot table the policies are built on.
 *
 * Pure code: no I/O, no timers, no clock. Every call that needs the time takes `now` (ms, any monotonic
 * or wall clock, as long as the caller uses one clock for `now` and for `expiresAt`).
 *
 * Entries live in numbered slots. A `Map` from key to slot plus typed arrays indexed by slot (expiry,
 * size, and the policy's links) keep every operation O(1) (the `ttl` policy: O(log n) set/evict) and the
 * per-entry overhead small: arrays grow by doubling up to the entry bound, and link arrays use the
 * narrowest unsigned type that can address every slot.
 */
import type { L1Policy } from '../config-defaults.js';

export interface L1StoreOptions {
  /** Entry bound, at least 1. */
  maxEntries: number;
  /** Byte bound (as measured by the `sizeBytes` given to `set`), at least 1. */
  maxBytes: number;
}

export interface L1Store<V> {
  readonly policy: L1Policy;
  /** Entries held (expired entries not yet noticed included). */
  readonly size: number;
  /** Sum of the `sizeBytes` of the entries held. */
  readonly bytes: number;
  /** Entries evicted to respect a bound, since creation (deletes, clears and expiry not included). */
  readonly evictions: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** The value, or undefined when absent or expired (an expired entry is removed). Counts as a use. */
  get(key: string, now: number): V | undefined;
  /** Like `get` but without counting as a use (no reordering, no frequency change). */
  peek(key: string, now: number): V | undefined;
  /**
   * Stores `value`, replacing any entry for `key`. `expiresAt` is an absolute time on the caller's clock
   * (`Infinity` for none). Returns the number of entries evicted to make room, or -1 when the entry alone
   * is larger than the byte bound (then nothing is stored and any old entry for the key is removed).
   */
  set(key: string, value: V, sizeBytes: number, expiresAt: number): number;
  delete(key: string): boolean;
  clear(): void;
  /** Removes expired entries, visiting at most `budget` slots from where the last sweep stopped. */
  sweep(now: number, budget: number): number;
  /** Keys from the next to be evicted to the last (O(n); for tests and diagnostics). */
  keysInEvictionOrder(): string[];
}

/** An unsigned typed array wide enough to hold slot numbers below `count`. */
export type IndexArray = Uint8Array | Uint16Array | Uint32Array;

export function indexArrayFor(count: number): (length: number) => IndexArray {
  if (count <= 0x100) return (n) => new Uint8Array(n);
  if (count <= 0x1_0000) return (n) => new Uint16Array(n);
  return (n) => new Uint32Array(n);
}

function validateOptions(options: L1StoreOptions): void {
  if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
    throw new RangeError(`maxEntries must be a whole number >= 1, got ${options.maxEntries}`);
  }
  if (!(options.maxBytes >= 1)) throw new RangeError(`maxBytes must be >= 1, got ${options.maxBytes}`);
}

/**
 * Slots, keys, values, expiry and sizes; subclasses add the ordering. Slots below `firstSlot` are
 * reserved for the subclass's list sentinels.
 */
export abstract class SlotTable<V> implements L1Store<V> {
  abstract readonly policy: L1Policy;
  readonly maxEntries: number;
  readonly maxBytes: number;
  size = 0;
  bytes = 0;
  evictions = 0;

  protected readonly map = new Map<string, number>();
  protected keys: (string | undefined)[];
  protected vals: (V | undefined)[];
  protected exp: Float64Array;
  protected sizes: Uint32Array;
  /** Slots handed out so far (high-water mark); slots in [firstSlot, used) are live or free. */
  protected used: number;
  protected capacity: number;
  protected readonly free: number[] = [];
  private sweepCursor: number;

  protected constructor(
    options: L1StoreOptions,
    protected readonly firstSlot: number,
  ) {
    validateOptions(options);
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes;
    this.capacity = Math.min(options.maxEntries, 256) + firstSlot;
    this.used = firstSlot;
    this.sweepCursor = firstSlot;
    this.keys = new Array<string | undefined>(this.capacity).fill(undefined);
    this.vals = new Array<V | undefined>(this.capacity).fill(undefined);
    this.exp = new Float64Array(this.capacity);
    this.sizes = new Uint32Array(this.capacity);
  }

  /** A hit, as the policy counts it. By default the order is left as it is (FIFO, TTL): as peek. */
  get(key: string, now: number): V | undefined {
    return this.peek(key, now);
  }
  /** Picks and removes one entry to respect a bound. Only called with size > 0. */
  protected abstract evictOne(): void;
  /** Links a freshly filled slot into the policy's order. */
  protected abstract link(slot: number): void;
  /** Links an overwritten slot (already unlinked) where a new insertion with its history would go. */
  protected relinkOverwritten(slot: number): void {
    this.link(slot);
  }
  /** Unlinks a slot from the policy's order (its data is cleared by the caller). */
  protected abstract unlink(slot: number): void;
  /** Called when the arrays grew to `capacity`; the subclass copies its own arrays. */
  protected abstract grown(capacity: number): void;
  protected abstract resetOrder(): void;
  abstract keysInEvictionOrder(): string[];

  peek(key: string, now: number): V | undefined {
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    if ((this.exp[i] as number) <= now) {
      this.removeSlot(i);
      return undefined;
    }
    return this.vals[i];
  }

  set(key: string, value: V, sizeBytes: number, expiresAt: number): number {
    const old = this.map.get(key);
    if (old !== undefined) {
      const oldSize = this.sizes[old] as number;
      if (sizeBytes <= oldSize) {
        // Same as remove + insert, without touching the map: nothing needs evicting.
        this.vals[old] = value;
        this.exp[old] = expiresAt;
        this.sizes[old] = sizeBytes;
        this.bytes += sizeBytes - oldSize;
        this.unlink(old);
        this.relinkOverwritten(old);
        return 0;
      }
      this.removeSlot(old);
    }
    if (sizeBytes > this.maxBytes) return -1;
    let evicted = 0;
    while (this.size > 0 && (this.size >= this.maxEntries || this.bytes + sizeBytes > this.maxBytes)) {
      this.evictOne();
      evicted++;
    }
    this.evictions += evicted;
    const slot = this.allocSlot();
    this.keys[slot] = key;
    this.vals[slot] = value;
    this.exp[slot] = expiresAt;
    this.sizes[slot] = sizeBytes;
    this.map.set(key, slot);
    this.size++;
    this.bytes += sizeBytes;
    this.link(slot);
    return evicted;
  }

  delete(key: string): boolean {
    const i = this.map.get(key);
    if (i === undefined) return false;
    this.removeSlot(i);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.keys.fill(undefined);
    this.vals.fill(undefined);
    this.free.length = 0;
    this.used = this.firstSlot;
    this.sweepCursor = this.firstSlot;
    this.size = 0;
    this.bytes = 0;
    this.resetOrder();
  }

  sweep(now: number, budget: number): number {
    let removed = 0;
    if (this.size === 0) return 0;
    let cursor = this.sweepCursor;
    for (let n = 0; n < budget; n++) {
      if (cursor >= this.used) cursor = this.firstSlot;
      if (this.keys[cursor] !== undefined && (this.exp[cursor] as number) <= now) {
        this.removeSlot(cursor);
        removed++;
      }
      cursor++;
    }
    this.sweepCursor = cursor;
    return removed;
  }

  protected removeSlot(slot: number): void {
    this.unlink(slot);
    this.map.delete(this.keys[slot] as string);
    this.bytes -= this.sizes[slot] as number;
    this.size--;
    this.keys[slot] = undefined;
    this.vals[slot] = undefined;
    this.free.push(slot);
  }

  private allocSlot(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.capacity) this.grow();
    return this.used++;
  }

  private grow(): void {
    const capacity = Math.min(this.capacity * 2, this.maxEntries + this.firstSlot);
    this.keys.length = capacity;
    this.keys.fill(undefined, this.capacity);
    this.vals.length = capacity;
    this.vals.fill(undefined, this.capacity);
    this.exp = copyInto(new Float64Array(capacity), this.exp);
    this.sizes = copyInto(new Uint32Array(capacity), this.sizes);
    this.capacity = capacity;
    this.grown(capacity);
  }
}

/** Copies `from` into the start of `to` and returns `to`. */
export function copyInto<T extends Float64Array | IndexArray | Uint32Array>(to: T, from: T): T {
  (to as Uint32Array).set(from);
  return to;
}
