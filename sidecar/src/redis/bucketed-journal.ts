/**
 * The write-back journal on Redis Cluster: one stream per bucket of the key layout (key-layout.ts), each
 * in the hash slot of its bucket's records and version counter, so that each append script touches one
 * slot and a slot move carries a bucket's journal with its records. Every sidecar's flusher reads every
 * bucket stream (the consumer group `flushers` exists on each), so entries of any bucket are drained by
 * any live sidecar, and entries left pending by a dead one are claimed (XAUTOCLAIM) as with one stream.
 *
 * It implements the same {@link Journal} as the single stream, so the flusher and the write-back policy
 * are the same code: entry ids are `<bucket>/<stream id>` (bucket-batching.ts) and every call is split by
 * bucket and sent to the bucket streams at once (one command per bucket, all in the air together; the
 * Cluster client sends each to its slot's primary).
 *
 * Reads of new entries and claims ask every bucket for an equal share of a batch, then only the buckets
 * that came back full until they run dry (bucket-batching.ts planRead); what one read returns beyond the
 * batch is kept and handed out first next time (it is pending in this consumer already).
 *
 * Appends: the writes of one call are split by bucket, one script per bucket. Given a source of messages
 * (the sidecar's publisher, as the write-back policy does), each bucket's script publishes a message of
 * its own naming its keys, numbered in that bucket's sequence (invalidation-publisher.ts): one bucket's
 * messages all come from the primary of its slot, in order, so receivers track gaps per (sender, bucket)
 * and messages of different shards overtaking each other are not mistaken for losses (issue 15). If a
 * bucket's script fails after its number was taken, that bucket's sequence has a gap and every receiver
 * drops its L1 at this sidecar's next message of the bucket. (Given one ready-made message instead, it
 * is published by the script when the writes share a bucket, else by one PUBLISH once they all answered.)
 *
 * The backlog bound `maxPending` is shared equally by the buckets (bucketMaxPending): a bucket refuses
 * writes once it holds its share.
 *
 * Idle cost: each flusher cycle reads every bucket once (XREADGROUP), and the stats (MULTI XLEN, XRANGE
 * COUNT 1, TIME, EXEC per bucket) are taken at most once a second — bench/cluster.bench.ts measured about
 * 1,500 commands/s for one idle sidecar on 3 primaries, mostly the stats.
 */
import type { SidecarError } from '../errors.js';
import {
  bucketEntryId,
  bucketMaxPending,
  groupByBucket,
  groupIds,
  parseBucketEntryId,
  planRead,
} from '../write/bucket-batching.js';
import type { InvalidationMessages } from '../write/journal-entry.js';
import type { KeyLayout } from '../write/key-layout.js';
import { WriteBackJournal } from './write-back-journal.js';
import {
  WriteBackBacklogFullError,
  type AppendedWrite,
  type AppendOutcome,
  type Journal,
  type JournalEntry,
  type JournalRead,
  type JournalStats,
  type JournalWrite,
} from '../write/journal-entry.js';
import { callRedis, type RedisClient } from './redis-client.js';

export interface BucketedJournalOptions {
  client: RedisClient;
  layout: KeyLayout;
  consumer: string;
  channel: string;
  tombstoneTtlMs?: number;
  onError?: (err: unknown) => void;
  /** Longest reuse of the backlog stats, ms (they cost one call per bucket). Default 1000. */
  statsMaxAgeMs?: number;
  clock?: () => number;
}

const prefixEntry = (bucket: number, e: JournalEntry): JournalEntry => ({ ...e, id: bucketEntryId(bucket, e.id) });
const prefixRead = (bucket: number, r: JournalRead): JournalRead => ({
  entries: r.entries.map((e) => prefixEntry(bucket, e)),
  unreadable: r.unreadable.map((id) => bucketEntryId(bucket, id)),
});
const stripEntry = (e: JournalEntry): JournalEntry => ({ ...e, id: parseBucketEntryId(e.id)?.streamId ?? e.id });

export class BucketedJournal implements Journal {
  readonly streamKey: string;
  readonly deadLetterKey: string;
  private readonly client: RedisClient;
  private readonly layout: KeyLayout;
  private readonly journals: WriteBackJournal[];
  private readonly channel: string;
  private readonly onError: (err: unknown) => void;
  private readonly statsMaxAgeMs: number;
  private readonly clock: () => number;
  private epoch_ = 0;
  /** Buckets whose last read of new entries came back full. */
  private hotNew = new Set<number>();
  /** Buckets in the middle of a claim scan (their XAUTOCLAIM cursor is not back at the start). */
  private scanning = new Set<number>();
  /** Entries read (delivered to this consumer) beyond what the caller asked for. */
  private extraNew: JournalEntry[] = [];
  private extraNewUnreadable: string[] = [];
  private extraClaimed: JournalEntry[] = [];
  private lastStats: { stats: JournalStats; at: number } | undefined;

