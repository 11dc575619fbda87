import { describe, expect, it } from 'vitest';
import { mergePatch } from './merge-patch.js';

describe('mergePatch', () => {
  it('removes nested keys the new value lacks (a merge patch would keep them)', () => {
    const from = {
      phase: 'Ready',
      lastFailover: { from: 'a-0', to: 'a-1', reason: 'Planned', fromOffset: 10, toOffset: 12 },
      failover: { step: 'Promoted' },
    };
    const to = { phase: 'Ready', lastFailover: { from: 'a-1', to: 'a-0', toOffset: 40 } };
    expect(mergePatch(from, to)).toEqual({
      phase: 'Ready',
      lastFailover: { from: 'a-1', to: 'a-0', toOffset: 40, reason: null, fromOffset: null },
      failover: null,
    });
  });

  it('replaces arrays and scalars, adds new objects whole, skips undefined', () => {
    expect(mergePatch({ shards: [1, 2], n: 1 }, { shards: [3], n: 2, x: { a: 1 }, u: undefined })).toEqual({
      shards: [3],
      n: 2,
      x: { a: 1 },
    });
    expect(mergePatch(undefined, { a: { b: 1 } })).toEqual({ a: { b: 1 } });
    expect(mergePatch({ a: { b: { c: 1, d: 2 } } }, { a: { b: { c: 1 } } })).toEqual({ a: { b: { c: 1, d: null } } });
  });
});
