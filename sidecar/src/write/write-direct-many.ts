/**
 * Group commit of a batch's writes under write-through and write-around (`POST /v1/batch`): the writes of
 * distinct keys take their versions, go to the origin in one call (PostgreSQL: one statement, one
 * commit), then each applied one goes to Redis (its record, or a tombstone, with its invalidation) as in
 * {@link writeDirect}; the L1 entries of every key are dropped whatever happened. Each write gets its own
 * outcome: undefined (stored) or the Error the single-key path would have answered.
 *
 * The origin call is all or nothing (PostgreSQL): when the origin refuses one write of it (a data error),
 * the writes are applied one at a time so that only the refused one fails. A write the origin did not
 * apply (it held the same or a newer version) leaves Redis as in the single-key path: a record at its
 * version or older is replaced by an invalidation tombstone (VersionedRecords.supersede), so that the next
 * read loads the database's row.
 */
import { OriginRejectedError, type OriginWrite } from '../origin/origin.js';
import type { VersionedRecords } from '../redis/versioned-records.js';
import type { DirectPolicyOptions, PolicyWrite } from './write-policy.js';

type Step = (records: VersionedRecords, write: PolicyWrite, version: number, invalidation: string) => Promise<unknown>;

interface Taken {
  readonly i: number;
  readonly w: PolicyWrite;
  readonly version: number;
}

const toOriginWrite = ({ w, version }: Taken): OriginWrite =>
  w.op === 'put'
    ? { op: 'put', key: w.key, version, body: w.value.body, contentType: w.value.contentType }
    : { op: 'delete', key: w.key, version };

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** `writes` must name distinct keys. */
export async function writeDirectMany(
  options: DirectPolicyOptions,
  writes: readonly PolicyWrite[],
  redisStep: Step,
): Promise<(Error | undefined)[]> {
  const { origin, records, versions, publisher } = options;
  const results: (Error | undefined)[] = writes.map(() => undefined);
  const fail = (i: number, err: unknown) => {
    results[i] = asError(err);
  };
  try {
    const taken: Taken[] = [];
    await Promise.all(
      writes.map(async (w, i) => {
        try {
          origin.checkKey(w.key);
          taken.push({ i, w, version: await versions.nextVersion() });
        } catch (err) {
          fail(i, err);
        }
      }),
    );
    if (taken.length === 0) return results;
    taken.sort((a, b) => a.i - b.i);

    let applied: ReadonlySet<string> | undefined;
    try {
      const r = await origin.applyBatch(taken.map(toOriginWrite));
      applied = r.appliedKeys === undefined ? undefined : new Set(r.appliedKeys);
    } catch (err) {
      if (!(err instanceof OriginRejectedError)) {
        for (const t of taken) fail(t.i, err);
        return results;
      }
      const one = new Set<string>();
      await Promise.all(
        taken.map(async (t) => {
          try {
            const outcome =
              t.w.op === 'put'
                ? await origin.put(t.w.key, t.w.value.body, t.w.value.contentType, t.version)
                : await origin.delete(t.w.key, t.version);
            if (outcome === 'applied') one.add(t.w.key);
          } catch (e) {
            fail(t.i, e);
          }
        }),
      );
      applied = one;
    }

    if (records === undefined) return results;
    const stepped = taken.filter((t) => results[t.i] === undefined);
    const settled = await Promise.allSettled(
      stepped.map(async (t) => {
        const invalidation = publisher.keys([t.w.key]);
        if (applied === undefined || applied.has(t.w.key)) await redisStep(records, t.w, t.version, invalidation);
        else await records.supersede(t.w.key, t.version, invalidation);
        options.onPublished?.();
      }),
    );
    settled.forEach((s, j) => {
      if (s.status === 'rejected') fail((stepped[j] as Taken).i, s.reason);
    });
    const waiting = stepped.filter((t) => results[t.i] === undefined);
    if (waiting.length > 0 && options.replicas !== undefined) {
      try {
        await options.replicas.wait();
      } catch (err) {
        for (const t of waiting) fail(t.i, err);
      }
    }
    return results;
  } finally {
    options.invalidateLocal(writes.map((w) => w.key));
  }
}
