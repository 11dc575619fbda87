/**
 * Client-side rate limit for Kubernetes API requests (`--kube-api-qps`, `--kube-api-burst`), as client-go's
 * token bucket: up to `burst` requests go at once, then `qps` per second. Each request reserves a token when
 * it asks, so waiting requests are served in order and none starves.
 */
import { MAX_TIMER_MS } from '../config.js';

export interface TokenBucketOptions {
  /** Sustained requests per second; 0 or less means unlimited. */
  qps: number;
  /** Requests allowed at once after an idle period (at least 1). */
  burst: number;
  /** Monotonic milliseconds (injectable for tests). Default: performance.now. */
  clock?: () => number;
  /**
   * Called for every token taken with the seconds its request must wait (0: sent at once); the operator
   * observes it in `ripplecache_operator_kube_api_throttle_wait_seconds`.
   */
  onWait?: (seconds: number) => void;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly clock: () => number;
  /** Requests that had to wait, and the milliseconds they waited in total (for metrics). */
  waited = 0;
  waitedMs = 0;

  constructor(private readonly opts: TokenBucketOptions) {
    if (!(opts.burst >= 1)) throw new RangeError('the burst must be at least 1');
    this.clock = opts.clock ?? (() => performance.now());
    this.tokens = opts.burst;
    this.last = this.clock();
  }

  /** Takes a token; returns how many milliseconds the caller must wait before sending (0: send now). */
  reserve(): number {
    const ms = this.reserveMs();
    this.opts.onWait?.(ms / 1000);
    return ms;
  }

  private reserveMs(): number {
    if (this.opts.qps <= 0) return 0;
    const now = this.clock();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.last) / 1000) * this.opts.qps);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    const ms = (-this.tokens / this.opts.qps) * 1000;
    this.waited++;
    this.waitedMs += ms;
    return ms;
  }

  /** Resolves when the caller may send its request. */
  take(): Promise<void> {
    const ms = this.reserve();
    return ms <= 0 ? Promise.resolve() : sleep(Math.ceil(ms));
  }
}

/**
 * Resolves after `ms`, in timers of at most MAX_TIMER_MS (a longer one fires after 1 ms): with a tiny `--kube-api-qps`, the waits of queued
 * requests add up (the n-th waits n/qps s) past what one timer takes, which would send them at once.
 */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    let left = ms;
    const step = (): void => {
      const d = Math.min(left, MAX_TIMER_MS);
      left -= d;
      setTimeout(left > 0 ? step : resolve, d);
    };
    step();
  });
}