  constructor(options: BucketedJournalOptions) {
    this.client = options.client;
    this.layout = options.layout;
    this.channel = options.channel;
    this.onError = options.onError ?? (() => {});
    this.statsMaxAgeMs = options.statsMaxAgeMs ?? 1000;
    this.clock = options.clock ?? Date.now;
    this.journals = options.layout.buckets.map(
      (b) =>
        new WriteBackJournal({
          client: options.client,
          consumer: options.consumer,
          channel: options.channel,
          streamKey: b.streamKey,
          versionKey: b.versionKey,
          layout: options.layout,
          ...(options.tombstoneTtlMs !== undefined ? { tombstoneTtlMs: options.tombstoneTtlMs } : {}),
          onError: this.onError,
          trackConnection: false,
        }),
    );
    const first = options.layout.buckets[0];
    this.streamKey = first ? first.streamKey.replace(first.tag, '{*}') : '';
    this.deadLetterKey = `${this.streamKey}:dead`;
    this.client.on('ready', () => this.epoch_++);
  }

  get connectionEpoch(): number {
    return this.epoch_;
  }

  get claimScanComplete(): boolean {
    return this.scanning.size === 0 && this.extraClaimed.length === 0;
  }

  /** The bucket streams' count. */
  get bucketCount(): number {
    return this.journals.length;
  }

  async appendMany(
    writes: readonly JournalWrite[],
    maxPending: number,
    invalidation: string | InvalidationMessages = '',
    deliver = false,
  ): Promise<AppendOutcome> {
    const groups = groupByBucket(writes, (w) => this.layout.bucketOf(w.key).index);
    // A source of messages: each bucket's script publishes its own (numbered in the bucket's sequence).
    const source = typeof invalidation === 'string' ? undefined : invalidation;
    const perBucket = bucketMaxPending(maxPending, this.journals.length);
    const single = groups.size === 1;
    const results = new Array<AppendedWrite | WriteBackBacklogFullError | SidecarError>(writes.length);
    const others: string[] = [];
    const settled = await Promise.allSettled(
      [...groups].map(async ([b, g]) => {
        const message = source !== undefined ? source.keys(g.items.map((w) => w.key)) : single ? invalidation : '';
        const out = await this.bucket(b).appendMany(g.items, perBucket, message, deliver);
        out.results.forEach((r, i) => {
          const pos = g.positions[i] as number;
          if (r instanceof WriteBackBacklogFullError) {
            results[pos] = new WriteBackBacklogFullError(
              `${r.message.replace(/ \(maxPending \d+\)$/, '')} (its bucket's share of maxPending ${maxPending}: ${perBucket})`,
            );
          } else if (r instanceof Error) {
            results[pos] = r;
          } else {
            results[pos] = {
              id: bucketEntryId(b, r.id),
              version: r.version,
              ...(r.entry ? { entry: prefixEntry(b, r.entry) } : {}),
            };
          }
        });
        others.push(...out.others.map((id) => bucketEntryId(b, id)));
      }),
    );
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (
      !single &&
      typeof invalidation === 'string' &&
      invalidation !== '' &&
      settled.some((s) => s.status === 'fulfilled')
    ) {
      await callRedis('publish invalidation', () => this.client.publish(this.channel, invalidation), this.onError);
    }
    if (failed) {
      if (settled.every((s) => s.status === 'rejected')) throw failed.reason as SidecarError;
      // Some buckets journaled their writes, some did not: answer each write for itself.
      const err = failed.reason as SidecarError;
      for (const [, g] of groups) for (const pos of g.positions) results[pos] ??= err;
    }
    return { results, others };
  }

  async readDelivered(ids: readonly string[]): Promise<JournalRead> {
    const { byBucket, foreign } = groupIds(ids);
    const reads = await Promise.all(
      [...byBucket].map(async ([b, list]) => prefixRead(b, await this.bucket(b).readDelivered(list))),
    );
    return merge(reads, foreign);
  }

  /** Walks this consumer's pending list bucket by bucket; `after` is `<bucket>/<stream id>` (or `0`). */
  async readOwnPending(after: string, count: number): Promise<JournalRead & { last: string; done: boolean }> {
    const start = parseBucketEntryId(after) ?? { bucket: 0, streamId: '0' };
    let { bucket, streamId } = start;
    while (bucket < this.journals.length) {
      const page = await this.bucket(bucket).readOwnPending(streamId, count);
      const read = prefixRead(bucket, page);
      const lastBucket = bucket === this.journals.length - 1;
      if (!page.done) return { ...read, last: bucketEntryId(bucket, page.last), done: false };
      if (read.entries.length > 0 || read.unreadable.length > 0 || lastBucket) {
        return { ...read, last: bucketEntryId(bucket + 1, '0'), done: lastBucket };
      }
      bucket++;
      streamId = '0';
    }
    return { entries: [], unreadable: [], last: after, done: true };
  }

