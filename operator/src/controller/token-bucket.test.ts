import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('lets a burst through at once, then spaces requests at 1/qps, in the order they asked', () => {
    let now = 0;
    const b = new TokenBucket({ qps: 10, burst: 3, clock: () => now });
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    expect(b.reserve()).toBeCloseTo(100);
    expect(b.reserve()).toBeCloseTo(200);
    expect(b.waited).toBe(2);
    // 1 s later the debt (2 tokens) is paid and 8 more accrued, but at most `burst` are kept.
    now = 1000;
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    expect(b.reserve()).toBeCloseTo(100);
  });

  it('refills at qps: after 250 ms at 4 qps one more request may go', () => {
    let now = 0;
    const b = new TokenBucket({ qps: 4, burst: 1, clock: () => now });
    expect(b.reserve()).toBe(0);
    expect(b.reserve()).toBeCloseTo(250);
    now = 500;
    expect(b.reserve()).toBeCloseTo(0);
    expect(b.reserve()).toBeCloseTo(250);
  });

  it('reports the wait of every token taken, 0 for those sent at once (the throttle metric)', () => {
    let now = 0;
    const waits: number[] = [];
    const b = new TokenBucket({ qps: 10, burst: 2, clock: () => now, onWait: (s) => waits.push(s) });
    b.reserve();
    b.reserve();
    b.reserve();
    b.reserve();
    now = 1000;
    b.reserve();
    expect(waits).toHaveLength(5);
    expect(waits.slice(0, 2)).toEqual([0, 0]);
    expect(waits[2]).toBeCloseTo(0.1);
    expect(waits[3]).toBeCloseTo(0.2);
    expect(waits[4]).toBe(0);
    // Unlimited: every request is reported, never waiting.
    const unlimited: number[] = [];
    const u = new TokenBucket({ qps: 0, burst: 1, clock: () => 0, onWait: (s) => unlimited.push(s) });
    u.reserve();
    u.reserve();
    expect(unlimited).toEqual([0, 0]);
  });

  it('qps 0 means unlimited; a burst below 1 is refused', () => {
    const b = new TokenBucket({ qps: 0, burst: 1, clock: () => 0 });
    for (let i = 0; i < 100; i++) expect(b.reserve()).toBe(0);
    expect(() => new TokenBucket({ qps: 5, burst: 0 })).toThrow(RangeError);
  });

  describe('take', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('waits the whole time when queued waits add up past the longest timer (a tiny qps)', async () => {
      vi.useFakeTimers();
      // One token every 1e6 s (1e9 ms): the fourth request waits 3e9 ms, longer than one timer's 2^31-1 ms.
      const b = new TokenBucket({ qps: 0.000001, burst: 1, clock: () => 0 });
      const done: number[] = [];
      for (const i of [1, 2, 3, 4]) void b.take().then(() => done.push(i));
      await vi.advanceTimersByTimeAsync(0);
      expect(done).toEqual([1]);
      await vi.advanceTimersByTimeAsync(1e9);
      expect(done).toEqual([1, 2]);
      await vi.advanceTimersByTimeAsync(1e9);
      expect(done).toEqual([1, 2, 3]);
      await vi.advanceTimersByTimeAsync(1e9 - 1);
      expect(done).toEqual([1, 2, 3]);
      await vi.advanceTimersByTimeAsync(1);
      expect(done).toEqual([1, 2, 3, 4]);
    });
  });
});
