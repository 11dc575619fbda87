/**
 * Pure decisions of the bucketed write-back journal (redis/bucketed-journal.ts, Redis Cluster): how its
 * entry ids name their bucket, how a call's writes and ids are split by bucket, and how many entries to
 * ask of each bucket stream so that one read of many streams returns about one batch.
 */

/** An entry id of the bucketed journal: `<bucket>/<stream id>`. */
export function bucketEntryId(bucket: number, streamId: string): string {
  return `${bucket}/${streamId}`;
}

/** Splits a bucketed entry id; undefined when it is not one. */
export function parseBucketEntryId(id: string): { bucket: number; streamId: string } | undefined {
  const slash = id.indexOf('/');
  if (slash <= 0) return undefined;
  const bucket = Number(id.slice(0, slash));
  if (!Number.isSafeInteger(bucket) || bucket < 0) return undefined;
  return { bucket, streamId: id.slice(slash + 1) };
}

/**
 * Groups items by bucket, keeping their order within each bucket, and remembers each item's position
 * so that per-bucket answers can be put back in the caller's order.
 */
export function groupByBucket<T>(
  items: readonly T[],
  bucketOf: (item: T) => number,
): Map<number, { items: T[]; positions: number[] }> {
  const groups = new Map<number, { items: T[]; positions: number[] }>();
  items.forEach((item, i) => {
    const b = bucketOf(item);
    let g = groups.get(b);
    if (g === undefined) {
      g = { items: [], positions: [] };
      groups.set(b, g);
    }
    g.items.push(item);
    g.positions.push(i);
  });
  return groups;
}

/** Groups bucketed entry ids by bucket (stream ids inside); ids that are not bucketed are returned apart. */
export function groupIds(ids: readonly string[]): { byBucket: Map<number, string[]>; foreign: string[] } {
  const byBucket = new Map<number, string[]>();
  const foreign: string[] = [];
  for (const id of ids) {
    const p = parseBucketEntryId(id);
    if (p === undefined) {
      foreign.push(id);
      continue;
    }
    const list = byBucket.get(p.bucket);
    if (list) list.push(p.streamId);
    else byBucket.set(p.bucket, [p.streamId]);
  }
  return { byBucket, foreign };
}

/**
 * Which buckets one read asks, and for how many entries each, to fill about `count`: the buckets that came
 * back full last time (`hot`: they hold more) share the count; when none did, every bucket is asked for
 * an equal share (at least 1). Reading only the hot buckets keeps a backlog in a few buckets draining in
 * full batches, and the equal share keeps what one read of every bucket returns near one batch.
 */
export function planRead(
  count: number,
  bucketCount: number,
  hot: ReadonlySet<number>,
): { buckets: number[]; perBucket: number } {
  if (hot.size > 0) {
    return { buckets: [...hot].sort((a, b) => a - b), perBucket: Math.max(1, Math.ceil(count / hot.size)) };
  }
  return {
    buckets: Array.from({ length: bucketCount }, (_, b) => b),
    perBucket: Math.max(1, Math.ceil(count / bucketCount)),
  };
}

/** The per-bucket backlog bound: the cluster-wide `maxPending` shared equally (rounded up). */
export function bucketMaxPending(maxPending: number, bucketCount: number): number {
  return Math.max(1, Math.ceil(maxPending / bucketCount));
}
