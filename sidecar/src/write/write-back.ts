/**
 * Write-back: the write is journaled (with its Redis record and invalidation, one script) before the
 * 204; the flusher writes it to the database later. Past `maxPending` journaled writes a PUT or DELETE is
 * refused with {@link WriteBackBacklogFullError} (503), never dropped. DELETE is journaled the same way
 * (a tombstone in Redis now, a tombstone row in the database when flushed).
 */
import type { Origin } from '../origin/origin.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import { MicroBatcher } from './micro-batcher.js';
import type { WriteBackFlusher } from './write-back-flusher.js';
import type { JournalEntry, Journal, JournalWrite } from './journal-entry.js';
import type { InvalidationSource, ReplicaWait, WritePolicyHandler } from './write-policy.js';

/** Writes per journal script call at most. */
export const APPEND_BATCH_MAX = 128;
/**
 * Bytes of values per journal script call at most (a larger value goes alone): one call blocks Redis
 * while it runs and is held whole in its query buffer, so large values are not piled into one.
 */
export const APPEND_BATCH_MAX_BYTES = 1024 * 1024;

export interface WriteBackPolicyOptions {
  journal: Journal;
  /**
   * Told about each append (starts a flush at `flushBatchSize`); given the entries delivered to it in the
   * append call while it has room for them (it then flushes them without reading them back).
   */
  flusher: Pick<WriteBackFlusher, 'notify' | 'hasRoom' | 'adopt'>;
  /** Only for `checkKey`: a key the origin could never store is refused before it is journaled. */
  origin: Pick<Origin, 'checkKey'>;
  /** Journal entries at most (cluster-wide); further writes are refused. */
  maxPending: number;
  publisher: InvalidationSource;
  invalidateLocal(keys: readonly string[]): void;
  onPublished?: () => void;
  /** Writes per journal call at most. Default {@link APPEND_BATCH_MAX}. */
  appendBatchMax?: number;
  /**
   * `--durability replicated`: after the append, wait until a replica has it (one WAIT per append call)
   * before any of its writes is acknowledged; when none does in time every write of the call is answered
   * 503 ReplicationTimeout. Absent: `primary`.
   */
  replicas?: ReplicaWait;
}

/**
 * The writes that arrive in one turn of the event loop are journaled by one script call (group commit:
 * one round trip and one invalidation message for all of them, see micro-batcher.ts); each request still
 * gets its own answer — 204 once its write is in Redis, 503 when it was refused. The same call delivers
 * the entries to this sidecar's consumer while its flusher has room for them, so that the flusher writes
 * them from memory instead of reading them back from the stream.
 */
export class WriteBackPolicy implements WritePolicyHandler {
  readonly name = 'write-back';
  private readonly batcher: MicroBatcher<JournalWrite, unknown>;

  constructor(private readonly options: WriteBackPolicyOptions) {
    this.batcher = new MicroBatcher<JournalWrite, unknown>({
      maxBatch: options.appendBatchMax ?? APPEND_BATCH_MAX,
      maxWeight: APPEND_BATCH_MAX_BYTES,
      weight: (w) => (w.op === 'put' ? w.body.length : 0) + w.key.length,
      run: async (writes) => {
        const o = this.options;
        const { results, others } = await o.journal.appendMany(
          writes,
          o.maxPending,
          o.publisher, // one message per bucket on Redis Cluster (bucketed-journal.ts)
          o.flusher.hasRoom(),
        );
        o.onPublished?.();
        const delivered: JournalEntry[] = [];
        for (const r of results) if (!(r instanceof Error) && r.entry !== undefined) delivered.push(r.entry);
        if (delivered.length > 0 || others.length > 0) o.flusher.adopt(delivered, others);
        // The entries are journaled whatever the wait says (the flusher writes them); only the 204 waits.
        if (o.replicas !== undefined && results.some((r) => !(r instanceof Error))) {
          await o.replicas.wait(writes.filter((_, i) => !(results[i] instanceof Error)).map((w) => w.key));
        }
        return results;
      },
    });
  }

  async put(key: string, value: CacheValue, ttlSeconds: number): Promise<void> {
    await this.append({ key, op: 'put', body: value.body, contentType: value.contentType, ttlSeconds });
  }

  async delete(key: string): Promise<void> {
    await this.append({ key, op: 'delete' });
  }

  private async append(write: JournalWrite): Promise<void> {
    const o = this.options;
    o.origin.checkKey(write.key);
    try {
      await this.batcher.submit(write);
      o.flusher.notify();
    } finally {
      o.invalidateLocal([write.key]);
    }
  }
}