  async readNew(count: number): Promise<JournalRead> {
    if (this.extraNew.length === 0 && this.extraNewUnreadable.length === 0) {
      const plan = planRead(count, this.journals.length, this.hotNew);
      const reads = await Promise.all(
        plan.buckets.map(async (b) => ({ b, read: prefixRead(b, await this.bucket(b).readNew(plan.perBucket)) })),
      );
      this.hotNew = new Set(
        reads.filter((r) => r.read.entries.length + r.read.unreadable.length >= plan.perBucket).map((r) => r.b),
      );
      for (const { read } of reads) {
        this.extraNew.push(...read.entries);
        this.extraNewUnreadable.push(...read.unreadable);
      }
    }
    const unreadable = this.extraNewUnreadable.splice(0, count);
    const entries = this.extraNew.splice(0, count - unreadable.length);
    return { entries, unreadable };
  }

  async claimStale(minIdleMs: number, count: number): Promise<JournalRead> {
    if (this.extraClaimed.length === 0) {
      const plan = planRead(count, this.journals.length, this.scanning);
      const reads = await Promise.all(
        plan.buckets.map(async (b) => {
          const j = this.bucket(b);
          const read = prefixRead(b, await j.claimStale(minIdleMs, plan.perBucket));
          return { b, read, complete: j.claimScanComplete };
        }),
      );
      this.scanning = new Set(reads.filter((r) => !r.complete).map((r) => r.b));
      const unreadable = reads.flatMap((r) => r.read.unreadable);
      this.extraClaimed.push(...reads.flatMap((r) => r.read.entries));
      const entries = this.extraClaimed.splice(0, count);
      return { entries, unreadable };
    }
    return { entries: this.extraClaimed.splice(0, count), unreadable: [] };
  }

  async touch(ids: readonly string[]): Promise<void> {
    const { byBucket } = groupIds(ids);
    await Promise.all([...byBucket].map(([b, list]) => this.bucket(b).touch(list)));
  }

  async ack(ids: readonly string[]): Promise<void> {
    const { byBucket } = groupIds(ids);
    await Promise.all([...byBucket].map(([b, list]) => this.bucket(b).ack(list)));
  }

  async deadLetter(entries: readonly { id: string; entry?: JournalEntry }[], reason: string): Promise<void> {
    const groups = groupByBucket(entries, (e) => parseBucketEntryId(e.id)?.bucket ?? -1);
    await Promise.all(
      [...groups].map(([b, g]) => {
        if (b < 0) return Promise.resolve();
        return this.bucket(b).deadLetter(
          g.items.map((e) => ({
            id: parseBucketEntryId(e.id)?.streamId ?? e.id,
            ...(e.entry ? { entry: stripEntry(e.entry) } : {}),
          })),
          reason,
        );
      }),
    );
  }

  async stats(): Promise<JournalStats> {
    const now = this.clock();
    if (this.lastStats !== undefined && now - this.lastStats.at < this.statsMaxAgeMs) {
      const { stats, at } = this.lastStats;
      return { ...stats, redisNowMs: stats.redisNowMs + (now - at) };
    }
    const all = await Promise.all(this.journals.map((j) => j.stats()));
    let pending = 0;
    let oldestMs: number | undefined;
    let redisNowMs = 0;
    for (const s of all) {
      pending += s.pending;
      if (s.oldestMs !== undefined && (oldestMs === undefined || s.oldestMs < oldestMs)) oldestMs = s.oldestMs;
      redisNowMs = Math.max(redisNowMs, s.redisNowMs);
    }
    const stats = { pending, oldestMs, redisNowMs };
    this.lastStats = { stats, at: now };
    return stats;
  }

  async removeIdleConsumers(idleMs: number): Promise<number> {
    const counts = await Promise.all(this.journals.map((j) => j.removeIdleConsumers(idleMs)));
    return counts.reduce((a, b) => a + b, 0);
  }

  private bucket(b: number): WriteBackJournal {
    const j = this.journals[b];
    if (j === undefined) throw new RangeError(`no write-back bucket ${b}`);
    return j;
  }
}

function merge(reads: readonly JournalRead[], unreadable: readonly string[] = []): JournalRead {
  return {
    entries: reads.flatMap((r) => r.entries),
    unreadable: [...reads.flatMap((r) => r.unreadable), ...unreadable],
  };
}
