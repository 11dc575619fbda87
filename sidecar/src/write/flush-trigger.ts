/**
 * The write-back flusher's timer loop, apart from its batching decisions (write-back-flusher.ts): when a
 * cycle starts — every `intervalMs`, or as soon as `batchSize` local appends were counted since the last
 * cycle began — and the interruptible sleeps between retries. Timers come from the global
 * `setTimeout`/`clearTimeout` (unref'd), so tests drive it with fake timers.
 */
export class FlushTrigger {
  private appends = 0;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private interruptSleep: (() => void) | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly batchSize: number,
  ) {}

  /** Local appends counted since the current cycle began. */
  get count(): number {
    return this.appends;
  }

  /** True once `batchSize` appends were counted since the cycle began. */
  get full(): boolean {
    return this.appends >= this.batchSize;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Counts `n` local appends; wakes a waiting {@link next} at `batchSize`. */
  notify(n = 1): void {
    this.appends += n;
    if (this.full) this.wakeUp?.();
  }

  /** A cycle begins: the count starts again from 0. */
  cycleStarted(): void {
    this.appends = 0;
  }

  /**
   * Resolves true when `intervalMs` passed, false when woken early (the count reached `batchSize`, or
   * {@link stop}). Resolves false at once when the count is already full or the trigger is stopped.
   */
  next(): Promise<boolean> {
    if (this.stopped || this.full) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (timed: boolean) => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve(timed);
      };
      const timer = setTimeout(() => done(true), this.intervalMs);
      timer.unref?.();
      this.wakeUp = () => done(false);
    });
  }

  /** Sleeps `ms` (nothing when ≤ 0); {@link stop} ends the sleep early. */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.interruptSleep = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      this.interruptSleep = done;
    });
  }

  /** Ends the wait and any sleep now; later waits and sleeps return at once. */
  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
    this.interruptSleep?.();
  }
}
