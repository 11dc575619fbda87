/**
 * What the cross-cluster bridge does with each message of its local invalidation channel, and the keys it
 * has yet to send to one peer. Pure: no I/O, no clock (times are passed in).
 *
 * - A message without `origin` is a local write (a sidecar's, or the flush job's invalidate-all): it is
 *   relayed to every peer. A message with an `origin` was relayed here by another cluster's bridge: it is
 *   never relayed again. Every cluster lists as peers every cluster caching the same rows, and each write
 *   crosses exactly one hop: in a ring of three (each the peer of the two others), each write reaches each
 *   other cluster exactly once, and nothing comes back.
 * - The sequence numbers of local senders are tracked (relayed senders are not: a gap there is the other
 *   bridge's business). A gap or step back means local messages were lost: every peer must be repaired.
 */
import {
  encodeInvalidation,
  parseInvalidation,
  type InvalidationMessage,
} from '../../../common/src/invalidation-message.js';
import { NO_BUCKET, SequenceTracker } from '../invalidation/sequence-tracker.js';

export type LocalMessageVerdict =
  | { kind: 'keys'; keys: string[]; gap: boolean }
  | { kind: 'all'; gap: boolean }
  | { kind: 'relayed'; origin: string }
  | { kind: 'malformed'; reason: string };

/** Classifies raw messages of the local channel, tracking local senders' sequences. */
export class LocalMessageClassifier {
  private readonly tracker = new SequenceTracker();

  classify(raw: string): LocalMessageVerdict {
    let m: InvalidationMessage;
    try {
      m = parseInvalidation(raw);
    } catch (err) {
      return { kind: 'malformed', reason: err instanceof Error ? err.message : String(err) };
    }
    if (m.origin !== undefined) return { kind: 'relayed', origin: m.origin };
    const { verdict } = this.tracker.observe(m.sender, m.seq, m.b ?? NO_BUCKET);
    const gap = verdict === 'gap' || verdict === 'regression';
    return 'all' in m ? { kind: 'all', gap } : { kind: 'keys', keys: m.keys, gap };
  }

  /** After the subscription was lost: every sender starts afresh. */
  reset(): void {
    this.tracker.reset();
  }
}

/** Builds the messages one bridge publishes on one peer's channel: its sender id, its own sequence. */
export class RelayedMessages {
  private seq = 0;

  constructor(
    readonly sender: string,
    readonly origin: string,
  ) {}

  keys(keys: readonly string[]): string {
    return encodeInvalidation({ v: 1, sender: this.sender, seq: ++this.seq, keys: [...keys], origin: this.origin });
  }

  all(): string {
    return encodeInvalidation({ v: 1, sender: this.sender, seq: ++this.seq, all: true, origin: this.origin });
  }
}

export interface PendingBatch {
  keys: string[];
  /** Version per key (same order): the invalidating write's version, 0 when the local cluster has none. */
  versions: number[];
  /** When the oldest of these keys was received (the caller's clock, ms). */
  oldestReceivedMs: number;
}

/**
 * The keys waiting for one peer, each with the highest version seen for it, in arrival order. Keys that
 * arrive while a batch is in the air wait for the next one, so under load one call carries many keys and
 * under light load a batch is one message's keys. Bounded: past `maxKeys` the queue is given up
 * (`overflowed`), and the caller repairs the peer as after a gap.
 */
export class PendingKeys {
  private readonly versions = new Map<string, number>();
  private readonly received = new Map<string, number>();
  private overflow = false;

  constructor(private readonly maxKeys: number) {}

  get size(): number {
    return this.versions.size;
  }

  /** True once more than `maxKeys` keys waited at one time (until `clear`). */
  get overflowed(): boolean {
    return this.overflow;
  }

  add(key: string, version: number, receivedMs: number): void {
    if (this.overflow) return;
    const had = this.versions.get(key);
    if (had === undefined) {
      if (this.versions.size >= this.maxKeys) {
        this.overflow = true;
        this.versions.clear();
        this.received.clear();
        return;
      }
      this.received.set(key, receivedMs);
    }
    this.versions.set(key, Math.max(had ?? 0, version));
  }

  /** Removes and returns up to `max` keys, oldest first; undefined when none wait. */
  take(max: number): PendingBatch | undefined {
    if (this.versions.size === 0) return undefined;
    const keys: string[] = [];
    const versions: number[] = [];
    let oldest = Infinity;
    for (const [key, version] of this.versions) {
      if (keys.length >= max) break;
      keys.push(key);
      versions.push(version);
      oldest = Math.min(oldest, this.received.get(key) ?? Infinity);
    }
    for (const key of keys) {
      this.versions.delete(key);
      this.received.delete(key);
    }
    return { keys, versions, oldestReceivedMs: oldest };
  }

  /** Forgets every key (a repair covers them) and the overflow. */
  clear(): void {
    this.versions.clear();
    this.received.clear();
    this.overflow = false;
  }
}

/** Why a peer is repaired: everything it may have missed is dropped (see peer-link.ts). */
export type RepairReason =
  | 'start'
  | 'peer-reconnected'
  | 'relay-failed'
  | 'sequence-gap'
  | 'resubscribed'
  | 'overflow'
  | 'invalidate-all'
  | 'malformed-message'
  | 'local-unavailable';
