import { describe, expect, it } from 'vitest';
import { WorkQueue } from './work-queue.js';

function manualTimers() {
  const pending: Array<{ fn: () => void; ms: number; id: number }> = [];
  let next = 0;
  return {
    pending,
    setTimer: (fn: () => void, ms: number) => {
      const id = next++;
      pending.push({ fn, ms, id });
      return id;
    },
    clearTimer: (h: unknown) => {
      const i = pending.findIndex((p) => p.id === h);
      if (i >= 0) pending.splice(i, 1);
    },
    fireAll() {
      for (const p of pending.splice(0)) p.fn();
    },
  };
}

describe('WorkQueue', () => {
  it('de-duplicates a key added twice while queued', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.depth).toBe(0);
  });

  it('never hands one key to two workers; re-queues a key added while processing', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a');
    expect(q.depth).toBe(0); // held back: 'a' is being processed
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done('a');
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('backs off exponentially per key, up to the maximum, and forget() resets it', () => {
    const t = manualTimers();
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 500, ...t });
    expect(q.addRateLimited('a')).toBe(100);
    expect(q.addRateLimited('a')).toBe(200);
    expect(q.addRateLimited('a')).toBe(400);
    expect(q.addRateLimited('a')).toBe(500);
    expect(q.addRateLimited('b')).toBe(100);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(100);
    expect(t.pending.filter((p) => p.ms > 0)).toHaveLength(2); // one timer per key: later replaces earlier
    t.fireAll();
    expect(q.depth).toBe(2);
  });

  it('an immediate add cancels a pending delayed add', () => {
    const t = manualTimers();
    const q = new WorkQueue(t);
    q.addAfter('a', 1000);
    q.add('a');
    expect(t.pending).toHaveLength(0);
    expect(q.depth).toBe(1);
  });

  it('shutDown releases waiting workers with undefined', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add('x');
    expect(q.depth).toBe(0);
  });
});

describe('WorkQueue front lane', () => {
  it('hands out front-lane keys before the normal lane, each lane in order', async () => {
    const q = new WorkQueue();
    q.add('n1');
    q.add('f1', { front: true });
    q.add('n2');
    q.add('f2', { front: true });
    expect(q.depth).toBe(4);
    expect(q.frontDepth).toBe(2);
    expect([await q.get(), await q.get(), await q.get(), await q.get()]).toEqual(['f1', 'f2', 'n1', 'n2']);
    expect(q.frontDepth).toBe(0);
  });

  it('moves a waiting key to the front lane; a normal add of a front key leaves it there', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('b', { front: true });
    q.add('b');
    q.add('b', { front: true });
    expect(q.depth).toBe(2);
    expect(q.frontDepth).toBe(1);
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBe('a');
  });

  it('re-queues a key added to the front while processing in the normal lane', async () => {
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a', { front: true });
    q.add('z');
    q.done('a');
    expect(q.frontDepth).toBe(0);
    expect(await q.get()).toBe('z');
    expect(await q.get()).toBe('a');
  });
});
