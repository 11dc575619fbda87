/**
 * A keyed, de-duplicating work queue with per-key exponential back-off, in the manner of client-go's
 * workqueue: a key added while queued is not queued twice; a key added while being processed is
 * re-queued after it is done (never two workers on one key at once); `get()` waits for work.
 *
 * Two lanes: `add(key, { front: true })` puts a key in the front lane, which `get()` empties before the
 * normal one (the controller uses it for the first pass of a new CacheCluster, so that under a backlog
 * every new CacheCluster's StatefulSet is created before the follow-up passes of the others). Within a lane
 * keys are first in, first out; a key is in at most one lane (a front add of a key waiting in the normal
 * lane moves it to the front).
 */
import { backoffDelay } from '../../../common/src/backoff.js';

export interface WorkQueueOptions {
  /** First back-off delay after a failure. Default 200 ms. */
  baseDelayMs?: number;
  /** Longest back-off delay. Default 60 s. */
  maxDelayMs?: number;
  /** Timer functions (injectable for tests). Default: the global ones. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export const WORK_QUEUE_DEFAULTS = { baseDelayMs: 200, maxDelayMs: 60_000 } as const;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly front: string[] = [];
  /** Keys waiting in a lane: true for the front lane. */
  private readonly queued = new Map<string, boolean>();
  private readonly processing = new Set<string>();
  /** Keys added while being processed: re-queued by `done()`. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, unknown>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? WORK_QUEUE_DEFAULTS.baseDelayMs;
    this.maxDelayMs = opts.maxDelayMs ?? WORK_QUEUE_DEFAULTS.maxDelayMs;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms).unref());
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  /** Keys waiting to be processed (not counting those being processed or waiting on a timer). */
  get depth(): number {
    return this.queue.length + this.front.length;
  }

  /** Keys waiting in the front lane. */
  get frontDepth(): number {
    return this.front.length;
  }

  add(key: string, opts: { front?: boolean } = {}): void {
    const toFront = opts.front === true;
    if (this.shuttingDown) return;
    const timer = this.timers.get(key);
    if (timer !== undefined) {
      this.clearTimer(timer);
      this.timers.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    const lane = this.queued.get(key);
    if (lane !== undefined) {
      if (toFront && !lane) {
        this.queue.splice(this.queue.indexOf(key), 1);
        this.front.push(key);
        this.queued.set(key, true);
      }
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.set(key, toFront);
    (toFront ? this.front : this.queue).push(key);
  }

  /** Adds `key` after `ms`, unless it is added sooner; a later call replaces an earlier one. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const existing = this.timers.get(key);
    if (existing !== undefined) this.clearTimer(existing);
    this.timers.set(
      key,
      this.setTimer(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  /** Adds `key` after this key's next back-off delay (doubling per consecutive failure). */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffDelay({ baseMs: this.baseDelayMs, capMs: this.maxDelayMs }, n, 0);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the back-off history of `key` (call after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Resolves with the next key to process, or `undefined` once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.front.length > 0 ? this.front.shift() : this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` as processed; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) this.clearTimer(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
