/**
 * Per-sender sequence tracking, to notice lost invalidation messages. Pure.
 *
 * On Redis Cluster a sender numbers the messages of each bucket separately (field `b`,
 * common/src/invalidation-message.ts) and they are tracked per (sender, bucket): the rules below apply to
 * each such sequence.
 *
 * - The first message from an unknown sender is not a gap (a sender that started, or that we never
 *   heard from since our subscription began).
 * - `seq` 1 from a known sender is a restart (the scheduled flush job publishes seq 1 every run).
 * - `last + 1` is the expected next message.
 * - A jump forward is a gap: messages were lost.
 * - A step back (other than to 1) cannot happen on one ordered channel; it is treated like a gap.
 */

export type SequenceVerdict = 'first' | 'next' | 'restart' | 'gap' | 'regression';

export interface SequenceObservation {
  verdict: SequenceVerdict;
  /** Messages lost, for a gap. */
  missed: number;
}

/** The stream of a sender's messages that carry no bucket. */
export const NO_BUCKET = -1;

export class SequenceTracker {
  /** Per sender (least recently heard first), the last number per stream (bucket, or NO_BUCKET). */
  private readonly last = new Map<string, Map<number, number>>();

  /** @param maxSenders senders remembered at most; the least recently heard is forgotten first. */
  constructor(private readonly maxSenders = 10_000) {}

  get senders(): number {
    return this.last.size;
  }

  /**
   * `bucket`: the message's `b` (Redis Cluster), or {@link NO_BUCKET}. Each (sender, bucket) is a sequence
   * of its own: one bucket's messages come from one primary, in order; different buckets' do not.
   */
  observe(sender: string, seq: number, bucket = NO_BUCKET): SequenceObservation {
    let streams = this.last.get(sender);
    // Re-insert so that Map order is least recently heard first.
    if (streams !== undefined) this.last.delete(sender);
    else {
      if (this.last.size >= this.maxSenders) {
        const oldest = this.last.keys().next();
        if (!oldest.done) this.last.delete(oldest.value);
      }
      streams = new Map();
    }
    this.last.set(sender, streams);
    const last = streams.get(bucket);
    streams.set(bucket, seq);
    return verdict(last, seq);
  }

  /** Forgets every sender (after the subscription was lost, L1 having been dropped). */
  reset(): void {
    this.last.clear();
  }
}

/** The verdict on `seq` after `last` (undefined: nothing heard yet) in one sequence. Pure. */
export function verdict(last: number | undefined, seq: number): SequenceObservation {
  if (last === undefined) return { verdict: 'first', missed: 0 };
  if (seq === last + 1) return { verdict: 'next', missed: 0 };
  if (seq === 1) return { verdict: 'restart', missed: 0 };
  if (seq > last + 1) return { verdict: 'gap', missed: seq - last - 1 };
  return { verdict: 'regression', missed: 0 };
}
