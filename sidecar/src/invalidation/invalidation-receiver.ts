/**
 * Applies invalidation messages from the channel to the local tiers and decides when L1 can no longer be
 * trusted. Pure: the subscriber adapter feeds it raw messages and subscription events.
 *
 * - keys → those keys leave L1 (and in-flight L2 reads for them will not fill L1);
 * - all → L1 is dropped;
 * - a gap or step back in a sender's sequence → L1 is dropped (messages were lost); on Redis Cluster
 *   per (sender, bucket) (sequence-tracker.ts), since different buckets' messages may overtake each other;
 * - a malformed message → counted, and L1 dropped (it may have been an invalidation);
 * - our own messages are not applied again (the write already invalidated locally) but their sequence is
 *   tracked: a gap in our own sequence also means our subscription missed something;
 * - subscription lost → the tracker forgets every sender and the tiers are told (they drop or keep L1
 *   according to `--on-disconnect`); subscribed again → the tiers are told (they drop what they kept).
 */
import { MalformedMessageError, parseInvalidation } from '../../../common/src/invalidation-message.js';
import { NO_BUCKET, SequenceTracker } from './sequence-tracker.js';

export type DropReason = 'subscription-lost' | 'resubscribed' | 'sequence-gap' | 'malformed-message' | 'invalidate-all';

/** What the receiver drives: implemented by the tiered cache. */
export interface LocalInvalidation {
  invalidateKeys(keys: readonly string[]): void;
  dropAll(reason: DropReason): void;
  subscriptionLost(): void;
  subscribed(): void;
}

export interface ReceiverEvents {
  /** A valid message from another sender was applied. */
  received(kind: 'keys' | 'all'): void;
  gap(sender: string, missed: number): void;
  malformed(error: MalformedMessageError): void;
}

export class InvalidationReceiver {
  private readonly tracker: SequenceTracker;
  /** How encodeInvalidation() begins this sidecar's own messages. */
  private readonly selfPrefix: string;

  constructor(
    private readonly selfId: string,
    private readonly target: LocalInvalidation,
    private readonly events: ReceiverEvents,
    maxSenders = 10_000,
  ) {
    this.tracker = new SequenceTracker(maxSenders);
    this.selfPrefix = `{"v":1,"sender":${JSON.stringify(selfId)},"seq":`;
  }

  handle(raw: string): void {
    // This sidecar's own messages (one per write it published) only advance its sequence: read the
    // number without parsing the keys. Anything unexpected takes the full parse below.
    if (raw.startsWith(this.selfPrefix)) {
      const end = raw.indexOf(',', this.selfPrefix.length);
      const seq = end < 0 ? NaN : Number(raw.slice(this.selfPrefix.length, end));
      // Redis Cluster: `"b":<bucket>,` follows the sequence number when the message has a bucket.
      let bucket = NO_BUCKET;
      if (end >= 0 && raw.startsWith('"b":', end + 1)) {
        const bEnd = raw.indexOf(',', end + 5);
        bucket = bEnd < 0 ? NaN : Number(raw.slice(end + 5, bEnd));
      }
      if (Number.isSafeInteger(seq) && seq >= 1 && Number.isSafeInteger(bucket)) {
        const seen = this.tracker.observe(this.selfId, seq, bucket);
        if (seen.verdict === 'gap' || seen.verdict === 'regression') {
          this.events.gap(this.selfId, seen.missed);
          this.target.dropAll('sequence-gap');
        }
        return;
      }
    }
    let message;
    try {
      message = parseInvalidation(raw);
    } catch (err) {
      const error = err instanceof MalformedMessageError ? err : new MalformedMessageError(String(err));
      this.events.malformed(error);
      this.target.dropAll('malformed-message');
      return;
    }
    const seen = this.tracker.observe(message.sender, message.seq, message.b ?? NO_BUCKET);
    const lost = seen.verdict === 'gap' || seen.verdict === 'regression';
    if (lost) {
      this.events.gap(message.sender, seen.missed);
      this.target.dropAll('sequence-gap');
    }
    if (message.sender === this.selfId) return;
    if ('all' in message) {
      this.events.received('all');
      if (!lost) this.target.dropAll('invalidate-all');
    } else {
      this.events.received('keys');
      if (!lost) this.target.invalidateKeys(message.keys);
    }
  }

  subscribed(): void {
    this.target.subscribed();
  }

  subscriptionLost(): void {
    this.tracker.reset();
    this.target.subscriptionLost();
  }
}
