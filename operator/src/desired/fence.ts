/**
 * The write fence of a primary (README "Durability"): with `spec.durability.mode: replicated`, every Redis
 * pod runs `min-replicas-to-write 1` and `min-replicas-max-lag <maxLagSeconds>`, so that a primary with no
 * replica that acknowledged within that many seconds (a partitioned old primary) refuses writes with
 * NOREPLICAS instead of accepting writes a failover would lose. Replicas ignore both settings until they
 * are promoted, so every pod carries them. With mode `primary` the settings are Redis's defaults (no
 * fence). Live settings: applied with CONFIG SET by the operator (redis/live-config.ts) and rendered into
 * redis.conf. Pure.
 */
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { InvalidSpecError } from './invalid-spec-error.js';
import { resolveSpec } from './resolved-spec.js';

/** `min-replicas-to-write` / `min-replicas-max-lag`, as Redis names them. */
export interface FenceSettings {
  minReplicasToWrite: number;
  /** Seconds. */
  minReplicasMaxLag: number;
}

/** Redis's defaults: no fence. */
export const NO_FENCE: Readonly<FenceSettings> = Object.freeze({ minReplicasToWrite: 0, minReplicasMaxLag: 10 });

/**
 * The fence the spec asks for. Throws `InvalidSpecError` (reason `InvalidDurability`) for mode
 * `replicated` without a replica, which the CRD's CEL rule normally refuses at admission.
 */
export function desiredFence(cc: CacheCluster): FenceSettings {
  const spec = resolveSpec(cc);
  if (spec.durability.mode !== 'replicated') return { ...NO_FENCE };
  if (spec.topology !== 'replication' || spec.replicas < 1) {
    throw new InvalidSpecError(
      'InvalidDurability',
      'durability.mode replicated waits for a replica: it needs topology replication with replicas >= 1',
    );
  }
  return { minReplicasToWrite: 1, minReplicasMaxLag: spec.durability.maxLagSeconds };
}

/** Both equal. */
export function sameFence(a: FenceSettings, b: FenceSettings): boolean {
  return a.minReplicasToWrite === b.minReplicasToWrite && a.minReplicasMaxLag === b.minReplicasMaxLag;
}
