import { describe, expect, it } from 'vitest';
import { SINGLE_LAYOUT, bucketedLayout, keySlot } from '../write/key-layout.js';
import { groupBySlot, recordGroups, ungroup } from './record-groups.js';

const bucketed = bucketedLayout();

describe('recordGroups', () => {
  it('one group of plain record keys in the single layout, in order', () => {
    const groups = recordGroups(SINGLE_LAYOUT, ['b', 'a', 'c']);
    expect(groups).toEqual([
      { bucket: SINGLE_LAYOUT.buckets[0], recordKeys: ['rc:b', 'rc:a', 'rc:c'], positions: [0, 1, 2] },
    ]);
  });

  it("groups keys per bucket in the cluster layout: one slot per group, the bucket's counter in it too", () => {
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
    const groups = recordGroups(bucketed, keys);
    expect(groups.length).toBeGreaterThan(50);
    // Every key once, at its position, with its own record key.
    const positions = groups.flatMap((g) => g.positions).sort((x, y) => x - y);
    expect(positions).toEqual(keys.map((_, i) => i));
    for (const g of groups) {
      expect(g.recordKeys).toHaveLength(g.positions.length);
      g.positions.forEach((pos, j) => expect(g.recordKeys[j]).toBe(bucketed.recordKey(keys[pos]!)));
      // One slot for the script's keys: the records and the bucket's version counter.
      const slots = new Set([...g.recordKeys, g.bucket.versionKey].map((k) => keySlot(k)));
      expect([...slots]).toEqual([g.bucket.slot]);
      // Positions ascending: the keys' order is kept within a bucket.
      expect([...g.positions].sort((x, y) => x - y)).toEqual(g.positions);
    }
    // Distinct buckets per group.
    expect(new Set(groups.map((g) => g.bucket.index)).size).toBe(groups.length);
  });

  it('keeps a repeated key in its bucket at each position', () => {
    const groups = recordGroups(bucketed, ['x', 'y', 'x']);
    const gx = groups.find((g) => g.bucket === bucketed.bucketOf('x'))!;
    expect(gx.positions).toEqual(expect.arrayContaining([0, 2]));
  });
});

describe('ungroup', () => {
  it("puts per-bucket answers back in the caller's order", () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const groups = recordGroups(bucketed, keys);
    // Each group answers, per key, the key's own index: ungrouped, that is 0..39.
    const answers = groups.map((g) => g.positions.map((p) => p * 10));
    expect(ungroup(groups, answers, keys.length)).toEqual(keys.map((_, i) => i * 10));
  });

  it('refuses an answer of the wrong length', () => {
    const groups = recordGroups(bucketed, ['a', 'b']);
    const answers = groups.map((g) => [...g.positions, 99]);
    expect(() => ungroup(groups, answers, 2)).toThrow(RangeError);
    expect(() => ungroup(groups, [], 2)).toThrow(/answers for/);
  });
});

describe('groupBySlot', () => {
  it('groups Redis keys by hash slot, honouring hash tags', () => {
    const keys = ['a', 'b', bucketed.recordKey('x'), bucketed.recordKey('y'), 'rc:plain'];
    const groups = groupBySlot(keys);
    expect(groups.flat().sort()).toEqual([...keys].sort());
    for (const g of groups) expect(new Set(g.map((k) => keySlot(k))).size).toBe(1);
    expect(new Set(groups.map((g) => keySlot(g[0]!))).size).toBe(groups.length);
    // Two records of one bucket share a group.
    const sameBucket = Array.from({ length: 300 }, (_, i) => `s${i}`).filter(
      (k) => bucketed.bucketOf(k) === bucketed.bucketOf('x'),
    );
    expect(sameBucket.length).toBeGreaterThan(0);
    expect(groupBySlot([bucketed.recordKey('x'), bucketed.recordKey(sameBucket[0]!)])).toHaveLength(1);
  });
});
