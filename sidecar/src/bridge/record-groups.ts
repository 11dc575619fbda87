/**
 * How the bridge splits its script calls so that each one touches a single hash slot, as Redis Cluster
 * requires of a script's keys. Pure.
 *
 * - Relays and local version reads name cache keys: they are grouped by the keys' bucket in the Redis's
 *   key layout (../write/key-layout.ts): in the bucketed layout (Redis Cluster) every record of a bucket,
 *   and the bucket's version counter, share one hash tag, hence one slot; in the single layout there is
 *   one bucket and one call, as before Redis Cluster was supported.
 * - Repairs name Redis keys found by SCAN (`rc:...`, any layout): they are grouped by hash slot.
 */
import type { Bucket, KeyLayout } from '../write/key-layout.js';
import { keySlot } from '../write/key-layout.js';

/** The cache keys of one bucket: their record keys, and where each stands in the caller's list. */
export interface RecordGroup {
  bucket: Bucket;
  /** The Redis keys of the records (`rc:<key>`, or `rc:{tag}<key>` in the bucketed layout). */
  recordKeys: string[];
  /** For each record key, the index of its cache key in the caller's list. */
  positions: number[];
}

/** Groups cache keys by bucket, in the order each bucket is first met; order kept within a bucket. */
export function recordGroups(layout: KeyLayout, keys: readonly string[]): RecordGroup[] {
  const groups = new Map<number, RecordGroup>();
  keys.forEach((key, i) => {
    const bucket = layout.bucketOf(key);
    let g = groups.get(bucket.index);
    if (g === undefined) {
      g = { bucket, recordKeys: [], positions: [] };
      groups.set(bucket.index, g);
    }
    g.recordKeys.push(layout.recordKey(key));
    g.positions.push(i);
  });
  return [...groups.values()];
}

/**
 * Puts per-group answers back in the caller's order: `answers[g][j]` is the answer for
 * `groups[g].positions[j]`. Throws when a group's answer has the wrong length (a script that answered
 * something else than one value per key).
 */
export function ungroup<T>(groups: readonly RecordGroup[], answers: readonly (readonly T[])[], total: number): T[] {
  const out = new Array<T>(total);
  groups.forEach((g, gi) => {
    const a = answers[gi];
    if (a === undefined || a.length !== g.positions.length) {
      throw new RangeError(`bucket ${g.bucket.index}: ${a?.length ?? 0} answers for ${g.positions.length} keys`);
    }
    g.positions.forEach((pos, j) => {
      out[pos] = a[j] as T;
    });
  });
  return out;
}

/** Groups Redis keys by hash slot (for one script call each on Redis Cluster). */
export function groupBySlot(redisKeys: readonly string[]): string[][] {
  const bySlot = new Map<number, string[]>();
  for (const k of redisKeys) {
    const slot = keySlot(k);
    const list = bySlot.get(slot);
    if (list) list.push(k);
    else bySlot.set(slot, [k]);
  }
  return [...bySlot.values()];
}
