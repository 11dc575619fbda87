import { describe, expect, it } from 'vitest';
import {
  bucketEntryId,
  bucketMaxPending,
  groupByBucket,
  groupIds,
  parseBucketEntryId,
  planRead,
} from './bucket-batching.js';

describe('bucketed entry ids', () => {
  it('round-trip and reject what is not one', () => {
    expect(bucketEntryId(17, '1700000000000-3')).toBe('17/1700000000000-3');
    expect(parseBucketEntryId('17/1700000000000-3')).toEqual({ bucket: 17, streamId: '1700000000000-3' });
    expect(parseBucketEntryId('1700000000000-3')).toBeUndefined();
    expect(parseBucketEntryId('/1-0')).toBeUndefined();
    expect(parseBucketEntryId('x/1-0')).toBeUndefined();
    expect(parseBucketEntryId('-1/1-0')).toBeUndefined();
  });

  it('group by bucket, stream ids inside', () => {
    const { byBucket, foreign } = groupIds(['3/1-0', '1/2-0', '3/1-1', 'odd']);
    expect([...byBucket]).toEqual([
      [3, ['1-0', '1-1']],
      [1, ['2-0']],
    ]);
    expect(foreign).toEqual(['odd']);
  });
});

describe('groupByBucket', () => {
  it('keeps the order within a bucket and each item’s position', () => {
    const g = groupByBucket(['a1', 'b1', 'a2', 'c1', 'b2'], (s) => s.charCodeAt(0));
    expect([...g.values()]).toEqual([
      { items: ['a1', 'a2'], positions: [0, 2] },
      { items: ['b1', 'b2'], positions: [1, 4] },
      { items: ['c1'], positions: [3] },
    ]);
  });
});

describe('planRead', () => {
  it('asks every bucket for an equal share when none is known to hold more', () => {
    expect(planRead(500, 256, new Set())).toEqual({
      buckets: Array.from({ length: 256 }, (_, i) => i),
      perBucket: 2,
    });
    expect(planRead(10, 256, new Set()).perBucket).toBe(1);
  });

  it('asks only the buckets that came back full, for a share of the batch each', () => {
    expect(planRead(500, 256, new Set([9, 4]))).toEqual({ buckets: [4, 9], perBucket: 250 });
    expect(planRead(500, 256, new Set([1]))).toEqual({ buckets: [1], perBucket: 500 });
  });
});

describe('bucketMaxPending', () => {
  it('shares the backlog bound equally, rounding up, at least 1', () => {
    expect(bucketMaxPending(100_000, 256)).toBe(391);
    expect(bucketMaxPending(256, 256)).toBe(1);
    expect(bucketMaxPending(10, 256)).toBe(1);
  });
});
