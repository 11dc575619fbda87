/**
 * Builds this sidecar's invalidation messages: its sender id and the next sequence number. Pure; the
 * message is sent by the L2 adapter (in the same MULTI as the write it announces).
 *
 * A number is used even when sending fails: receivers then see a gap at our next message and drop L1,
 * which is what must happen if a write may have reached Redis without its invalidation.
 */
import { encodeInvalidation } from '../../../common/src/invalidation-message.js';

export class InvalidationPublisher {
  private seq = 0;

  constructor(readonly senderId: string) {}

  /** The last sequence number handed out (0 before the first message). */
  get lastSeq(): number {
    return this.seq;
  }

  keys(keys: readonly string[]): string {
    return encodeInvalidation({ v: 1, sender: this.senderId, seq: ++this.seq, keys: [...keys] });
  }

  all(): string {
    return encodeInvalidation({ v: 1, sender: this.senderId, seq: ++this.seq, all: true });
  }
}
