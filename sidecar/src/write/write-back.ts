/**
 * Write-back: the write is journaled (with its Redis record and invalidation, one script) before the
 * 204; the flusher writes it to the database later. Past `maxPending` journaled writes a PUT or DELETE is
 * refused with {@link WriteBackBacklogFullError} (503), never dropped. DELETE is journaled the same way
 * (a tombstone in Redis now, a tombstone row in the database when flushed).
 */
import type { Origin } from '../origin/origin.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import type { WriteBackFlusher } from './write-back-flusher.js';
import type { WriteBackJournal } from './write-back-journal.js';
import type { InvalidationSource, WritePolicyHandler } from './write-policy.js';

export interface WriteBackPolicyOptions {
  journal: WriteBackJournal;
  /** Told about each append (starts a flush at `flushBatchSize`). */
  flusher: Pick<WriteBackFlusher, 'notify'>;
  /** Only for `checkKey`: a key the origin could never store is refused before it is journaled. */
  origin: Pick<Origin, 'checkKey'>;
  /** Journal entries at most (cluster-wide); further writes are refused. */
  maxPending: number;
  publisher: InvalidationSource;
  invalidateLocal(keys: readonly string[]): void;
  onPublished?: () => void;
}

export class WriteBackPolicy implements WritePolicyHandler {
  readonly name = 'write-back';

  constructor(private readonly options: WriteBackPolicyOptions) {}

  async put(key: string, value: CacheValue, ttlSeconds: number): Promise<void> {
    await this.append({ key, op: 'put', body: value.body, contentType: value.contentType, ttlSeconds });
  }

  async delete(key: string): Promise<void> {
    await this.append({ key, op: 'delete' });
  }

  private async append(write: Parameters<WriteBackJournal['append']>[0]): Promise<void> {
    const o = this.options;
    o.origin.checkKey(write.key);
    try {
      await o.journal.append(write, o.maxPending, o.publisher.keys([write.key]));
      o.onPublished?.();
      o.flusher.notify();
    } finally {
      o.invalidateLocal([write.key]);
    }
  }
}
