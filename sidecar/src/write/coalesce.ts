/**
 * Coalescing of write-back entries: per key, only the last write (in journal order, which is version
 * order) goes to the database. Pure.
 */
import type { OriginWrite } from '../origin/origin.js';
import type { JournalEntry } from './journal-entry.js';
import { backoffDelay, type Backoff } from '../../../common/src/backoff.js';

/** A write for the database plus what the flusher needs afterwards. */
export type CoalescedWrite = OriginWrite & {
  /** TTL the Redis record gets once this write is in the database (ms; 0: none). */
  readonly ttlMs: number;
  /** Ids of every journal entry this write stands for. */
  readonly ids: readonly string[];
};

export interface Coalesced {
  /** One write per key, in the order the keys first appeared. */
  readonly writes: CoalescedWrite[];
  /** Entries that were folded into a later write to the same key (entries − writes). */
  readonly coalesced: number;
}

export function coalesce(entries: readonly JournalEntry[]): Coalesced {
  const latest = new Map<string, { entry: JournalEntry; ids: string[] }>();
  for (const e of entries) {
    const seen = latest.get(e.key);
    if (seen === undefined) latest.set(e.key, { entry: e, ids: [e.id] });
    else {
      seen.ids.push(e.id);
      // Version order is journal order; a claimed older entry can arrive after a newer one.
      if (e.version > seen.entry.version) seen.entry = e;
    }
  }
  const writes: CoalescedWrite[] = [];
  for (const { entry: e, ids } of latest.values()) {
    writes.push(
      e.op === 'put'
        ? {
            op: 'put',
            key: e.key,
            version: e.version,
            body: e.body ?? Buffer.alloc(0),
            contentType: e.contentType ?? 'application/octet-stream',
            ttlMs: e.ttlMs,
            ids,
          }
        : { op: 'delete', key: e.key, version: e.version, ttlMs: e.ttlMs, ids },
    );
  }
  return { writes, coalesced: entries.length - writes.length };
}

/**
 * Back-off of a batch the origin could not take: 100 ms doubling to 5 s, plus up to 100 ms of jitter so
 * that the flushers of many sidecars do not retry in step.
 */
export const FLUSH_RETRY_BACKOFF: Backoff = { baseMs: 100, capMs: 5000, jitterMs: 100 };

/** Delay before the n-th retry (n ≥ 1) of a batch the origin could not take: {@link FLUSH_RETRY_BACKOFF}. */
export function flushRetryDelay(attempt: number, jitter = Math.random()): number {
  return backoffDelay(FLUSH_RETRY_BACKOFF, attempt - 1, jitter);
}
