/**
 * LFU with aging, O(1) amortised.
 *
 * Each entry has a small use counter (1..{@link LFU_MAX_FREQUENCY}, like TinyLFU's 4-bit counters). There
 * is one circular list per counter value (slots 0..15 are the lists' sentinels); a hit moves the entry to
 * the front of the next list. The victim is the least recently used entry of the lowest non-empty list,
 * so one-off keys (a scan) evict each other rather than the hot set.
 *
 * Aging: after every `agingPeriod` operations (default 10 × maxEntries, Caffeine's sample size) every
 * counter is halved, so keys that were hot yesterday lose their protection. That pass is O(n), once per
 * 10·maxEntries operations: O(1) amortised.
 */
import { copyInto, indexArrayFor, SlotTable, type IndexArray, type L1StoreOptions } from './l1-store.js';

/** Highest counter value (4 bits). */
export const LFU_MAX_FREQUENCY = 15;
const SENTINELS = LFU_MAX_FREQUENCY + 1;

export interface LfuStoreOptions extends L1StoreOptions {
  /** Operations (gets and sets) between two halvings of every counter. Default 10 × maxEntries. */
  agingPeriod?: number;
}

export class LfuStore<V> extends SlotTable<V> {
  readonly policy = 'lfu' as const;
  /** Halvings done so far (for tests and diagnostics). */
  agings = 0;
  private next: IndexArray;
  private prev: IndexArray;
  private freq: Uint8Array;
  private minFreq = 1;
  private ops = 0;
  private readonly agingPeriod: number;
  private readonly newIndexArray: (length: number) => IndexArray;
  /** Counter given to the next linked slot (carried over when a key is overwritten). */
  private pendingFreq = 1;

  constructor(options: LfuStoreOptions) {
    super(options, SENTINELS);
    this.agingPeriod = options.agingPeriod ?? Math.max(10 * options.maxEntries, 100);
    this.newIndexArray = indexArrayFor(options.maxEntries + SENTINELS);
    this.next = this.newIndexArray(this.capacity);
    this.prev = this.newIndexArray(this.capacity);
    this.freq = new Uint8Array(this.capacity);
    this.resetOrder();
  }

  /** The use counter of a key (0 when absent); for tests. */
  frequencyOf(key: string): number {
    const i = this.map.get(key);
    return i === undefined ? 0 : (this.freq[i] as number);
  }

  override get(key: string, now: number): V | undefined {
    if (++this.ops >= this.agingPeriod) this.age();
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    if (this.meta.expired(i, now)) {
      this.removeSlot(i);
      return undefined;
    }
    const f = this.freq[i] as number;
    this.unlink(i);
    const nf = f < LFU_MAX_FREQUENCY ? f + 1 : f;
    this.freq[i] = nf;
    this.linkFront(nf, i);
    if (f === this.minFreq && this.next[f] === f) this.minFreq = nf;
    return this.vals[i];
  }

  override set(key: string, value: V, sizeBytes: number, expiresAt: number): number {
    if (++this.ops >= this.agingPeriod) this.age();
    const old = this.map.get(key);
    this.pendingFreq = old === undefined ? 1 : (this.freq[old] as number);
    const evicted = super.set(key, value, sizeBytes, expiresAt);
    this.pendingFreq = 1;
    return evicted;
  }

  protected override relinkOverwritten(slot: number): void {
    this.linkFront(this.freq[slot] as number, slot);
  }

  protected link(slot: number): void {
    const f = this.pendingFreq;
    this.pendingFreq = 1;
    this.freq[slot] = f;
    this.linkFront(f, slot);
    if (f < this.minFreq) this.minFreq = f;
  }

  protected unlink(slot: number): void {
    const p = this.prev[slot] as number;
    const n = this.next[slot] as number;
    this.next[p] = n;
    this.prev[n] = p;
  }

  protected evictOne(): void {
    let f = this.minFreq;
    while (this.next[f] === f && f < LFU_MAX_FREQUENCY) f++;
    this.minFreq = f;
    this.removeSlot(this.prev[f] as number);
  }

  protected grown(capacity: number): void {
    this.next = copyInto(this.newIndexArray(capacity), this.next);
    this.prev = copyInto(this.newIndexArray(capacity), this.prev);
    this.freq = copyInto(new Uint8Array(capacity), this.freq);
  }

  protected resetOrder(): void {
    for (let s = 0; s < SENTINELS; s++) {
      this.next[s] = s;
      this.prev[s] = s;
    }
    this.minFreq = 1;
  }

  keysInEvictionOrder(): string[] {
    const out: string[] = [];
    for (let f = 1; f <= LFU_MAX_FREQUENCY; f++) {
      for (let i = this.prev[f] as number; i !== f; i = this.prev[i] as number) out.push(this.keys[i] as string);
    }
    return out;
  }

  private linkFront(f: number, slot: number): void {
    const head = this.next[f] as number;
    this.next[slot] = head;
    this.prev[slot] = f;
    this.prev[head] = slot;
    this.next[f] = slot;
  }

  /**
   * Halves every counter (at least 1). Entries keep their order within a list; entries from higher
   * lists land in front of (are evicted after) the entries already in the lower list.
   */
  private age(): void {
    this.ops = 0;
    this.agings++;
    for (let f = 2; f <= LFU_MAX_FREQUENCY; f++) {
      const nf = f >> 1;
      // From the list's back to its front, so that the moved entries keep their relative order.
      let i = this.prev[f] as number;
      while (i !== f) {
        const p = this.prev[i] as number;
        this.unlink(i);
        this.freq[i] = nf;
        this.linkFront(nf, i);
        i = p;
      }
    }
    this.minFreq = 1;
  }
}
