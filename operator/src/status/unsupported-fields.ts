import type { CacheCluster } from '../api/v1alpha1/types.js';

/**
 * The set spec fields the API accepts but this operator version does not act on, as `spec.…` paths
 * (with the value where it matters). Reported in condition `Unsupported`. Auth, persistence, podTemplate and
 * topology cluster (with shards) are supported.
 */
export function unsupportedFields(cc: CacheCluster): string[] {
  const s = cc.spec;
  const out: string[] = [];
  if (s.metrics?.serviceMonitor === true) out.push('spec.metrics.serviceMonitor');
  return out;
}
