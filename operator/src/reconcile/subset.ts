/**
 * PURE: is every field of `desired` present with an equal value in `current`? Used to skip a
 * server-side apply that would change nothing (so a reconcile of an unchanged CacheCluster writes
 * nothing). Arrays must match element by element (same length); objects may have extra fields in
 * `current` (defaults the API server filled in). Quantities and numbers are compared as written, so
 * a normalised value ('0.5' → '500m') merely causes one harmless no-op apply.
 */
export function isSubset(desired: unknown, current: unknown): boolean {
  if (desired === current) return true;
  if (desired === null || current === null || desired === undefined || current === undefined) return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(current) || current.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, current[i]));
  }
  if (typeof desired === 'object') {
    if (typeof current !== 'object' || Array.isArray(current)) return false;
    const cur = current as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => v === undefined || isSubset(v, cur[k]));
  }
  // The API server stores int-or-string fields as given, but numbers may come back as strings and back.
  if (
    (typeof desired === 'number' || typeof desired === 'string') &&
    (typeof current === 'number' || typeof current === 'string')
  ) {
    return String(desired) === String(current);
  }
  return false;
}
