/**
 * FIFO: one circular doubly linked list through the slots, with slot 0 as the sentinel (`next[0]` is
 * the newest entry, `prev[0]` the next victim). O(1) everything. (`lru` is `clock-store.ts`.)
 */
import { copyInto, indexArrayFor, SlotTable, type IndexArray, type L1StoreOptions } from './l1-store.js';

abstract class ListStore<V> extends SlotTable<V> {
  protected next: IndexArray;
  protected prev: IndexArray;
  private readonly newIndexArray: (length: number) => IndexArray;

  constructor(options: L1StoreOptions) {
    super(options, 1);
    this.newIndexArray = indexArrayFor(options.maxEntries + 1);
    this.next = this.newIndexArray(this.capacity);
    this.prev = this.newIndexArray(this.capacity);
  }

  protected link(slot: number): void {
    const next = this.next;
    const head = next[0] as number;
    next[slot] = head;
    this.prev[slot] = 0;
    this.prev[head] = slot;
    next[0] = slot;
  }

  protected unlink(slot: number): void {
    const p = this.prev[slot] as number;
    const n = this.next[slot] as number;
    this.next[p] = n;
    this.prev[n] = p;
  }

  protected evictOne(): void {
    this.removeSlot(this.prev[0] as number);
  }

  protected grown(capacity: number): void {
    this.next = copyInto(this.newIndexArray(capacity), this.next);
    this.prev = copyInto(this.newIndexArray(capacity), this.prev);
  }

  protected resetOrder(): void {
    this.next[0] = 0;
    this.prev[0] = 0;
  }

  keysInEvictionOrder(): string[] {
    const out: string[] = [];
    for (let i = this.prev[0] as number; i !== 0; i = this.prev[i] as number) out.push(this.keys[i] as string);
    return out;
  }
}

/** First in, first out: hits do not reorder; the oldest insertion is evicted. */
export class FifoStore<V> extends ListStore<V> {
  readonly policy = 'fifo' as const;
}
