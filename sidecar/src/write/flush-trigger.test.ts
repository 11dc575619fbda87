import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FlushTrigger } from './flush-trigger.js';

describe('FlushTrigger (the flusher timer loop)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Whether the promise settled, and with what, after the timers ran. */
  function watch<T>(p: Promise<T>): { done: boolean; value: T | undefined } {
    const state: { done: boolean; value: T | undefined } = { done: false, value: undefined };
    void p.then((v) => {
      state.done = true;
      state.value = v;
    });
    return state;
  }

  it('starts a cycle when the interval passed (true)', async () => {
    const t = new FlushTrigger(1000, 10);
    const w = watch(t.next());
    await vi.advanceTimersByTimeAsync(999);
    expect(w.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(w).toEqual({ done: true, value: true });
  });

  it('starts a cycle early once batchSize appends were counted (false), and not before', async () => {
    const t = new FlushTrigger(1000, 10);
    const w = watch(t.next());
    t.notify(9);
    await vi.advanceTimersByTimeAsync(10);
    expect(w.done).toBe(false);
    t.notify();
    await vi.advanceTimersByTimeAsync(0);
    expect(w).toEqual({ done: true, value: false });
    // Still full until a cycle begins: the next wait returns at once.
    expect(await t.next()).toBe(false);
    t.cycleStarted();
    expect(t.count).toBe(0);
    const again = watch(t.next());
    await vi.advanceTimersByTimeAsync(1000);
    expect(again).toEqual({ done: true, value: true });
  });

  it('stop ends the wait and a sleep at once; later ones return at once', async () => {
    const t = new FlushTrigger(60_000, 10);
    const w = watch(t.next());
    const s = watch(t.sleep(30_000));
    t.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(w).toEqual({ done: true, value: false });
    expect(s.done).toBe(true);
    expect(await t.next()).toBe(false);
    await t.sleep(5000);
    expect(t.isStopped).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sleeps the time asked (nothing for 0) and leaves no timer behind', async () => {
    const t = new FlushTrigger(1000, 10);
    await t.sleep(0);
    const s = watch(t.sleep(250));
    await vi.advanceTimersByTimeAsync(249);
    expect(s.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.done).toBe(true);
    const w = watch(t.next());
    t.notify(10);
    await vi.advanceTimersByTimeAsync(0);
    expect(w.value).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
