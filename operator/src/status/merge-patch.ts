/**
 * The JSON merge patch (RFC 7386, what `patchStatus` sends) that turns `from` into `to`. Pure.
 *
 * A merge patch merges nested objects key by key: sending `to` as it is keeps every nested key `from` had
 * and `to` has not (a `status.lastFailover.reason: Planned` of a switchover stayed on the unplanned failover
 * that followed it). Here such keys are sent as null, at every depth; arrays and other values replace.
 */
type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergePatch(from: unknown, to: Json): Json {
  const patch: Json = {};
  const old = isObject(from) ? from : {};
  for (const [k, v] of Object.entries(to)) {
    if (v === undefined) continue;
    patch[k] = isObject(v) && isObject(old[k]) ? mergePatch(old[k], v) : v;
  }
  for (const k of Object.keys(old)) if (!(k in to) || to[k] === undefined) patch[k] = null;
  return patch;
}
