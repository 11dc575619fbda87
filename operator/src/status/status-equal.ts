import type { CacheClusterStatus } from '../api/v1alpha1/types.js';
import { canonicalJson } from '../desired/canonical-json.js';

/**
 * Whether two statuses are the same, ignoring only object key order (and keys whose value is
 * undefined, which JSON does not carry). Reconcile patches the status only when this is false.
 */
export function statusEqual(a: CacheClusterStatus | undefined, b: CacheClusterStatus | undefined): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
