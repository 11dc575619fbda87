import { describe, expect, it } from 'vitest';
import { cacheCluster, withSpec } from '../../../test/fixtures/cache-cluster.js';
import { desiredFence, NO_FENCE, sameFence } from './fence.js';
import { InvalidSpecError } from './invalid-spec-error.js';

describe('desiredFence', () => {
  it('fences a replication cluster with a replica by default: min-replicas-to-write 1, max lag 3 s', () => {
    expect(desiredFence(cacheCluster('c', withSpec({ topology: 'replication' })))).toEqual({
      minReplicasToWrite: 1,
      minReplicasMaxLag: 3,
    });
    expect(
      desiredFence(cacheCluster('c', withSpec({ topology: 'replication', durability: { maxLagSeconds: 9 } }))),
    ).toEqual({ minReplicasToWrite: 1, minReplicasMaxLag: 9 });
  });

  it("has no fence (Redis's defaults) with durability primary, standalone, or no replica", () => {
    for (const spec of [
      { topology: 'replication' as const, durability: { mode: 'primary' as const } },
      { topology: 'standalone' as const },
      { topology: 'replication' as const, replicas: 0 },
    ]) {
      expect(desiredFence(cacheCluster('c', withSpec(spec)))).toEqual(NO_FENCE);
    }
  });

  it('refuses durability replicated without a replica (what the CEL rule refuses at admission)', () => {
    const bad = cacheCluster(
      'c',
      withSpec({ topology: 'replication', replicas: 0, durability: { mode: 'replicated' } }),
    );
    expect(() => desiredFence(bad)).toThrow(InvalidSpecError);
    expect(() => desiredFence(bad)).toThrow(/needs topology replication with replicas >= 1/);
  });

  it('compares settings', () => {
    expect(sameFence(NO_FENCE, { minReplicasToWrite: 0, minReplicasMaxLag: 10 })).toBe(true);
    expect(sameFence(NO_FENCE, { minReplicasToWrite: 1, minReplicasMaxLag: 10 })).toBe(false);
  });
});
