/**
 * `tinylfu` policy: W-TinyLFU with an adaptive window, as Caffeine (3.x) does it.
 *
 * - Window: a small LRU every new entry enters (initially 1 % of `maxEntries`, at least 1 entry).
 * - Main: a segmented LRU, probation (entries admitted from the window, and demoted ones) and protected
 *   (entries hit while in probation; at most 80 % of main, its oldest unmarked entry demoted back to
 *   probation: see CLOCK below).
 * - Admission: when the window's LRU entry (the candidate) must leave the window of a full cache, it
 *   duels with main's victim (probation's LRU end): the candidate is admitted, and the victim evicted,
 *   only if the candidate's estimated frequency is higher ({@link FrequencySketch}: 4-bit count-min with a
 *   doorkeeper, halved every 10 × maxEntries increments). A candidate whose estimate is 6 or more is
 *   also admitted at random 1 time in 128 (Caffeine's defence against a collision attack on a hot victim).
 * - Hill climbing: every 10 × maxEntries requests (hits plus new keys) the hit ratio of the sample is
 *   compared with the previous one; the window grows or shrinks by a step (6.25 % of maxEntries,
 *   decaying ×0.98 per sample, restarting when the hit ratio moves by 5 points) in the direction that
 *   improved it, the protected segment giving or taking the difference.
 *
 * Every queue is a circular doubly linked list through the slot table (struct of arrays: links, queue
 * tag and key hash are typed arrays indexed by slot); slots 0, 1, 2 are the sentinels of the window,
 * probation and protected (`next[q]` the most recent, `prev[q]` the LRU end).
 *
 * A hit is cheap in two ways:
 * - Buffered: `get` only records the slot in a 64-entry buffer; the buffered hits are applied (sketch
 *   increments with the key's hash kept per slot, the order, the hill climber's count) in one batch when
 *   the buffer is full and before anything that reads or changes the order, the sketch or the slots (every
 *   `set`, removal and diagnostic; `clear` drops them). Since they are applied in order before any decision, the
 *   policy decides exactly as if each hit had been applied at once (a test checks it); the batch runs the
 *   sketch's scattered memory accesses back to back. Caffeine buffers reads the same way.
 * - Protected is CLOCK (second chance) rather than exact LRU: a hit there sets a bit in the slot's queue
 *   tag and moves nothing; when protected overflows, its LRU end, if marked, goes back to the head
 *   unmarked, and the first unmarked one is demoted to probation. A hit in probation still promotes
 *   (a move), a hit in the window moves the entry to the window's head unless it is there already.
 *   Measured on the benchmark's traces and three more seeds each: from 0.9 points lower to 1.5 points higher
 *   per column than exact LRU in protected (docs/sidecar.md, Performance).
 *
 * Evictions follow the byte bound too: each eviction the bounds require is one duel (or, while the window
 * is below its target, main's victim), so `evictions` and the return value of `set` count entries as in
 * the other policies.
 */
import { FrequencySketch, hashKey } from './frequency-sketch.js';
import { copyInto, indexArrayFor, SlotTable, type IndexArray, type L1StoreOptions } from './l1-store.js';

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;
const SENTINELS = 3;
/** Low bits of `queue[slot]`: the slot's queue; the next bit: hit while in protected since its last move. */
const QUEUE_MASK = 3;
const REFERENCED = 4;

/** Caffeine's constants (BoundedLocalCache). */
const PERCENT_MAIN = 0.99;
const PERCENT_MAIN_PROTECTED = 0.8;
const HILL_CLIMBER_RESTART_THRESHOLD = 0.05;
const HILL_CLIMBER_STEP_PERCENT = 0.0625;
const HILL_CLIMBER_STEP_DECAY_RATE = 0.98;
const ADMIT_HASHDOS_THRESHOLD = 6;
/** Hits recorded before they are applied (sketch, order, hill climbing) in one batch. */
const HIT_BUFFER = 64;

