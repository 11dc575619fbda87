/**
 * `ttl` policy: the entry closest to expiry is evicted first (Redis's `volatile-ttl` for L1). A binary
 * min-heap on the expiry time: get O(1), set and evict O(log n).
 */
import { copyInto, indexArrayFor, SlotTable, type IndexArray, type L1StoreOptions } from './l1-store.js';

export class TtlStore<V> extends SlotTable<V> {
  readonly policy = 'ttl' as const;
  /** heap[0..heapSize) holds slots ordered by `exp`. */
  private heap: IndexArray;
  /** pos[slot] is the slot's index in `heap`. */
  private pos: IndexArray;
  private heapSize = 0;
  private readonly newIndexArray: (length: number) => IndexArray;

  constructor(options: L1StoreOptions) {
    super(options, 0);
    this.newIndexArray = indexArrayFor(options.maxEntries);
    this.heap = this.newIndexArray(this.capacity);
    this.pos = this.newIndexArray(this.capacity);
  }

  protected link(slot: number): void {
    const at = this.heapSize++;
    this.heap[at] = slot;
    this.pos[slot] = at;
    this.siftUp(at);
  }

  protected unlink(slot: number): void {
    const at = this.pos[slot] as number;
    const last = --this.heapSize;
    if (at === last) return;
    const moved = this.heap[last] as number;
    this.heap[at] = moved;
    this.pos[moved] = at;
    this.siftDown(at);
    this.siftUp(this.pos[moved]);
  }

  protected evictOne(): void {
    this.removeSlot(this.heap[0] as number);
  }

  protected grown(capacity: number): void {
    this.heap = copyInto(this.newIndexArray(capacity), this.heap);
    this.pos = copyInto(this.newIndexArray(capacity), this.pos);
  }

  protected resetOrder(): void {
    this.heapSize = 0;
  }

  keysInEvictionOrder(): string[] {
    const slots = Array.from(this.heap.subarray(0, this.heapSize));
    slots.sort((a, b) => (this.meta.exp[a] as number) - (this.meta.exp[b] as number) || a - b);
    return slots.map((s) => this.keys[s] as string);
  }

  private siftUp(at: number): void {
    const heap = this.heap;
    const slot = heap[at] as number;
    const e = this.meta.exp[slot] as number;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = heap[parentAt] as number;
      if ((this.meta.exp[parent] as number) <= e) break;
      heap[at] = parent;
      this.pos[parent] = at;
      at = parentAt;
    }
    heap[at] = slot;
    this.pos[slot] = at;
  }

  private siftDown(at: number): void {
    const heap = this.heap;
    const n = this.heapSize;
    const slot = heap[at] as number;
    const e = this.meta.exp[slot] as number;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      const right = child + 1;
      if (
        right < n &&
        (this.meta.exp[heap[right] as number] as number) < (this.meta.exp[heap[child] as number] as number)
      )
        child = right;
      const c = heap[child] as number;
      if ((this.meta.exp[c] as number) >= e) break;
      heap[at] = c;
      this.pos[c] = at;
      at = child;
    }
    heap[at] = slot;
    this.pos[slot] = at;
  }
}
