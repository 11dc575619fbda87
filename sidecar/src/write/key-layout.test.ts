import { describe, expect, it } from 'vitest';
import {
  bucketedLayout,
  bucketTag,
  CLUSTER_BUCKETS,
  CLUSTER_SLOTS,
  crc16,
  isNewerVersion,
  keyLayout,
  keySlot,
  SINGLE_LAYOUT,
} from './key-layout.js';

describe('keySlot', () => {
  it('is CRC16/XMODEM mod 16384, as Redis Cluster computes it', () => {
    // The reference value of the Redis Cluster specification: CRC16("123456789") = 0x31C3.
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(keySlot('123456789')).toBe(0x31c3 % CLUSTER_SLOTS);
    // Slots redis-server answered for CLUSTER KEYSLOT (Redis 7.0).
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
  });

  it('hashes only the first non-empty {tag}', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('rc:{7.3}anything{else}')).toBe(keySlot('7.3'));
    // Answers of redis-server 7.0 CLUSTER KEYSLOT; an empty tag {} hashes the whole key.
    expect(keySlot('rc:{7.3}anything{else}')).toBe(9196);
    expect(keySlot('foo{}{bar}')).toBe(8363);
    expect(keySlot('foo{}{bar}')).toBe(crc16(Buffer.from('foo{}{bar}')) % CLUSTER_SLOTS);
    expect(keySlot('foo{bar')).toBe(crc16(Buffer.from('foo{bar')) % CLUSTER_SLOTS);
  });
});

describe('the single layout (standalone and replication)', () => {
  it('keeps the keys of before Redis Cluster support', () => {
    expect(keyLayout(false)).toBe(SINGLE_LAYOUT);
    expect(SINGLE_LAYOUT.recordKey('a/b')).toBe('rc:a/b');
    expect(SINGLE_LAYOUT.buckets).toHaveLength(1);
    expect(SINGLE_LAYOUT.bucketOf('x')).toMatchObject({
      streamKey: 'ripplecache:write-back',
      versionKey: 'ripplecache:version',
    });
  });
});

describe('the bucketed layout (Redis Cluster)', () => {
  const layout = bucketedLayout();

  it('puts a key’s record, its bucket’s journal and counter in one slot', () => {
    for (const key of ['a', 'user:42', '{braces}', 'ünïcode', '']) {
      const b = layout.bucketOf(key);
      expect(keySlot(layout.recordKey(key))).toBe(b.slot);
      expect(keySlot(b.streamKey)).toBe(b.slot);
      expect(keySlot(`${b.streamKey}:dead`)).toBe(b.slot);
      expect(keySlot(b.versionKey)).toBe(b.slot);
      expect(layout.recordKey(key).startsWith('rc:')).toBe(true);
    }
  });

  it('spreads the buckets one per equal slice of the slots', () => {
    expect(layout.buckets).toHaveLength(CLUSTER_BUCKETS);
    layout.buckets.forEach((b, i) => {
      expect(b.slot).toBeGreaterThanOrEqual(Math.floor((i * CLUSTER_SLOTS) / CLUSTER_BUCKETS));
      expect(b.slot).toBeLessThan(Math.floor(((i + 1) * CLUSTER_SLOTS) / CLUSTER_BUCKETS));
    });
    // Three equal slot ranges (as the operator assigns them) hold 85, 86, 85 buckets.
    const perShard = [0, 0, 0];
    for (const b of layout.buckets) perShard[Math.min(2, Math.floor((b.slot * 3) / CLUSTER_SLOTS))]!++;
    for (const n of perShard) expect(Math.abs(n - CLUSTER_BUCKETS / 3)).toBeLessThanOrEqual(1);
  });

  it('is deterministic: every sidecar computes the same tags', () => {
    expect(bucketedLayout().buckets.map((b) => b.tag)).toEqual(layout.buckets.map((b) => b.tag));
    expect(bucketTag(0, CLUSTER_BUCKETS)).toBe(layout.buckets[0]?.tag.slice(1, -1));
    expect(keyLayout(true).buckets.map((b) => b.tag)).toEqual(layout.buckets.map((b) => b.tag));
  });

  it('spreads keys over the buckets', () => {
    const counts = new Map<number, number>();
    for (let i = 0; i < 25_600; i++) {
      const b = layout.bucketOf(`key-${i}`).index;
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    expect(counts.size).toBe(CLUSTER_BUCKETS);
    expect(Math.max(...counts.values())).toBeLessThan(200);
  });
});

describe('isNewerVersion', () => {
  it('follows the rule of the Lua newer()', () => {
    expect(isNewerVersion(5, true, 4, true)).toBe(true);
    expect(isNewerVersion(5, false, 4, true)).toBe(true);
    expect(isNewerVersion(4, true, 5, false)).toBe(false);
    // a value at n replaces a tombstone at n, not a value at n
    expect(isNewerVersion(5, true, 5, false)).toBe(true);
    expect(isNewerVersion(5, true, 5, true)).toBe(false);
    // a tombstone at n replaces nothing at n
    expect(isNewerVersion(5, false, 5, false)).toBe(false);
    expect(isNewerVersion(1, true, 0, false)).toBe(true);
  });
});