export interface TinyLfuStoreOptions extends L1StoreOptions {
  /** Adapt the window size by hill climbing (default true; false keeps it at 1 %). */
  adaptiveWindow?: boolean;
  /** Put a doorkeeper in front of the sketch's counters (default true). */
  doorkeeper?: boolean;
  /** Seed of the generator behind the 1-in-128 random admission (default fixed: deterministic). */
  seed?: number;
}

export class TinyLfuStore<V> extends SlotTable<V> {
  readonly policy = 'tinylfu' as const;
  private next: IndexArray;
  private prev: IndexArray;
  /** Queue of each slot (WINDOW, PROBATION, PROTECTED). */
  private queue: Uint8Array;
  /** Key hash of each slot, for the sketch. */
  private hashes: Uint32Array;
  private readonly newIndexArray: (length: number) => IndexArray;
  /** Slots hit since the last drain, in order. */
  private readonly hitBuffer = new Uint32Array(HIT_BUFFER);
  private pendingHits = 0;
  private sketch: FrequencySketch;
  private readonly adaptive: boolean;
  private readonly doorkeeper: boolean;
  private random: number;

  /** Entries per queue. */
  private readonly counts = [0, 0, 0];
  private windowMax: number;
  private protectedMax: number;

  private hitsInSample = 0;
  private missesInSample = 0;
  private previousHitRate = 0;
  private stepSize: number;
  private readonly sampleSize: number;
  /** Hash of the key being set, picked up by `link`. */
  private pendingHash = 0;

  constructor(options: TinyLfuStoreOptions) {
    super(options, SENTINELS);
    const max = options.maxEntries;
    this.windowMax = Math.max(1, max - Math.floor(PERCENT_MAIN * max));
    this.protectedMax = Math.floor(PERCENT_MAIN_PROTECTED * (max - this.windowMax));
    this.stepSize = -HILL_CLIMBER_STEP_PERCENT * max;
    this.sampleSize = 10 * max;
    this.adaptive = options.adaptiveWindow ?? true;
    this.doorkeeper = options.doorkeeper ?? true;
    this.random = (options.seed ?? 0x9e3779b9) | 1;
    this.newIndexArray = indexArrayFor(max + SENTINELS);
    this.next = this.newIndexArray(this.capacity);
    this.prev = this.newIndexArray(this.capacity);
    this.queue = new Uint8Array(this.capacity);
    this.hashes = new Uint32Array(this.capacity);
    this.sketch = new FrequencySketch(this.capacity - SENTINELS, this.doorkeeper);
    this.resetOrder();
  }

  /** Target window size in entries (for tests and diagnostics). */
  get windowMaximum(): number {
    if (this.pendingHits !== 0) this.drainHits();
    return this.windowMax;
  }

  /** Entries in the window, probation and protected segments (for tests and diagnostics). */
  get segmentSizes(): { window: number; probation: number; protected: number } {
    if (this.pendingHits !== 0) this.drainHits();
    return { window: this.counts[WINDOW]!, probation: this.counts[PROBATION]!, protected: this.counts[PROTECTED]! };
  }

  /** The sketch's estimate for a key (for tests). */
  frequencyOf(key: string): number {
    if (this.pendingHits !== 0) this.drainHits();
    return this.sketch.frequency(hashKey(key));
  }

  override get(key: string, now: number): V | undefined {
    const i = this.map.get(key);
    if (i === undefined) return undefined;
    if (this.meta.expired(i, now)) {
      this.removeSlot(i);
      return undefined;
    }
    const n = this.pendingHits;
    this.hitBuffer[n] = i;
    this.pendingHits = n + 1;
    if (n + 1 === HIT_BUFFER) this.drainHits();
    return this.vals[i];
  }

  override set(key: string, value: V, sizeBytes: number, expiresAt: number): number {
    if (this.pendingHits !== 0) this.drainHits();
    const h = hashKey(key);
    this.sketch.increment(h);
    this.pendingHash = h;
    const old = this.map.get(key);
    const evicted = super.set(key, value, sizeBytes, expiresAt);
    if (old === undefined && ++this.missesInSample + this.hitsInSample >= this.sampleSize) this.climb();
    return evicted;
  }

