import { describe, expect, it } from 'vitest';
import type { ReshardingStatus } from '../api/v1alpha1/types.js';
import { MEMORY_MS, ReshardingMemory } from './resharding-memory.js';

const r = (keysMoved: number, over: Partial<ReshardingStatus> = {}): ReshardingStatus => ({
  toShards: 3,
  slotsToMove: 4096,
  slotsRemaining: 4096 - keysMoved,
  keysMoved,
  startedAt: '2026-12-03T21:00:00Z',
  ...over,
});

describe('ReshardingMemory', () => {
  it('prefers what it wrote while the cache shows an older state of the same resharding, or none', () => {
    let now = 0;
    const m = new ReshardingMemory(() => now);
    expect(m.freshest('ns/cc', r(5))).toEqual(r(5));
    m.wrote('ns/cc', undefined, r(740));
    // The batch's patch not in the cache yet: its keys are not lost.
    expect(m.freshest('ns/cc', undefined)).toEqual(r(740));
    expect(m.freshest('ns/cc', r(0))).toEqual(r(740));
    // The cache caught up (or went further): the cache.
    expect(m.freshest('ns/cc', r(900))).toEqual(r(900));
    // Another resharding (a new target): the cache, whatever was remembered.
    expect(m.freshest('ns/cc', r(1, { toShards: 5 }))).toEqual(r(1, { toShards: 5 }));
    expect(m.freshest('ns/cc', r(1, { startedAt: '2026-12-03T22:00:00Z' }))).toMatchObject({ keysMoved: 1 });
    // Only for a while: then the cache alone.
    now = MEMORY_MS + 1;
    expect(m.freshest('ns/cc', undefined)).toBeUndefined();
  });

  it('does not bring back a resharding it ended while the cache still shows it', () => {
    const m = new ReshardingMemory(() => 0);
    m.wrote('ns/cc', r(100), undefined);
    expect(m.freshest('ns/cc', r(100))).toBeUndefined();
    expect(m.freshest('ns/cc', undefined)).toBeUndefined();
    // A new one the cache shows (started after): kept.
    const next = r(3, { toShards: 4, startedAt: '2026-12-03T23:00:00Z' });
    expect(m.freshest('ns/cc', next)).toEqual(next);
  });

  it('keeps CacheClusters apart, returns copies, and forgets one that is gone', () => {
    const m = new ReshardingMemory(() => 0);
    m.wrote('ns/a', undefined, r(10));
    expect(m.freshest('ns/b', undefined)).toBeUndefined();
    const got = m.freshest('ns/a', undefined)!;
    got.keysMoved = 999;
    expect(m.freshest('ns/a', undefined)).toEqual(r(10));
    m.forget('ns/a');
    expect(m.freshest('ns/a', undefined)).toBeUndefined();
    m.wrote('ns/a', undefined, undefined);
    expect(m.freshest('ns/a', r(1))).toEqual(r(1));
  });
});
