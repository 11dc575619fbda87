/**
 * Builds this sidecar's invalidation messages: its sender id and the next sequence number (on Redis
 * Cluster, of the keys' bucket when they share one). Pure; the message is sent by the L2 adapter (in the
 * same MULTI or script as the write it announces, on the primary of the keys' slot).
 *
 * A number is used even when sending fails: receivers then see a gap at our next message and drop L1,
 * which is what must happen if a write may have reached Redis without its invalidation.
 */
import { encodeInvalidation } from '../../../common/src/invalidation-message.js';

export class InvalidationPublisher {
  private seq = 0;
  /** Redis Cluster: the last number handed out per bucket. */
  private readonly bucketSeq = new Map<number, number>();

  /**
   * @param bucketOf Redis Cluster: the key's bucket (key-layout.ts). A message whose keys are all in one
   *   bucket is then numbered in that bucket's sequence and carries `b` (it is published by the primary of
   *   the bucket's slot, so receivers get one bucket's messages in order); the others use the sender's
   *   own sequence. Absent: one sequence for every message (one Redis, one ordered channel).
   */
  constructor(
    readonly senderId: string,
    private readonly bucketOf?: (key: string) => number,
  ) {}

  /** The last sequence number handed out outside buckets (0 before the first message). */
  get lastSeq(): number {
    return this.seq;
  }

  /** The bucket a message for these keys is numbered in (undefined: the sender's own sequence). */
  bucketOfKeys(keys: readonly string[]): number | undefined {
    const bucketOf = this.bucketOf;
    if (bucketOf === undefined || keys.length === 0) return undefined;
    const b = bucketOf(keys[0] as string);
    for (let i = 1; i < keys.length; i++) if (bucketOf(keys[i] as string) !== b) return undefined;
    return b;
  }

  keys(keys: readonly string[]): string {
    const b = this.bucketOfKeys(keys);
    if (b === undefined) return encodeInvalidation({ v: 1, sender: this.senderId, seq: ++this.seq, keys: [...keys] });
    const seq = (this.bucketSeq.get(b) ?? 0) + 1;
    this.bucketSeq.set(b, seq);
    return encodeInvalidation({ v: 1, sender: this.senderId, seq, b, keys: [...keys] });
  }

  all(): string {
    return encodeInvalidation({ v: 1, sender: this.senderId, seq: ++this.seq, all: true });
  }
}
