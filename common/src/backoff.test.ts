import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles from the base per step up to the cap', () => {
    const b = { baseMs: 100, capMs: 5000 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(b, n, 0))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
  });

  it('stays at the cap for huge steps instead of overflowing', () => {
    expect(backoffDelay({ baseMs: 1, capMs: 10_000 }, 5000, 0)).toBe(10_000);
    expect(backoffDelay({ baseMs: 250, capMs: 10_000 }, Number.MAX_SAFE_INTEGER, 0)).toBe(10_000);
  });

  it('treats a negative or fractional step as its whole part, at least 0', () => {
    expect(backoffDelay({ baseMs: 50, capMs: 2000 }, -3, 0)).toBe(50);
    expect(backoffDelay({ baseMs: 50, capMs: 2000 }, 2.9, 0)).toBe(200);
  });

  it('adds up to jitterMs of jitter, rounded down, on top of the cap', () => {
    const b = { baseMs: 50, capMs: 2000, jitterMs: 50 };
    expect(backoffDelay(b, 0, 0.999)).toBe(99);
    expect(backoffDelay(b, 10, 0.5)).toBe(2025);
    expect(backoffDelay({ baseMs: 50, capMs: 2000 }, 0, 0.999)).toBe(50);
  });

  it('defaults the jitter to Math.random(): always within [delay, delay + jitterMs)', () => {
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay({ baseMs: 100, capMs: 5000, jitterMs: 100 }, 0);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThan(200);
    }
  });
});
