import { sameQuantity } from '../../../common/src/quantity.js';

/**
 * Keys whose values are Kubernetes quantities, which the API server stores in canonical form (`1073741824` comes
 * back as `1Gi`, `0.5` as `500m`): the values of `resources.requests` / `resources.limits` (containers, volume
 * claim templates) and `emptyDir.sizeLimit`.
 */
function quantityValues(path: string[]): boolean {
  const [key, parent, grand] = [path.at(-1), path.at(-2), path.at(-3)];
  if (key !== undefined && (parent === 'requests' || parent === 'limits') && grand === 'resources') return true;
  return key === 'sizeLimit';
}

/**
 * PURE: is every field of `desired` present with an equal value in `current`? Used to skip a
 * server-side apply that would change nothing (so a reconcile of an unchanged CacheCluster writes
 * nothing). Arrays must match element by element (same length); objects may have extra fields in
 * `current` (defaults the API server filled in). Quantities (resource requests and limits, sizeLimit)
 * are compared by amount, as the API server rewrites them (`1Gi` = `1073741824`, `500m` = `0.5`), so
 * that an unchanged child is never applied again; every other value as written.
 */
export function isSubset(desired: unknown, current: unknown, path: string[] = []): boolean {
  if (desired === current) return true;
  if (desired === null || current === null || desired === undefined || current === undefined) return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(current) || current.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, current[i], path));
  }
  if (typeof desired === 'object') {
    if (typeof current !== 'object' || Array.isArray(current)) return false;
    const cur = current as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(
      ([k, v]) => v === undefined || isSubset(v, cur[k], [...path, k]),
    );
  }
  // The API server stores int-or-string fields as given, but numbers may come back as strings and back.
  if (
    (typeof desired === 'number' || typeof desired === 'string') &&
    (typeof current === 'number' || typeof current === 'string')
  ) {
    if (String(desired) === String(current)) return true;
    return quantityValues(path) && sameQuantity(desired, current);
  }
  return false;
}
