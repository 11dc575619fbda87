/**
 * Per-sender sequence tracking, to notice lost invalidation messages. Pure.
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

export class SequenceTracker {
  private readonly last = new Map<string, number>();

  /** @param maxSenders senders remembered at most; the least recently heard is forgotten first. */
  constructor(private readonly maxSenders = 10_000) {}

  get senders(): number {
    return this.last.size;
  }

  observe(sender: string, seq: number): SequenceObservation {
    const last = this.last.get(sender);
    // Re-insert so that Map order is least recently heard first.
    if (last !== undefined) this.last.delete(sender);
    else if (this.last.size >= this.maxSenders) {
      const oldest = this.last.keys().next();
      if (!oldest.done) this.last.delete(oldest.value);
    }
    this.last.set(sender, seq);
    if (last === undefined) return { verdict: 'first', missed: 0 };
    if (seq === last + 1) return { verdict: 'next', missed: 0 };
    if (seq === 1) return { verdict: 'restart', missed: 0 };
    if (seq > last + 1) return { verdict: 'gap', missed: seq - last - 1 };
    return { verdict: 'regression', missed: 0 };
  }

  /** Forgets every sender (after the subscription was lost, L1 having been dropped). */
  reset(): void {
    this.last.clear();
  }
}
