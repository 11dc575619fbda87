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
 * Which buckets a cycle reads is decided by bucket-schedule.ts (issue 15's idle fix): new entries are read
 * only from buckets this sidecar appended to without delivery, buckets a probe found undelivered entries
 * in, and buckets whose last read came back full; claims scan only buckets a probe found pending entries
 * in. A probe (PROBE below: one read-only script per bucket, sent to every bucket at once) runs for every
 * bucket at least every `sweepMs` (default 5 s, at most a third of the claim timeout), and for buckets
 * this sidecar changed when the stats are due. Reads share a batch equally among the chosen buckets
 * (bucket-batching.ts planRead); what one read returns beyond the batch is kept and handed out first next
 * time (it is pending in this consumer already).
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
 * Idle cost: one probe per bucket per sweep (an XLEN: 256 per 5 s, ~51/s; the script only for streams
 * that were not empty, or this sidecar changed) and nothing else; before, each cycle read every bucket and the stats took 5 commands per bucket every
 * second (~1,500 commands/s on 3 primaries). bench/cluster-idle.bench.ts measures both. The price: entries
 * another sidecar appended without delivering them to itself are found by the next sweep (at most
 * `sweepMs` later) rather than by the next cycle, and the backlog stats of buckets this sidecar did not
 * touch are up to one sweep old.
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
import { BucketSchedule, DEFAULT_SWEEP_MS, type BucketProbe } from '../write/bucket-schedule.js';
import { luaScript, runScript } from './prebuilt-script.js';
import type { InvalidationMessages } from '../write/journal-entry.js';
import type { KeyLayout } from '../write/key-layout.js';
import { DEFAULT_JOURNAL_GROUP, WriteBackJournal } from './write-back-journal.js';
import {
  WriteBackBacklogFullError,
  type AppendedWrite,
  type AppendOutcome,
  type Journal,
  type JournalEntry,
  type JournalRead,
  type JournalStats,
  type JournalWrite,
  streamIdMs,
} from '../write/journal-entry.js';
import { callRedis, toSidecarError, type RedisClient } from './redis-client.js';

export interface BucketedJournalOptions {
  client: RedisClient;
  layout: KeyLayout;
  consumer: string;
  channel: string;
  tombstoneTtlMs?: number;
  onError?: (err: unknown) => void;
  /** Longest reuse of the stats of buckets this sidecar changed, ms. Default 1000. */
  statsMaxAgeMs?: number;
  /**
   * Longest time between two probes of a bucket, ms (bucket-schedule.ts). Default 5000; the caller keeps
   * it at most a third of the claim timeout (sweepInterval()).
   */
  sweepMs?: number;
  /** The consumer group. Default `flushers`. */
  group?: string;
  clock?: () => number;
}

const prefixEntry = (bucket: number, e: JournalEntry): JournalEntry => ({ ...e, id: bucketEntryId(bucket, e.id) });
const prefixRead = (bucket: number, r: JournalRead): JournalRead => ({
  entries: r.entries.map((e) => prefixEntry(bucket, e)),
  unreadable: r.unreadable.map((id) => bucketEntryId(bucket, id)),
});
/**
 * The probe of a non-empty bucket stream (an empty one is probed with XLEN alone).
 * KEYS[1] a bucket stream; ARGV[1] the group → {0} when the stream is empty, else {length, first id,
 * the group's pending count, 1 when entries were never delivered (or there is no group) else 0, TIME
 * seconds, TIME microseconds}. Read-only (`no-writes`: it runs even when Redis refuses writes for memory).
 */
const PROBE = luaScript(`#!lua flags=no-writes
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return {0} end
local t = redis.call('TIME')
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local firstId = ''
if first[1] then firstId = first[1][1] end
local pending, undelivered = 0, 1
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) == 'table' and groups.err == nil then
  for _, g in ipairs(groups) do
    local m = {}
    for i = 1, #g, 2 do m[g[i]] = g[i + 1] end
    if m['name'] == ARGV[1] then
      pending = m['pending']
      -- Not the group's lag: Redis 7.0 counts deleted entries in it (acknowledged entries are deleted).
      undelivered = #redis.call('XRANGE', KEYS[1], '(' .. m['last-delivered-id'], '+', 'COUNT', 1)
    end
  end
end
return {len, firstId, pending, undelivered, t[1], t[2]}`);

/** Parses a PROBE reply; also the Redis time it carried (ms), if any. */
function parseProbe(raw: unknown): { probe: BucketProbe; redisMs: number | undefined } {
  const r = raw as [number, string?, number?, number?, string?, string?];
  const length = Number(r[0] ?? 0);
  if (length === 0)
    return { probe: { length: 0, oldestMs: undefined, pending: 0, undelivered: false }, redisMs: undefined };
  const first = String(r[1] ?? '');
  return {
    probe: {
      length,
      oldestMs: first === '' ? undefined : streamIdMs(first),
      pending: Number(r[2] ?? 0),
      undelivered: Number(r[3] ?? 1) !== 0,
    },
    redisMs: r[4] !== undefined ? Number(r[4]) * 1000 + Math.floor(Number(r[5] ?? 0) / 1000) : undefined,
  };
}

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
  private readonly group: string;
  private epoch_ = 0;
  /** Which buckets to probe, read and claim (bucket-schedule.ts). */
  private readonly schedule: BucketSchedule;
  /** Buckets in the middle of a claim scan (their XAUTOCLAIM cursor is not back at the start). */
  private scanning = new Set<number>();
  /** Entries read (delivered to this consumer) beyond what the caller asked for. */
  private extraNew: JournalEntry[] = [];
  private extraNewUnreadable: string[] = [];
  private extraClaimed: JournalEntry[] = [];
  /** When the stats last probed the buckets this sidecar changed. */
  private statsAt = -Infinity;
  /** Redis's clock as last seen by a probe, and the local time then. */
  private redisTime: { redisMs: number; at: number } | undefined;

  constructor(options: BucketedJournalOptions) {
    this.client = options.client;
    this.layout = options.layout;
    this.channel = options.channel;
    this.onError = options.onError ?? (() => {});
    this.statsMaxAgeMs = options.statsMaxAgeMs ?? 1000;
    this.clock = options.clock ?? Date.now;
    this.group = options.group ?? DEFAULT_JOURNAL_GROUP;
    this.schedule = new BucketSchedule(options.layout.buckets.length, options.sweepMs ?? DEFAULT_SWEEP_MS);
    this.journals = options.layout.buckets.map(
      (b) =>
        new WriteBackJournal({
          client: options.client,
          consumer: options.consumer,
          channel: options.channel,
          streamKey: b.streamKey,
          versionKey: b.versionKey,
          layout: options.layout,
          group: this.group,
          ...(options.tombstoneTtlMs !== undefined ? { tombstoneTtlMs: options.tombstoneTtlMs } : {}),
          onError: this.onError,
          trackConnection: false,
        }),
    );
    const first = options.layout.buckets[0];
    this.streamKey = first ? first.streamKey.replace(first.tag, '{*}') : '';
    this.deadLetterKey = `${this.streamKey}:dead`;
    this.client.on('ready', () => {
      // Perhaps another server now (a failover): trust no probe until every bucket was probed again.
      this.epoch_++;
      this.schedule.forget();
    });
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
        let out: AppendOutcome;
        try {
          out = await this.bucket(b).appendMany(g.items, perBucket, message, deliver);
        } catch (err) {
          // Perhaps journaled all the same (an answer lost): read the bucket, as for undelivered entries.
          this.schedule.appended(b, true);
          throw err;
        }
        this.schedule.appended(
          b,
          out.results.some((r) => !(r instanceof Error) && r.entry === undefined),
        );
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
      await this.probeDue(false);
      const plan = this.schedule.planRead(count);
      const reads = await Promise.all(
        plan.buckets.map(async (b) => {
          const read = prefixRead(b, await this.bucket(b).readNew(plan.perBucket));
          this.schedule.readDone(b, plan.generation, read.entries.length + read.unreadable.length, plan.perBucket);
          return read;
        }),
      );
      for (const read of reads) {
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
      await this.probeDue(false);
      // A scan in progress goes on in the buckets it has not finished; a new one looks only at buckets
      // whose last probe saw pending entries (or never probed).
      const plan = planRead(count, this.scanning.size > 0 ? this.scanning : this.schedule.claimCandidates());
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
    for (const b of byBucket.keys()) this.schedule.touched(b);
    await Promise.all([...byBucket].map(([b, list]) => this.bucket(b).ack(list)));
  }

  async deadLetter(entries: readonly { id: string; entry?: JournalEntry }[], reason: string): Promise<void> {
    const groups = groupByBucket(entries, (e) => parseBucketEntryId(e.id)?.bucket ?? -1);
    await Promise.all(
      [...groups].map(([b, g]) => {
        if (b < 0) return Promise.resolve();
        this.schedule.touched(b);
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

  /**
   * The backlog by the buckets' last probes: buckets due for their sweep are probed now, and — at most
   * every `statsMaxAgeMs` — the buckets this sidecar appended to or acknowledged in since their probe.
   */
  async stats(): Promise<JournalStats> {
    const now = this.clock();
    const withChanged = now - this.statsAt >= this.statsMaxAgeMs;
    await this.probeDue(withChanged);
    if (withChanged) this.statsAt = now;
    const { pending, oldestMs } = this.schedule.totals();
    const redisNowMs = this.redisTime ? this.redisTime.redisMs + (this.clock() - this.redisTime.at) : this.clock();
    return { pending, oldestMs, redisNowMs };
  }

  async removeIdleConsumers(idleMs: number): Promise<number> {
    const counts = await Promise.all(this.journals.map((j) => j.removeIdleConsumers(idleMs)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Removes this sidecar's consumer from every bucket's group where it owns no pending entry; true when
   * removed from all of them.
   */
  async removeOwnConsumer(): Promise<boolean> {
    const removed = await Promise.all(this.journals.map((j) => j.removeOwnConsumer()));
    return removed.every(Boolean);
  }

  /** Probes the buckets that are due (bucket-schedule.ts dueProbes), all at once; throws the first failure. */
  private async probeDue(withChanged: boolean): Promise<void> {
    const due = this.schedule.dueProbes(this.clock(), withChanged);
    if (due.length === 0) return;
    let failure: unknown;
    await Promise.all(
      due.map(async (b) => {
        try {
          const key = this.bucket(b).streamKey;
          // The sweep counts from when the probe was sent (what it saw may be older than its answer).
          const sentAt = this.clock();
          // XLEN first where the stream was empty (the idle case: one command); the script where it was not.
          const length = this.schedule.likelyEmpty(b) ? await this.client.xlen(key) : 1;
          const { probe, redisMs } =
            length === 0 ? parseProbe([0]) : parseProbe(await runScript(this.client, PROBE, [key], [this.group]));
          this.schedule.probed(b, probe, sentAt);
          if (redisMs !== undefined) this.redisTime = { redisMs, at: this.clock() };
        } catch (err) {
          failure ??= err;
        }
      }),
    );
    if (failure !== undefined) {
      this.onError(failure);
      throw toSidecarError(failure, 'probe the write-back journal');
    }
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
