/**
 * The L1 store interface shared by every eviction policy, and the slot table the policies are built on.
 *
 * Pure code: no I/O, no timers, no clock. Every call that needs the time takes `now` (ms, any monotonic
 * or wall clock, as long as the caller uses one clock for `now` and for `expiresAt`).
 *
 * Entries live in numbered slots. A `Map` from key to slot plus typed arrays indexed by slot (expiry,
 * size, and the policy's links) keep every operation O(1) (the `ttl` policy: O(log n) set/evict) and the
 * per-entry overhead small: arrays grow by doubling up to the entry bound, link arrays use the
 * narrowest unsigned type that can address every slot, and expiry and size take 4 + 2 bytes
 * ({@link EntryMeta}).
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
  /** Expiry and size of each slot. */
  protected readonly meta: EntryMeta;
  /** Slots handed out so far (high-water mark); slots in [firstSlot, used) are live or free. */
  protected used: number;
  protected capacity: number;
  protected readonly free: number[] = [];
  private sweepCursor: number;
  private readonly isLive = (slot: number): boolean => this.keys[slot] !== undefined;

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
    this.meta = new EntryMeta(this.capacity);
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
    if (this.meta.expired(i, now)) {
      this.removeSlot(i);
      return undefined;
    }
    return this.vals[i];
  }

  set(key: string, value: V, sizeBytes: number, expiresAt: number): number {
    const old = this.map.get(key);
    if (old !== undefined) {
      const oldSize = this.meta.size(old);
      if (sizeBytes <= oldSize) {
        // Same as remove + insert, without touching the map: nothing needs evicting.
        this.vals[old] = value;
        this.meta.setExpiry(old, expiresAt, this.used, this.isLive);
        this.meta.setSize(old, sizeBytes);
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
    this.meta.setExpiry(slot, expiresAt, this.used, this.isLive);
    this.meta.setSize(slot, sizeBytes);
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
      if (this.keys[cursor] !== undefined && this.meta.expired(cursor, now)) {
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
    this.bytes -= this.meta.size(slot);
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
    this.meta.grow(capacity);
    this.capacity = capacity;
    this.grown(capacity);
  }
}

/** Copies `from` into the start of `to` and returns `to`. */
export function copyInto<T extends IndexArray>(to: T, from: T): T {
  (to as Uint32Array).set(from);
  return to;
}

/** Stored expiry of an entry that never expires. */
export const NEVER_EXPIRES = 0x7fff_ffff;
const MAX_FINITE_EXPIRY = 0x7fff_fffe;
/** The low 31 bits of a stored word are the expiry; the top bit is a flag its store may use. */
const EXPIRY_MASK = 0x7fff_ffff;
/** The base sits this far before the expiry that set it, so that earlier and later expiries both fit. */
const EXPIRY_BASE_OFFSET = 2 ** 30;

/**
 * Expiry and size of each slot, in 4 + 2 bytes instead of a Float64 and a Uint32.
 *
 * Expiry: whole milliseconds after a per-store base, in the low 31 bits of an Int32Array, rounded down
 * (an entry expires at most 1 ms early, never late); `Infinity` is {@link NEVER_EXPIRES}. The top bit of
 * each word is a flag for the store's own use ({@link flag}, {@link setFlag}: the `lru` policy keeps its
 * reference bit there, so a hit reads and writes one word). The base is set by the first finite expiry
 * (2^30 ms, about 12.4 days, before it). An expiry outside the range [base, base + 2^31 - 2] moves the
 * base (an O(n) pass, about once per 12 days of a steady clock) so that it and every live entry's expiry
 * fit, unchanged. Only if live expiries spread over more than ~24.8 days does one not fit; it is then
 * moved earlier (the entry expires early), never later.
 *
 * Size: a Uint16Array while every size stored is below 65,536, widened once to a Uint32Array when a
 * larger one comes (values past 2^32 - 1 bytes are refused by `maxBytes` long before).
 */
export class EntryMeta {
  exp: Int32Array;
  private sizes: Uint16Array | Uint32Array;
  /** `now - base` is compared with the stored expiry; NaN until the first finite expiry. */
  base = NaN;

  constructor(capacity: number) {
    this.exp = new Int32Array(capacity);
    this.sizes = new Uint16Array(capacity);
  }

  /** Whether the entry in `slot` has expired at `now`. */
  expired(slot: number, now: number): boolean {
    return expiredWord(this.exp[slot] as number, now - this.base);
  }

  /** Whether the flag bit of `slot` is set. */
  flag(slot: number): boolean {
    return (this.exp[slot] as number) < 0;
  }

  setFlag(slot: number, on: boolean): void {
    const e = (this.exp[slot] as number) & EXPIRY_MASK;
    this.exp[slot] = on ? e | ~EXPIRY_MASK : e;
  }

  /**
   * Stores an expiry (and clears the slot's flag). `used` bounds the slots, and `live(slot)` tells the
   * live ones, for the rare pass that moves the base.
   */
  setExpiry(slot: number, expiresAt: number, used: number, live: (slot: number) => boolean): void {
    if (expiresAt === Infinity) {
      this.exp[slot] = NEVER_EXPIRES;
      return;
    }
    const at = Math.floor(expiresAt);
    if (Number.isNaN(this.base)) this.base = at - EXPIRY_BASE_OFFSET;
    let rel = at - this.base;
    if (rel < 0 || rel > MAX_FINITE_EXPIRY) {
      this.exp[slot] = NEVER_EXPIRES; // not live for the pass below
      this.rebase(rel, used, live);
      rel = at - this.base;
    }
    this.exp[slot] = rel < 0 ? 0 : rel > MAX_FINITE_EXPIRY ? MAX_FINITE_EXPIRY : rel;
  }

  /** The stored expiry on the caller's clock (for tests; rounded down to the ms). */
  expiresAt(slot: number): number {
    const e = (this.exp[slot] as number) & EXPIRY_MASK;
    return e === NEVER_EXPIRES ? Infinity : e + this.base;
  }

  size(slot: number): number {
    return this.sizes[slot] as number;
  }

  setSize(slot: number, sizeBytes: number): void {
    if (sizeBytes > 0xffff && this.sizes instanceof Uint16Array) {
      const wide = new Uint32Array(this.sizes.length);
      wide.set(this.sizes);
      this.sizes = wide;
    }
    this.sizes[slot] = sizeBytes;
  }

  grow(capacity: number): void {
    const exp = new Int32Array(capacity);
    exp.set(this.exp);
    this.exp = exp;
    const sizes = this.sizes instanceof Uint16Array ? new Uint16Array(capacity) : new Uint32Array(capacity);
    sizes.set(this.sizes);
    this.sizes = sizes;
  }

  /** Moves the base so that `rel` (relative to the current base) and every live expiry fit if they can. */
  private rebase(rel: number, used: number, live: (slot: number) => boolean): void {
    const exp = this.exp;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < used; i++) {
      const e = (exp[i] as number) & EXPIRY_MASK;
      if (e === NEVER_EXPIRES || !live(i)) continue;
      if (e < lo) lo = e;
      if (e > hi) hi = e;
    }
    let shift: number;
    if (lo === Infinity) {
      shift = rel - EXPIRY_BASE_OFFSET; // nothing live: centre the new expiry
    } else {
      const from = Math.min(lo, rel);
      const span = Math.max(hi, rel) - from;
      if (span <= MAX_FINITE_EXPIRY) shift = from - Math.floor((MAX_FINITE_EXPIRY - span) / 2);
      else if (rel > hi)
        shift = lo; // the new expiry is the one moved earlier
      else shift = rel; // the new expiry is the earliest: later live ones are moved earlier
    }
    for (let i = 0; i < used; i++) {
      const word = exp[i] as number;
      const e = word & EXPIRY_MASK;
      if (e === NEVER_EXPIRES) continue;
      const moved = e - shift;
      exp[i] = (moved < 0 ? 0 : moved > MAX_FINITE_EXPIRY ? MAX_FINITE_EXPIRY : moved) | (word & ~EXPIRY_MASK);
    }
    this.base += shift;
  }
}

/**
 * Whether a stored expiry word (flag bit ignored) has passed when `nowRel` (`now - base`) is the time;
 * for hot paths that have read the word themselves.
 */
export function expiredWord(word: number, nowRel: number): boolean {
  const e = word & EXPIRY_MASK;
  return e <= nowRel && e !== NEVER_EXPIRES;
}
