import { describe, expect, it } from 'vitest';
import { MicroBatcher } from './micro-batcher.js';

/** A batcher whose flushes run only when the test says so, and which records every call. */
function harness(
  maxBatch: number,
  run?: (items: readonly number[]) => Promise<readonly (string | Error)[]>,
  maxWeight?: number,
) {
  const pending: (() => void)[] = [];
  const calls: number[][] = [];
  const batcher = new MicroBatcher<number, string>({
    maxBatch,
    ...(maxWeight === undefined ? {} : { maxWeight, weight: (i: number) => i }),
    schedule: (flush) => pending.push(flush),
    run: async (items) => {
      calls.push([...items]);
      return run ? run(items) : items.map((i) => `r${i}`);
    },
  });
  const turn = () => {
    const fns = pending.splice(0);
    for (const fn of fns) fn();
  };
  return { batcher, calls, turn, scheduled: () => pending.length };
}

describe('MicroBatcher', () => {
  it('hands the items of one turn to one call, in order, and answers each its own result', async () => {
    const h = harness(100);
    const ps = [1, 2, 3].map((i) => h.batcher.submit(i));
    expect(h.scheduled()).toBe(1);
    expect(h.calls).toEqual([]);
    h.turn();
    await expect(Promise.all(ps)).resolves.toEqual(['r1', 'r2', 'r3']);
    expect(h.calls).toEqual([[1, 2, 3]]);
  });

  it('splits a turn into calls of at most maxBatch items', async () => {
    const h = harness(2);
    const ps = [1, 2, 3, 4, 5].map((i) => h.batcher.submit(i));
    h.turn();
    await expect(Promise.all(ps)).resolves.toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    expect(h.calls).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('keeps each call within maxWeight, sending an item heavier than that alone', async () => {
    const h = harness(100, undefined, 10);
    const ps = [4, 5, 2, 30, 1, 9, 1].map((i) => h.batcher.submit(i));
    h.turn();
    await expect(Promise.all(ps)).resolves.toEqual(['r4', 'r5', 'r2', 'r30', 'r1', 'r9', 'r1']);
    expect(h.calls).toEqual([[4, 5], [2], [30], [1, 9], [1]]);
  });

  it('starts a new batch for items submitted after a flush, without waiting for the earlier call', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const h = harness(10, async (items) => {
      if (items[0] === 1) await gate;
      return items.map((i) => `r${i}`);
    });
    const first = h.batcher.submit(1);
    h.turn();
    const second = h.batcher.submit(2);
    expect(h.batcher.waiting).toBe(1);
    h.turn();
    await expect(second).resolves.toBe('r2');
    release();
    await expect(first).resolves.toBe('r1');
    expect(h.calls).toEqual([[1], [2]]);
  });

  it('fails only the item whose result is an Error', async () => {
    const h = harness(10, async (items) => items.map((i) => (i === 2 ? new Error('no 2') : `r${i}`)));
    const ps = [1, 2, 3].map((i) => h.batcher.submit(i));
    h.turn();
    const settled = await Promise.allSettled(ps);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toEqual(new Error('no 2'));
  });

  it('fails every item of a batch whose call throws, and only that batch', async () => {
    const h = harness(2, async (items) => {
      if (items.includes(1)) throw new Error('redis down');
      return items.map((i) => `r${i}`);
    });
    const ps = [1, 2, 3].map((i) => h.batcher.submit(i));
    h.turn();
    const settled = await Promise.allSettled(ps);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual([
      'redis down',
      'redis down',
      'r3',
    ]);
  });

  it('fails a batch answered with the wrong number of results', async () => {
    const h = harness(10, async () => ['only one']);
    const ps = [1, 2].map((i) => h.batcher.submit(i));
    h.turn();
    for (const p of ps) await expect(p).rejects.toThrow('a batch of 2 items answered 1 results');
  });

  it('refuses a maxBatch that is not a positive integer', () => {
    expect(() => new MicroBatcher({ maxBatch: 0, run: async () => [] })).toThrow(RangeError);
  });

  it('defers to setImmediate by default', async () => {
    const calls: number[][] = [];
    const b = new MicroBatcher<number, number>({
      maxBatch: 10,
      run: async (items) => {
        calls.push([...items]);
        return items;
      },
    });
    const ps = [b.submit(1), b.submit(2)];
    await Promise.resolve();
    expect(calls).toEqual([]);
    await expect(Promise.all(ps)).resolves.toEqual([1, 2]);
    expect(calls).toEqual([[1, 2]]);
  });
});
