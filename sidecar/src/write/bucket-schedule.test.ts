import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BucketSchedule, DEFAULT_SWEEP_MS, sweepInterval, type BucketProbe } from './bucket-schedule.js';

const EMPTY: BucketProbe = { length: 0, oldestMs: undefined, pending: 0, undelivered: false };
const all = (n: number) => Array.from({ length: n }, (_, b) => b);

/** Probes every due bucket as empty, except the ones given. */
function probeDue(s: BucketSchedule, withChanged: boolean, found: Record<number, BucketProbe> = {}): number[] {
  const due = s.dueProbes(Date.now(), withChanged);
  for (const b of due) s.probed(b, found[b] ?? EMPTY, Date.now());
  return due;
}

describe('BucketSchedule', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('probes every bucket first, then nothing until the sweep is due, then every bucket again', () => {
    const s = new BucketSchedule(256, 5000);
    expect(probeDue(s, true)).toEqual(all(256));
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(1000);
      expect(s.dueProbes(Date.now(), true)).toEqual([]);
      expect(s.planRead(500).buckets).toEqual([]);
      expect(s.claimCandidates()).toEqual([]);
    }
    vi.advanceTimersByTime(999);
    expect(s.dueProbes(Date.now(), true)).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(probeDue(s, false)).toEqual(all(256));
  });

  it('reads and claims every bucket while nothing is known of them', () => {
    const s = new BucketSchedule(4, 5000);
    expect(s.claimCandidates()).toEqual([0, 1, 2, 3]);
    probeDue(s, false);
    expect(s.claimCandidates()).toEqual([]);
    s.forget();
    expect(s.claimCandidates()).toEqual([0, 1, 2, 3]);
    expect(s.dueProbes(Date.now(), false)).toEqual([0, 1, 2, 3]);
  });

  it('reads a bucket this sidecar appended to without delivery in the next read, and only that one', () => {
    const s = new BucketSchedule(256, 5000);
    probeDue(s, true);
    s.appended(7, false); // delivered: held in memory, nothing to read
    expect(s.planRead(500).buckets).toEqual([]);
    s.appended(9, true);
    const plan = s.planRead(500);
    expect(plan).toEqual({ buckets: [9], perBucket: 500, generation: plan.generation });
    s.readDone(9, plan.generation, 3, 500);
    expect(s.planRead(500).buckets).toEqual([]);
  });

  it('keeps a bucket marked after the read was planned, and a bucket whose read came back full', () => {
    const s = new BucketSchedule(8, 5000);
    probeDue(s, true);
    s.want(1);
    s.want(2);
    const plan = s.planRead(10);
    expect(plan.buckets).toEqual([1, 2]);
    expect(plan.perBucket).toBe(5);
    s.want(2); // new entries while the read was in the air: the read may have missed them
    s.readDone(1, plan.generation, 5, 5); // full: there is more
    s.readDone(2, plan.generation, 0, 5);
    const next = s.planRead(10);
    expect(next.buckets).toEqual([1, 2]);
    s.readDone(1, next.generation, 2, 5);
    s.readDone(2, next.generation, 0, 5);
    expect(s.planRead(10).buckets).toEqual([]);
  });

  it('reads a bucket a probe found undelivered entries in, and claims where it found pending ones', () => {
    const s = new BucketSchedule(8, 5000);
    probeDue(s, true, {
      3: { length: 4, oldestMs: 999_000, pending: 0, undelivered: true },
      5: { length: 2, oldestMs: 998_000, pending: 2, undelivered: false },
    });
    expect(s.planRead(100).buckets).toEqual([3]);
    expect(s.claimCandidates()).toEqual([5]);
    expect(s.totals()).toEqual({ pending: 6, oldestMs: 998_000 });
  });

  it('finds entries another sidecar left within one sweep, long before they are claimable', () => {
    const claimIdleMs = 30_000;
    const s = new BucketSchedule(16, sweepInterval(claimIdleMs));
    probeDue(s, true);
    // Another sidecar appends to bucket 11 right after the sweep (delivered to itself) and dies.
    const appendedAt = Date.now() + 1;
    let seenAt: number | undefined;
    for (let t = 0; t < claimIdleMs && seenAt === undefined; t += 1000) {
      vi.advanceTimersByTime(1000);
      probeDue(s, false, { 11: { length: 1, oldestMs: appendedAt, pending: 1, undelivered: false } });
      if (s.claimCandidates().includes(11)) seenAt = Date.now();
    }
    expect(seenAt).toBeDefined();
    expect((seenAt as number) - appendedAt).toBeLessThan(claimIdleMs / 3);
  });

  it('probes the buckets this sidecar changed when the stats are due, not before', () => {
    const s = new BucketSchedule(8, 5000);
    probeDue(s, true);
    s.appended(4, false);
    s.touched(6);
    expect(s.dueProbes(Date.now(), false)).toEqual([]);
    expect(probeDue(s, true, { 4: { length: 1, oldestMs: 1, pending: 1, undelivered: false } })).toEqual([4, 6]);
    expect(s.dueProbes(Date.now(), true)).toEqual([]);
    expect(s.totals()).toEqual({ pending: 1, oldestMs: 1 });
  });

  it('expects a bucket empty only when its last probe was and this sidecar has not changed it', () => {
    const s = new BucketSchedule(4, 5000);
    expect(s.likelyEmpty(0)).toBe(false); // never probed
    probeDue(s, true, { 1: { length: 2, oldestMs: 1, pending: 0, undelivered: true } });
    expect(s.likelyEmpty(0)).toBe(true);
    expect(s.likelyEmpty(1)).toBe(false);
    s.appended(2, false);
    expect(s.likelyEmpty(2)).toBe(false);
  });
});

describe('sweepInterval', () => {
  it('is the default, at most a third of the claim timeout, at least 1 ms', () => {
    expect(sweepInterval(30_000)).toBe(DEFAULT_SWEEP_MS);
    expect(sweepInterval(3000)).toBe(1000);
    expect(sweepInterval(30_000, 2000)).toBe(2000);
    expect(sweepInterval(1)).toBe(1);
  });
});
