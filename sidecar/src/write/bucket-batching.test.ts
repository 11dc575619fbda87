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
  const buckets = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('gives each bucket an equal share of the batch, at least 1, in bucket order', () => {
    expect(planRead(500, buckets(256).reverse())).toEqual({ buckets: buckets(256), perBucket: 2 });
    expect(planRead(10, buckets(256)).perBucket).toBe(1);
    expect(planRead(500, new Set([9, 4]))).toEqual({ buckets: [4, 9], perBucket: 250 });
    expect(planRead(500, [1, 1])).toEqual({ buckets: [1], perBucket: 500 });
  });

  it('asks nothing of no bucket', () => {
    expect(planRead(500, [])).toEqual({ buckets: [], perBucket: 0 });
  });
});

describe('bucketMaxPending', () => {
  it('shares the backlog bound equally, rounding up, at least 1', () => {
    expect(bucketMaxPending(100_000, 256)).toBe(391);
    expect(bucketMaxPending(256, 256)).toBe(1);
    expect(bucketMaxPending(10, 256)).toBe(1);
  });
});
