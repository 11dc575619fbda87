/**
 * `lru` policy, approximated by CLOCK (second chance): a hit sets one bit and moves nothing.
 *
 * The ring is the `Map`'s own insertion order, so the store keeps no key array and no links: per entry,
 * the `Map` entry, the value and 4 + 2 bytes of expiry and size ({@link EntryMeta}), whose spare top bit
 * of the expiry word is the reference bit: a hit reads that word for the expiry check anyway, and writes
 * it back only when the bit was clear.
 * Eviction walks the `Map` from its oldest entry with a long-lived iterator (the clock hand): an entry
 * whose bit is set loses the bit and is re-inserted at the newest end (its second chance); the first one
 * without the bit is evicted. So the order is FIFO among entries not used since they were (re)inserted,
 * and every hit buys one more trip round the ring: the same victims as LRU in most traces (see the
 * hit-ratio benchmark), for a hit that costs a `Map` lookup and one byte write.
 *
 * Pure code: no I/O, no timers, no clock (see `l1-store.ts`).
 */
import { EntryMeta, expiredWord, type L1Store, type L1StoreOptions } from './l1-store.js';

/** The reference bit: the flag bit of an {@link EntryMeta} expiry word. */
const REFERENCED = 1 << 31;

export class ClockStore<V> implements L1Store<V> {
  readonly policy = 'lru' as const;
  readonly maxEntries: number;
  readonly maxBytes: number;
  size = 0;
  bytes = 0;
  evictions = 0;

  private readonly map = new Map<string, number>();
  private vals: (V | undefined)[];
  private readonly meta: EntryMeta;
  /** `meta.exp` and `meta.base`, copied here for `get` (one load fewer each); see {@link setExpiry}. */
  private exp: Int32Array;
  private base = NaN;
  private used = 0;
  private capacity: number;
  private readonly free: number[] = [];
  /** The clock hand: an iterator over the map, kept between evictions (Map iterators follow changes). */
  private hand: MapIterator<[string, number]> | undefined;
  private sweeper: MapIterator<[string, number]> | undefined;
  private readonly isLive = (slot: number): boolean => this.vals[slot] !== undefined;

  constructor(options: L1StoreOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a whole number >= 1, got ${options.maxEntries}`);
    }
    if (!(options.maxBytes >= 1)) throw new RangeError(`maxBytes must be >= 1, got ${options.maxBytes}`);
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes;
    this.capacity = Math.min(options.maxEntries, 256);
    this.vals = new Array<V | undefined>(this.capacity).fill(undefined);
    this.meta = new EntryMeta(this.capacity);
    this.exp = this.meta.exp;
  }

  get(key: string, now: number): V | undefined {
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    const exp = this.exp;
    const word = exp[i] as number;
    if (expiredWord(word, now - this.base)) return this.expire(key, i);
    if (word >= 0) exp[i] = word | REFERENCED; // written only when the bit was clear
    return this.vals[i];
  }

  /** The rare path of `get`, out of line: the hit path stays short. */
  private expire(key: string, slot: number): undefined {
    this.remove(key, slot);
    return undefined;
  }

  peek(key: string, now: number): V | undefined {
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    if (this.meta.expired(i, now)) {
      this.remove(key, i);
      return undefined;
    }
    return this.vals[i];
  }

  set(key: string, value: V, sizeBytes: number, expiresAt: number): number {
    const old = this.map.get(key);
    if (old !== undefined) {
      const oldSize = this.meta.size(old);
      if (sizeBytes <= oldSize) {
        // In place; counts as a use (like LRU's move to the front).
        this.vals[old] = value;
        this.setExpiry(old, expiresAt);
        this.meta.setSize(old, sizeBytes);
        this.bytes += sizeBytes - oldSize;
        this.meta.setFlag(old, true);
        return 0;
      }
      this.remove(key, old);
    }
    if (sizeBytes > this.maxBytes) return -1;
    let evicted = 0;
    while (this.size > 0 && (this.size >= this.maxEntries || this.bytes + sizeBytes > this.maxBytes)) {
      this.evictOne();
      evicted++;
    }
    this.evictions += evicted;
    const slot = this.allocSlot();
    this.vals[slot] = value;
    this.setExpiry(slot, expiresAt);
    this.meta.setSize(slot, sizeBytes); // setExpiry cleared the reference bit
    this.map.set(key, slot);
    this.size++;
    this.bytes += sizeBytes;
    return evicted;
  }

  delete(key: string): boolean {
    const i = this.map.get(key);
    if (i === undefined) return false;
    this.remove(key, i);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.vals.fill(undefined);
    this.free.length = 0;
    this.used = 0;
    this.size = 0;
    this.bytes = 0;
    this.hand = undefined;
    this.sweeper = undefined;
  }

  sweep(now: number, budget: number): number {
    let removed = 0;
    if (this.size === 0) return 0;
    for (let n = 0; n < budget; n++) {
      let r = this.sweeper?.next();
      if (r === undefined || r.done === true) {
        this.sweeper = this.map.entries();
        r = this.sweeper.next();
        if (r.done === true) break;
      }
      const [key, slot] = r.value;
      if (this.meta.expired(slot, now)) {
        this.remove(key, slot);
        removed++;
      }
    }
    return removed;
  }

  keysInEvictionOrder(): string[] {
    const unused: string[] = [];
    const used: string[] = [];
    for (const [key, slot] of this.map) (this.meta.flag(slot) ? used : unused).push(key);
    return [...unused, ...used];
  }

  private evictOne(): void {
    for (;;) {
      let r = this.hand?.next();
      if (r === undefined || r.done === true) {
        this.hand = this.map.entries();
        r = this.hand.next();
      }
      const [key, slot] = r.value as [string, number];
      if (this.meta.flag(slot)) {
        this.meta.setFlag(slot, false);
        this.map.delete(key);
        this.map.set(key, slot); // to the newest end; the hand meets it again after a full turn
        continue;
      }
      this.remove(key, slot);
      return;
    }
  }

  private setExpiry(slot: number, expiresAt: number): void {
    this.meta.setExpiry(slot, expiresAt, this.used, this.isLive);
    this.base = this.meta.base; // the first finite expiry sets it, and a rebase moves it
  }

  private remove(key: string, slot: number): void {
    this.map.delete(key);
    this.bytes -= this.meta.size(slot);
    this.size--;
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
    const capacity = Math.min(this.capacity * 2, this.maxEntries);
    this.vals.length = capacity;
    this.vals.fill(undefined, this.capacity);
    this.meta.grow(capacity);
    this.exp = this.meta.exp;
    this.capacity = capacity;
  }
}