  /**
   * Applies the buffered hits in order: the same state as if each had been applied at once, since every
   * operation that reads or changes the order, the sketch or the slots drains first.
   */
  private drainHits(): void {
    const n = this.pendingHits;
    this.pendingHits = 0;
    const buf = this.hitBuffer;
    const hashes = this.hashes;
    const sketch = this.sketch;
    for (let j = 0; j < n; j++) sketch.increment(hashes[buf[j] as number] as number);
    for (let j = 0; j < n; j++) {
      this.onHit(buf[j] as number);
      if (++this.hitsInSample + this.missesInSample >= this.sampleSize) this.climb();
    }
  }

  protected override removeSlot(slot: number): void {
    if (this.pendingHits !== 0) this.drainHits();
    super.removeSlot(slot);
  }

  protected link(slot: number): void {
    this.hashes[slot] = this.pendingHash;
    this.linkFront(WINDOW, slot);
    // Cache not full (this insertion evicted nothing) but the window is over its target: the window's
    // LRU entry moves to probation without a duel.
    while ((this.counts[WINDOW] as number) > this.windowMax) {
      this.move(this.prev[WINDOW] as number, PROBATION);
    }
  }

  protected override relinkOverwritten(slot: number): void {
    this.linkFront((this.queue[slot] as number) & QUEUE_MASK, slot);
  }

  protected unlink(slot: number): void {
    const p = this.prev[slot] as number;
    const n = this.next[slot] as number;
    this.next[p] = n;
    this.prev[n] = p;
    const q = (this.queue[slot] as number) & QUEUE_MASK;
    this.counts[q] = (this.counts[q] as number) - 1;
  }

  /**
   * Makes room for one entry about to enter the window. If the window is at its target, its LRU entry
   * (the candidate) must leave it: it duels with main's victim and one of the two is evicted. Otherwise
   * main's victim is evicted (or, main being empty, the window's LRU entry).
   */
  protected evictOne(): void {
    const windowCount = this.counts[WINDOW] as number;
    const victim = this.mainVictim();
    if (windowCount >= this.windowMax && windowCount > 0) {
      const candidate = this.prev[WINDOW] as number;
      if (victim === 0) {
        this.removeSlot(candidate);
      } else if (this.admit(candidate, victim)) {
        this.removeSlot(victim);
        this.move(candidate, PROBATION);
      } else {
        this.removeSlot(candidate);
      }
      return;
    }
    this.removeSlot(victim !== 0 ? victim : (this.prev[WINDOW] as number));
  }

