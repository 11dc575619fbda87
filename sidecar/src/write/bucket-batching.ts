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
 * How many entries one read asks of each of `buckets` to fill about `count`: an equal share, at least 1
 * (none when there is no bucket). The buckets come from bucket-schedule.ts (the hot and wanted ones for
 * new entries; those with pending entries for claims), so that a backlog in a few buckets drains in full
 * batches and what one read returns stays near one batch.
 */
export function planRead(count: number, buckets: Iterable<number>): { buckets: number[]; perBucket: number } {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  return { buckets: sorted, perBucket: sorted.length === 0 ? 0 : Math.max(1, Math.ceil(count / sorted.length)) };
}

/** The per-bucket backlog bound: the cluster-wide `maxPending` shared equally (rounded up). */
export function bucketMaxPending(maxPending: number, bucketCount: number): number {
  return Math.max(1, Math.ceil(maxPending / bucketCount));
}
