/**
 * Group commit for calls that cost one round trip each: items submitted during one turn of the event
 * loop (every request whose bytes arrived in the same poll) are handed to `run` together, at most
 * `maxBatch` items and `maxWeight` (e.g. bytes; a heavier item goes alone) at a time, once the turn's I/O callbacks are done (`setImmediate`). Nothing waits for a timer
 * or for an earlier batch: under light load a batch is one item and costs no extra latency; under load
 * one call carries many items. Batches run concurrently and in submission order.
 *
 * `run` answers one result per item, in order: a value, or an Error for that item alone. When `run`
 * throws (or answers the wrong number of results) every item of its batch fails with that error.
 */
export interface MicroBatcherOptions<I, O> {
  run(items: readonly I[]): Promise<readonly (O | Error)[]>;
  /** Items per call at most. */
  maxBatch: number;
  /** Total weight per call at most (an item heavier than this goes alone). Default: unbounded. */
  maxWeight?: number;
  /** The weight of an item (e.g. its bytes). Default 1. */
  weight?: (item: I) => number;
  /** How a flush is deferred to the end of the turn. Default `setImmediate`. */
  schedule?: (flush: () => void) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

export class MicroBatcher<I, O> {
  private queue: Waiting<I, O>[] = [];
  private scheduled = false;
  private readonly schedule: (flush: () => void) => void;

  constructor(private readonly options: MicroBatcherOptions<I, O>) {
    if (!Number.isSafeInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError(`maxBatch must be a positive integer, got ${options.maxBatch}`);
    }
    this.schedule = options.schedule ?? ((flush) => void setImmediate(flush));
  }

  /** Items waiting for the next flush. */
  get waiting(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    const { maxBatch, maxWeight = Infinity, weight = () => 1 } = this.options;
    let batch: Waiting<I, O>[] = [];
    let total = 0;
    for (const w of queue) {
      const x = weight(w.item);
      if (batch.length > 0 && (batch.length >= maxBatch || total + x > maxWeight)) {
        void this.runBatch(batch);
        batch = [];
        total = 0;
      }
      batch.push(w);
      total += x;
    }
    if (batch.length > 0) void this.runBatch(batch);
  }

  private async runBatch(batch: Waiting<I, O>[]): Promise<void> {
    let results: readonly (O | Error)[];
    try {
      results = await this.options.run(batch.map((w) => w.item));
      if (results.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} items answered ${results.length} results`);
      }
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i] as O | Error;
      if (r instanceof Error) w.reject(r);
      else w.resolve(r);
    });
  }
}
