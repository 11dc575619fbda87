/**
 * `lru` policy, approximated by CLOCK (second chance): a hit sets one bit and moves nothing.
 *
 * The ring is the `Map`'s own insertion order, so the store keeps no key array and no links: per entry,
 * the `Map` entry, the value, 4 + 2 bytes of expiry and size ({@link EntryMeta}) and one reference bit.
 * Eviction walks the `Map` from its oldest entry with a long-lived iterator (the clock hand): an entry
 * whose bit is set loses the bit and is re-inserted at the newest end (its second chance); the first one
 * without the bit is evicted. So the order is FIFO among entries not used since they were (re)inserted,
 * and every hit buys one more trip round the ring: the same victims as LRU in most traces (see the
 * hit-ratio benchmark), for a hit that costs a `Map` lookup and one byte write.
 *
 * Pure code: no I/O, no timers, no clock (see `l1-store.ts`).
 */
import { EntryMeta, type L1Store, type L1StoreOptions } from './l1-store.js';

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
  /** One reference bit per slot. */
  private refs: Uint8Array;
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
    this.refs = new Uint8Array((this.capacity + 7) >>> 3);
  }

  get(key: string, now: number): V | undefined {
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    if (this.meta.expired(i, now)) {
      this.remove(key, i);
      return undefined;
    }
    this.mark(i);
    return this.vals[i];
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
        this.meta.setExpiry(old, expiresAt, this.used, this.isLive);
        this.meta.setSize(old, sizeBytes);
        this.bytes += sizeBytes - oldSize;
        this.mark(old);
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
    this.meta.setExpiry(slot, expiresAt, this.used, this.isLive);
    this.meta.setSize(slot, sizeBytes);
    this.unmark(slot);
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
    this.refs.fill(0);
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
    for (const [key, slot] of this.map) (this.referenced(slot) ? used : unused).push(key);
    return [...unused, ...used];
  }

  private mark(slot: number): void {
    const refs = this.refs;
    const j = slot >>> 3;
    refs[j] = (refs[j] as number) | (1 << (slot & 7));
  }

  private unmark(slot: number): void {
    const refs = this.refs;
    const j = slot >>> 3;
    refs[j] = (refs[j] as number) & ~(1 << (slot & 7));
  }

  private referenced(slot: number): boolean {
    return ((this.refs[slot >>> 3] as number) & (1 << (slot & 7))) !== 0;
  }

  private evictOne(): void {
    for (;;) {
      let r = this.hand?.next();
      if (r === undefined || r.done === true) {
        this.hand = this.map.entries();
        r = this.hand.next();
      }
      const [key, slot] = r.value as [string, number];
      if (this.referenced(slot)) {
        this.unmark(slot);
        this.map.delete(key);
        this.map.set(key, slot); // to the newest end; the hand meets it again after a full turn
        continue;
      }
      this.remove(key, slot);
      return;
    }
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
    const refs = new Uint8Array((capacity + 7) >>> 3);
    refs.set(this.refs);
    this.refs = refs;
    this.capacity = capacity;
  }
}
