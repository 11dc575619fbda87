/**
 * `status.resharding` as this operator last wrote it, per CacheCluster, for the reconciles that follow a
 * slot-move batch 50 ms later, before the informer cache shows the batch's status patch. Read from the cache
 * alone, such a reconcile started from the resharding as it was before the batch: its keys moved were lost
 * (the status showed `keysMoved: 0` after 2,196 slots had moved), and a resharding that had just ended
 * could be announced again. Pure; the caller keeps one {@link ReshardingMemory} per process.
 *
 * Only a hint, never the truth: it is used only for the same resharding (same `toShards` and `startedAt`)
 * or while the cache shows none, and only for {@link MEMORY_MS} after it was written. Everything about the
 * slots themselves is planned from Redis on every reconcile (cluster-plan.ts).
 */
import type { ReshardingStatus } from '../api/v1alpha1/types.js';

/** How long a remembered write is preferred to the informer cache. */
export const MEMORY_MS = 60_000;

interface Remembered {
  /** What was written last; undefined once a resharding ended (`ended` names it). */
  resharding: ReshardingStatus | undefined;
  ended?: ReshardingStatus;
  /** Monotonic ms of the write. */
  at: number;
}

function same(a: ReshardingStatus, b: ReshardingStatus): boolean {
  return a.toShards === b.toShards && a.startedAt === b.startedAt;
}

export class ReshardingMemory {
  private readonly byKey = new Map<string, Remembered>();

  constructor(private readonly clock: () => number) {}

  /** Records what this operator wrote for `key` (undefined: status.resharding removed). */
  wrote(key: string, before: ReshardingStatus | undefined, after: ReshardingStatus | undefined): void {
    if (after === undefined && before === undefined) {
      this.byKey.delete(key);
      return;
    }
    this.byKey.set(key, {
      resharding: after === undefined ? undefined : { ...after },
      ...(after === undefined && before !== undefined ? { ended: { ...before } } : {}),
      at: this.clock(),
    });
  }

  /** Forgets a CacheCluster that is gone. */
  forget(key: string): void {
    this.byKey.delete(key);
  }

  /**
   * The freshest status.resharding known for `key`, given what the informer cache shows: the remembered
   * write when the cache shows none or an older state of the same resharding (fewer keys moved), none when
   * the cache still shows one the operator ended; otherwise the cache's.
   */
  freshest(key: string, cached: ReshardingStatus | undefined): ReshardingStatus | undefined {
    const m = this.byKey.get(key);
    if (m === undefined) return cached;
    if (this.clock() - m.at > MEMORY_MS) {
      this.byKey.delete(key);
      return cached;
    }
    if (m.resharding === undefined)
      return cached !== undefined && m.ended && same(cached, m.ended) ? undefined : cached;
    if (cached === undefined) return { ...m.resharding };
    if (!same(cached, m.resharding)) return cached;
    return m.resharding.keysMoved >= cached.keysMoved ? { ...m.resharding } : cached;
  }
}
