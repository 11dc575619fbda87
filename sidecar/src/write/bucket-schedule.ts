/**
 * Which bucket streams of the bucketed write-back journal (redis/bucketed-journal.ts, Redis Cluster) the
 * flusher touches in a cycle. Pure: the adapter passes the time in and runs the Redis commands.
 *
 * Before issue 15's idle fix every cycle read all 256 bucket streams (XREADGROUP) and took their stats
 * (MULTI, XLEN, XRANGE, TIME, EXEC) at most once a second: ~1,500 Redis commands/s for one idle sidecar.
 * Now a bucket is only read when something says it holds entries nobody was given:
 *
 *   - **this sidecar's appends**: an append whose entries were not delivered to this sidecar's consumer
 *     (its flusher had no room for them) marks the bucket wanted, read in the next cycle. Delivered entries
 *     are held in memory by the flusher and need no read;
 *   - **a probe**: one read-only script per bucket (its length, first entry, the group's pending count and
 *     whether anything was left undelivered) — the sweep. Every bucket is probed at most `sweepMs` after
 *     its last probe (default {@link DEFAULT_SWEEP_MS}, never more than a third of the claim timeout), so
 *     entries another sidecar appended without delivery (it died, or had no room) are found within one
 *     sweep, and entries another sidecar left pending are seen long before they are claimable;
 *   - **a read that came back full**: the bucket is hot and read again until a read comes back short.
 *
 * Claims (XAUTOCLAIM) only scan buckets whose last probe saw pending entries (or that were never probed).
 * The backlog stats are the sum of the buckets' last probes; buckets this sidecar appended to or
 * acknowledged in are probed again at the next stats, the others are at most one sweep old.
 */
import { planRead } from './bucket-batching.js';

/** Default longest time between two probes of a bucket, ms. */
export const DEFAULT_SWEEP_MS = 5000;

/** The sweep period for a claim timeout: `wantedMs`, at most a third of the claim timeout, at least 1 ms. */
export function sweepInterval(claimIdleMs: number, wantedMs = DEFAULT_SWEEP_MS): number {
  return Math.max(1, Math.min(wantedMs, Math.floor(claimIdleMs / 3)));
}

/** What one probe of a bucket stream found. */
export interface BucketProbe {
  /** Entries in the stream (XLEN): the bucket's backlog. */
  length: number;
  /** The `<ms>` part of the first entry's id; undefined when the stream is empty. */
  oldestMs: number | undefined;
  /** Entries delivered to some consumer and not acknowledged yet (the group's pending count). */
  pending: number;
  /** True when the stream holds entries the group never delivered (or it has no group yet). */
  undelivered: boolean;
}

/** A plan for one read of new entries: the buckets, the count asked of each, and its mark generation. */
export interface ReadPlan {
  buckets: number[];
  perBucket: number;
  generation: number;
}

export class BucketSchedule {
  private readonly probes: (BucketProbe | undefined)[];
  private readonly probedAt: number[];
  /** Buckets whose backlog changed through this sidecar since their last probe (appends, acks). */
  private readonly changed = new Set<number>();
  /** Buckets to read new entries from, with the generation of the latest mark. */
  private readonly wanted = new Map<number, number>();
  /** Buckets whose last read of new entries came back full. */
  private readonly hot = new Set<number>();
  private generation = 0;

  constructor(
    readonly bucketCount: number,
    readonly sweepMs: number,
  ) {
    this.probes = new Array<BucketProbe | undefined>(bucketCount).fill(undefined);
    this.probedAt = new Array<number>(bucketCount).fill(-Infinity);
  }

  /** Forgets every probe (start, reconnection): every bucket is probed again before it is trusted. */
  forget(): void {
    this.probes.fill(undefined);
    this.probedAt.fill(-Infinity);
  }

  /**
   * This sidecar appended to bucket `b`; `undelivered` when some of the entries were not delivered to its
   * consumer (or the outcome is unknown), so that they must be read from the stream.
   */
  appended(b: number, undelivered: boolean): void {
    this.changed.add(b);
    if (undelivered) this.want(b);
  }

  /** Bucket `b`'s backlog changed through this sidecar (acknowledged or dead-lettered entries). */
  touched(b: number): void {
    this.changed.add(b);
  }

  /** Bucket `b` may hold entries nobody was given: read it in the next read of new entries. */
  want(b: number): void {
    this.wanted.set(b, ++this.generation);
  }

  /**
   * The buckets to probe at `now`: those never probed (or forgotten), those probed `sweepMs` ago or
   * longer, and — with `withChanged` (the stats are due) — those this sidecar changed since their probe.
   */
  dueProbes(now: number, withChanged: boolean): number[] {
    const due: number[] = [];
    for (let b = 0; b < this.bucketCount; b++) {
      if (now - (this.probedAt[b] as number) >= this.sweepMs || (withChanged && this.changed.has(b))) due.push(b);
    }
    return due;
  }

  /**
   * True when bucket `b` was empty at its last probe and this sidecar has not changed it since: its probe
   * can start with a plain length check (the idle case).
   */
  likelyEmpty(b: number): boolean {
    return this.probes[b]?.length === 0 && !this.changed.has(b);
  }

  /** A probe of bucket `b`, sent at `now`, answered. */
  probed(b: number, probe: BucketProbe, now: number): void {
    this.probes[b] = probe;
    this.probedAt[b] = now;
    this.changed.delete(b);
    if (probe.undelivered && probe.length > 0) this.want(b);
  }

  /**
   * The next read of new entries: the hot and wanted buckets share `count` (at least 1 each); no bucket
   * when none is (then nothing is read).
   */
  planRead(count: number): ReadPlan {
    return { ...planRead(count, [...this.hot, ...this.wanted.keys()]), generation: this.generation };
  }

  /**
   * The read of bucket `b` planned at `generation` answered `got` of the `asked` entries. A full answer
   * keeps the bucket hot (it holds more); a short one ends it, and clears a want marked before the plan
   * (one marked after it may name entries the read missed, so it stays).
   */
  readDone(b: number, generation: number, got: number, asked: number): void {
    if (got >= asked) {
      this.hot.add(b);
      return;
    }
    this.hot.delete(b);
    if ((this.wanted.get(b) ?? Infinity) <= generation) this.wanted.delete(b);
  }

  /** The buckets a claim scan looks at: those whose last probe saw pending entries, or never probed. */
  claimCandidates(): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.bucketCount; b++) {
      const p = this.probes[b];
      if (p === undefined || p.pending > 0) out.push(b);
    }
    return out;
  }

  /** The backlog by the buckets' last probes (buckets never probed count as empty). */
  totals(): { pending: number; oldestMs: number | undefined } {
    let pending = 0;
    let oldestMs: number | undefined;
    for (const p of this.probes) {
      if (p === undefined) continue;
      pending += p.length;
      if (p.oldestMs !== undefined && (oldestMs === undefined || p.oldestMs < oldestMs)) oldestMs = p.oldestMs;
    }
    return { pending, oldestMs };
  }
}
