import { DEFAULTS } from '../api/v1alpha1/types.js';
import type { CacheCluster, EvictionPolicy } from '../api/v1alpha1/types.js';
import { resolveMaxMemoryBytes } from './quantity.js';

/** The live eviction settings, as Redis names them. */
export interface EvictionSettings {
  /** Bytes. */
  maxmemory: number;
  maxmemoryPolicy: EvictionPolicy;
}

/**
 * The eviction settings the spec asks for (defaults applied): what the operator applies with
 * CONFIG SET. Throws `InvalidSpecError` (see `resolveMaxMemoryBytes`).
 */
export function desiredEviction(cc: CacheCluster): EvictionSettings {
  return {
    maxmemory: resolveMaxMemoryBytes(cc),
    maxmemoryPolicy: cc.spec.eviction?.policy ?? DEFAULTS.eviction.policy,
  };
}