  protected grown(capacity: number): void {
    this.next = copyInto(this.newIndexArray(capacity), this.next);
    this.prev = copyInto(this.newIndexArray(capacity), this.prev);
    this.queue = copyInto(new Uint8Array(capacity), this.queue);
    const hashes = new Uint32Array(capacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
    // Sized for the slots there can be; counts so far are dropped (only while the cache fills up).
    this.sketch = new FrequencySketch(capacity - SENTINELS, this.doorkeeper);
  }

  protected resetOrder(): void {
    this.pendingHits = 0; // clear(): the buffered slots are gone
    for (let q = 0; q < SENTINELS; q++) {
      this.next[q] = q;
      this.prev[q] = q;
      this.counts[q] = 0;
    }
  }

  /** Window (LRU first), then probation, then protected: roughly the order in which entries would go. */
  keysInEvictionOrder(): string[] {
    if (this.pendingHits !== 0) this.drainHits();
    const out: string[] = [];
    for (const q of [WINDOW, PROBATION, PROTECTED]) {
      for (let i = this.prev[q] as number; i !== q; i = this.prev[i] as number) out.push(this.keys[i] as string);
    }
    return out;
  }

  /** Probation's LRU entry, else protected's; 0 when main is empty. */
  private mainVictim(): number {
    if (this.next[PROBATION] !== PROBATION) return this.prev[PROBATION] as number;
    if (this.next[PROTECTED] !== PROTECTED) return this.prev[PROTECTED] as number;
    return 0;
  }

  private admit(candidate: number, victim: number): boolean {
    const candidateFreq = this.sketch.frequency(this.hashes[candidate] as number);
    const victimFreq = this.sketch.frequency(this.hashes[victim] as number);
    if (candidateFreq > victimFreq) return true;
    if (candidateFreq >= ADMIT_HASHDOS_THRESHOLD) {
      // xorshift32
      let x = this.random;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.random = x;
      return (x & 127) === 0;
    }
    return false;
  }

  private onHit(i: number): void {
    const tag = this.queue[i] as number;
    if (tag === PROTECTED) {
      this.queue[i] = PROTECTED | REFERENCED;
    } else if (tag === PROBATION) {
      this.move(i, PROTECTED);
      while ((this.counts[PROTECTED] as number) > this.protectedMax) this.demoteProtected();
    } else if (tag === WINDOW && this.next[WINDOW] !== i) {
      this.unlink(i);
      this.linkFront(WINDOW, i);
    }
  }

  /**
   * Moves protected's least recently moved entry to probation, except that an entry hit since it was
   * last moved gets a second chance instead (back to protected's head, unmarked): CLOCK within the
   * segment, so that a hit in protected only sets a bit.
   */
  private demoteProtected(): void {
    for (;;) {
      const t = this.prev[PROTECTED] as number;
      if (((this.queue[t] as number) & REFERENCED) !== 0) {
        this.move(t, PROTECTED);
      } else {
        this.move(t, PROBATION);
        return;
      }
    }
  }

  private move(slot: number, q: number): void {
    this.unlink(slot);
    this.linkFront(q, slot);
  }

  private linkFront(q: number, slot: number): void {
    const head = this.next[q] as number;
    this.next[slot] = head;
    this.prev[slot] = q;
    this.prev[head] = slot;
    this.next[q] = slot;
    this.queue[slot] = q;
    this.counts[q] = (this.counts[q] as number) + 1;
  }

  /** Caffeine's `climb`: adjust the window after each sample of `sampleSize` requests. */
  private climb(): void {
    const requests = this.hitsInSample + this.missesInSample;
    const hitRate = this.hitsInSample / requests;
    this.hitsInSample = 0;
    this.missesInSample = 0;
    // Until the cache is full there is nothing to trade between window and main.
    if (!this.adaptive || this.evictions === 0) {
      this.previousHitRate = hitRate;
      return;
    }
    const change = hitRate - this.previousHitRate;
    const amount = change >= 0 ? this.stepSize : -this.stepSize;
    this.stepSize =
      Math.abs(change) >= HILL_CLIMBER_RESTART_THRESHOLD
        ? HILL_CLIMBER_STEP_PERCENT * this.maxEntries * (amount >= 0 ? 1 : -1)
        : HILL_CLIMBER_STEP_DECAY_RATE * amount;
    this.previousHitRate = hitRate;
    const adjustment = Math.trunc(amount);
    if (adjustment > 0) this.increaseWindow(adjustment);
    else if (adjustment < 0) this.decreaseWindow(-adjustment);
  }

  private increaseWindow(amount: number): void {
    const quota = Math.min(amount, this.protectedMax);
    if (quota <= 0) return;
    this.protectedMax -= quota;
    this.windowMax += quota;
    while ((this.counts[PROTECTED] as number) > this.protectedMax) this.demoteProtected();
    // Main's LRU entries move to the window's MRU end so that the window is filled at once.
    for (let moved = 0; moved < quota; moved++) {
      const victim = this.mainVictim();
      if (victim === 0) break;
      this.move(victim, WINDOW);
    }
  }

  private decreaseWindow(amount: number): void {
    const quota = Math.min(amount, Math.max(0, this.windowMax - 1));
    if (quota <= 0) return;
    this.windowMax -= quota;
    this.protectedMax += quota;
    while ((this.counts[WINDOW] as number) > this.windowMax) {
      this.move(this.prev[WINDOW] as number, PROBATION);
    }
  }
}
