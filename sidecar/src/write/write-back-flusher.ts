/**
 * The write-back flusher: moves journaled writes (redis/write-back-journal.ts, redis/bucketed-journal.ts) into the origin.
 *
 * A cycle starts every `flushIntervalMs`, or as soon as this sidecar has appended `flushBatchSize`
 * entries since the last one. It takes batches of at most `flushBatchSize` entries — first entries other
 * consumers left pending for longer than `claimIdleMs` (they died), then the entries this sidecar's own
 * appends delivered to it (held in memory: the append script put them in this consumer's pending list,
 * see redis/write-back-journal.ts, so they need not be read back), then new ones nobody was given yet — and for
 * each batch:
 *
 *   1. coalesces per key: only the last write (highest version = journal order) of each key is sent;
 *   2. applies the writes to the origin in one call (PostgreSQL: one statement), each only if newer than
 *      the row — idempotent, and an older write never replaces a newer one, whatever order batches of
 *      different sidecars land in;
 *   3. settles the Redis records (gives them their TTL; they were pinned until now), storing again any
 *      that vanished or were refilled older meanwhile, and invalidating those keys in every L1; a write the
 *      origin superseded (it held the same or a newer version, e.g. a row the application wrote itself)
 *      is not settled: its record (or any older one) is replaced by an invalidation tombstone and the key
 *      invalidated in every L1, so that Redis never keeps it while the database holds a newer row;
 *   4. acknowledges and deletes the entries (XACK + XDEL).
 *
 * It keeps reading while batches come back full, so a backlog drains at the origin's speed.
 *
 * A cycle started by the count takes held entries in full batches only and leaves the rest for the next
 * cycle, so that batches stay full under load; one started by the interval (or a stop) takes them all.
 *
 * The entries held in memory are bounded (four batches, 32 MiB of values); past that, appends leave their
 * entries undelivered and the flusher reads them from the stream like any other. If this sidecar dies,
 * the entries it held are pending in its consumer and another sidecar claims them after `claimIdleMs`.
 *
 * Origin unavailable: the batch is kept and retried with back-off (100 ms doubling to 5 s, and at most a
 * third of the claim timeout); its entries are touched before each wait so that no other sidecar claims
 * them meanwhile. Nothing is acknowledged
 * before the origin committed it, so nothing is lost; the journal grows meanwhile, up to `maxPending`.
 * Origin rejects (a data error on one write): the batch is retried one write at a time and the refused
 * writes are moved to the dead-letter stream (`<journal>:dead`) so that they cannot block the others.
 * Redis unavailable: the cycle ends and the next one tries again.
 *
 * Reconnected (journal.connectionEpoch changed: e.g. to a new primary after a failover, behind the same
 * Service address): the first read of the next cycle walks this consumer's own pending list on that server
 * (the journal and the consumer group are replicated, so what it was given there is still its own) and
 * flushes what it does not hold in memory — entries of an append whose answer was lost with the old
 * connection — at once instead of after the claim timeout. A group the server lacks is created again
 * (WriteBackJournal.withGroup, idempotent); other sidecars' entries are claimed as usual.
 *
 * Coalescing over time (`coalesceWindowMs` > 0, coalesce-window.ts): entries read wait in memory until
 * their key's window closes, so that a hot key is written once per window; they stay pending meanwhile.
 *
 * Stop (SIGTERM): the loop stops waiting and runs a last cycle until the journal is empty or the deadline
 * passes; whatever is left stays in the journal, pending, for another sidecar to claim. When the journal
 * was drained, this sidecar's consumer is removed from the group — only if it owns no pending entry (the
 * check and the removal are one script), so that nothing is left unclaimable.
 */
import { OriginRejectedError, type Origin } from '../origin/origin.js';
import { coalesce, flushRetryDelay, type CoalescedWrite } from './coalesce.js';
import { FlushTrigger } from './flush-trigger.js';
import { CoalesceWindow } from './coalesce-window.js';
import type { VersionedRecords } from '../redis/versioned-records.js';
import type { JournalEntry, JournalRead, JournalStats, Journal } from './journal-entry.js';

/** Default idle time after which another consumer's pending entries are claimed, ms. */
export const DEFAULT_CLAIM_IDLE_MS = 30_000;
/** Consumers that hold nothing and were idle this long are removed from the group. */
const CONSUMER_CLEANUP_IDLE_MS = 3_600_000;
const CONSUMER_CLEANUP_EVERY_MS = 600_000;
/** Bytes of values (and keys) of delivered entries held in memory at most. */
const HELD_MAX_BYTES = 32 * 1024 * 1024;
/** Delivered entries held in memory at most, in batches. */
const HELD_MAX_BATCHES = 4;

export type FlushFailure = 'origin' | 'rejected' | 'redis';

/** Counters the flusher reports to (metrics). */
export interface FlusherEvents {
  /** A batch reached the origin: the journal entries it covered and the writes sent for them. */
  batchFlushed(entries: number, writes: number): void;
  /** Entries folded into a later write to the same key. */
  coalesced(count: number): void;
  /** A failed attempt: origin unavailable, writes rejected (dead-lettered), or Redis unavailable. */
  failure(kind: FlushFailure): void;
}

/** The subset of a pino logger the flusher uses. */
export interface FlusherLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What a held entry counts against {@link HELD_MAX_BYTES}. */
const entryBytes = (e: JournalEntry): number => e.key.length + (e.body?.length ?? 0);

const NO_EVENTS: FlusherEvents = { batchFlushed: () => {}, coalesced: () => {}, failure: () => {} };
const NO_LOG: FlusherLog = { info: () => {}, warn: () => {}, error: () => {} };

export interface WriteBackFlusherOptions {
  journal: Journal;
  origin: Origin;
  records: Pick<VersionedRecords, 'settle'>;
  /**
   * Invalidates keys in every sidecar's L1 (publishes a message): called for records the flusher had to
   * store again in Redis. Default: nothing.
   */
  announce?: (keys: readonly string[]) => Promise<void>;
  /** Start a cycle at least this often, ms. */
  flushIntervalMs: number;
  /** Entries per batch at most; also the count of local appends that starts a cycle early. */
  flushBatchSize: number;
  /** Default {@link DEFAULT_CLAIM_IDLE_MS}. */
  claimIdleMs?: number;
  events?: FlusherEvents;
  log?: FlusherLog;
  /** Default `Date.now`. */
  clock?: () => number;
  /** Default {@link flushRetryDelay}. */
  retryDelay?: (attempt: number) => number;
  /** Hold each key's writes this long before writing them (coalesce-window.ts). Default 0: off. */
  coalesceWindowMs?: number;
  /**
   * The journal's bound (`writeBack.maxPending`, cluster-wide). With a coalescing window, open windows
   * close early while the journal holds half of it or more, so that held writes never fill it. Default:
   * no bound known, windows close only on time or on their own memory bounds.
   */
  maxPending?: number;
}

/** The share of `maxPending` from which open coalescing windows close early. */
const WINDOW_PRESSURE_SHARE = 0.5;

/** The journal backlog as last seen, for the metrics. */
export interface PendingSnapshot {
  pending: number;
  oldestPendingSeconds: number;
}

export class WriteBackFlusher {
  private readonly journal: Journal;
  private readonly origin: Origin;
  private readonly records: Pick<VersionedRecords, 'settle'>;
  private readonly announce: (keys: readonly string[]) => Promise<void>;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly claimIdleMs: number;
  private readonly claimCheckMs: number;
  private readonly events: FlusherEvents;
  private readonly log: FlusherLog;
  private readonly clock: () => number;
  private readonly retryDelay: (attempt: number) => number;

  private loop: Promise<void> | undefined;
  private cycling = false;
  private stopping = false;
  private deadline = Infinity;
  private drainedOnStop = false;
  /** When cycles start, and the sleeps between retries (flush-trigger.ts). */
  private readonly trigger: FlushTrigger;
  /** A batch the origin could not take yet, and how many attempts it had. */
  private retry: { entries: JournalEntry[]; attempt: number } | undefined;
  /** Ids committed to the origin whose acknowledgement failed (Redis down); acknowledged next cycle. */
  private unacked: string[] = [];
  /** Entries this sidecar's appends delivered to its consumer, in journal order, not yet in a batch. */
  private held: JournalEntry[] = [];
  private heldBytes = 0;
  /** Ids of other writers' entries that an append's delivery gave this consumer (to be read by id). */
  private others: string[] = [];
  /** Whether this cycle has read the new (undelivered) entries until a short batch. */
  private newRead = false;
  /** Whether this cycle flushes every held entry, or only full batches of them. */
  private heldAll = true;
  private nextClaimAt = 0;
  private nextCleanupAt = 0;
  private outageSince: number | undefined;
  /** The journal's connection epoch whose own pending list was walked; and where the walk stands. */
  private seenEpoch = 0;
  private ownCursor: string | undefined;
  private stats: { snapshot: JournalStats; takenAt: number } | undefined;
  /** `coalesceWindowMs` > 0: entries read wait here until their key's window closes. */
  private readonly window: CoalesceWindow | undefined;
  private readonly pressureAt: number;
  /** The last read of new entries came back full: more are waiting in the journal than one batch. */
  private readingBehind = false;

  constructor(options: WriteBackFlusherOptions) {
    this.journal = options.journal;
    this.origin = options.origin;
    this.records = options.records;
    this.announce = options.announce ?? (async () => {});
    this.intervalMs = options.flushIntervalMs;
    this.batchSize = options.flushBatchSize;
    this.claimIdleMs = options.claimIdleMs ?? DEFAULT_CLAIM_IDLE_MS;
    this.claimCheckMs = Math.max(this.intervalMs, Math.floor(this.claimIdleMs / 3));
    this.events = options.events ?? NO_EVENTS;
    this.log = options.log ?? NO_LOG;
    this.clock = options.clock ?? Date.now;
    this.retryDelay = options.retryDelay ?? ((n) => flushRetryDelay(n));
    this.trigger = new FlushTrigger(this.intervalMs, this.batchSize);
    const windowMs = options.coalesceWindowMs ?? 0;
    this.window = windowMs > 0 ? new CoalesceWindow(windowMs) : undefined;
    this.pressureAt =
      options.maxPending === undefined ? Infinity : Math.max(1, Math.floor(options.maxPending * WINDOW_PRESSURE_SHARE));
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.loop !== undefined || this.stopping) return;
    this.nextCleanupAt = this.clock() + CONSUMER_CLEANUP_EVERY_MS;
    this.loop = this.run();
  }

  /** True while the flusher takes entries delivered by appends (not stopping, and room in memory). */
  hasRoom(): boolean {
    return !this.stopping && this.held.length < HELD_MAX_BATCHES * this.batchSize && this.heldBytes < HELD_MAX_BYTES;
  }

  /**
   * Entries an append delivered to this sidecar's consumer (pending in it now), and ids of other writers'
   * entries it delivered too. They are flushed with the next batches.
   */
  adopt(entries: readonly JournalEntry[], others: readonly string[] = []): void {
    for (const e of entries) {
      this.held.push(e);
      this.heldBytes += entryBytes(e);
    }
    this.others.push(...others);
  }

  /** Tells the flusher that this sidecar appended `count` entries (starts a cycle at `flushBatchSize`). */
  notify(count = 1): void {
    this.trigger.notify(count);
  }

  /**
   * Stops the loop after a last cycle that drains the journal until it is empty or `timeoutMs` passed.
   * Resolves true when the journal was drained (nothing left by this sidecar).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.loop === undefined) return true;
    if (!this.stopping) {
      this.stopping = true;
      this.deadline = this.clock() + timeoutMs;
      this.trigger.stop();
    }
    await this.loop;
    return this.drainedOnStop;
  }

  /**
   * Runs one cycle now, when the loop is not running (tests, tools). Resolves true when it read the
   * journal empty.
   */
  async flushOnce(): Promise<boolean> {
    if (this.loop !== undefined || this.cycling)
      throw new Error('flushOnce() cannot run while the flusher loop is running');
    return this.cycle(false);
  }

  /** The backlog as last seen (refreshed every cycle and while retrying). */
  pendingSnapshot(): PendingSnapshot {
    if (this.stats === undefined) return { pending: 0, oldestPendingSeconds: 0 };
    const { snapshot, takenAt } = this.stats;
    if (snapshot.oldestMs === undefined) return { pending: snapshot.pending, oldestPendingSeconds: 0 };
    const redisNow = snapshot.redisNowMs + (this.clock() - takenAt);
    return { pending: snapshot.pending, oldestPendingSeconds: Math.max(0, (redisNow - snapshot.oldestMs) / 1000) };
  }

  /** Reads the backlog from Redis now (a scrape); on failure returns the last snapshot. */
  async refreshPending(): Promise<PendingSnapshot> {
    await this.refreshStats();
    return this.pendingSnapshot();
  }

  // --- internals ---------------------------------------------------------------------------------

  private async run(): Promise<void> {
    while (!this.stopping) {
      const timed = await this.trigger.next();
      if (this.stopping) break;
      // Woken by the count, it flushes full batches of held entries; by the timer, all of them.
      await this.cycle(false, timed);
    }
    this.drainedOnStop = await this.cycle(true);
    if (this.drainedOnStop) await this.removeOwnConsumer();
  }

  /** After a drain on stop: removes this sidecar's consumer from the group when it owns no pending entry. */
  private async removeOwnConsumer(): Promise<void> {
    try {
      const removed = await this.journal.removeOwnConsumer();
      if (removed) this.log.info({ stream: this.journal.streamKey }, 'Removed this sidecar’s write-back consumer');
    } catch (err) {
      // It stays in the group; another sidecar removes it once idle (removeIdleConsumers).
      this.redisFailed(err, 'remove this sidecar’s write-back consumer');
    }
  }

  /**
   * Flushes batches until the journal reads empty (true), or a stop, deadline or Redis failure (false).
   * Held entries go in full batches only, unless `all` (or `final`): the rest waits for the next cycle
   * (more entries, or the interval), which keeps batches full under load.
   */
  private async cycle(final: boolean, all = true): Promise<boolean> {
    this.cycling = true;
    try {
      this.trigger.cycleStarted();
      this.newRead = false;
      this.heldAll = final || all;
      await this.maintain();
      for (;;) {
        if (final ? this.clock() >= this.deadline : this.stopping) return false;
        if (this.unacked.length > 0 && !(await this.ackLeftovers())) return false;

        let entries: JournalEntry[];
        let more = false;
        if (this.retry !== undefined) {
          entries = this.retry.entries;
        } else {
          let read: JournalRead & { more: boolean };
          try {
            read = await this.nextRead();
          } catch (err) {
            this.redisFailed(err, 'read the write-back journal');
            return false;
          }
          if (read.unreadable.length > 0) await this.discardUnreadable(read.unreadable);
          entries = read.entries;
          more = read.more || read.entries.length + read.unreadable.length >= this.batchSize;
          if (this.window !== undefined) {
            // Coalescing over time: what was read waits for its key's window; what is due is written.
            this.window.add(entries, this.clock());
            await this.ackSuperseded(this.window.takeSuperseded());
            this.window.setPressure(this.backlogPressure());
            entries = this.window.take(this.clock(), this.batchSize, final);
            more ||= final ? this.window.size > 0 : this.window.hasDue(this.clock());
          }
          if (entries.length === 0) {
            if (more) continue;
            await this.refreshStats();
            return true;
          }
        }

        if (await this.flush(entries)) {
          this.retry = undefined;
          if (!final && !more && !this.trigger.full) {
            await this.refreshStats();
            return true;
          }
          // Under backlog pressure, windows close only until the journal is below the mark again.
          if (this.window?.pressure === true) await this.refreshStats();
          continue;
        }
        const attempt = (this.retry?.attempt ?? 0) + 1;
        this.retry = { entries, attempt };
        try {
          // The held entries are pending in this consumer too, and wait behind this batch.
          await this.journal.touch([...entries, ...this.held].map((e) => e.id).concat(this.window?.heldIds() ?? []));
        } catch {
          // Redis is down too; the entries stay ours unless it stays down past the claim timeout.
        }
        await this.refreshStats();
        // Never sleep as long as the claim timeout: the entries were touched just now, and must be touched
        // again before another sidecar would consider them abandoned.
        const delay = Math.min(this.retryDelay(attempt), Math.floor(this.claimIdleMs / 3));
        const ms = final ? Math.min(delay, this.deadline - this.clock()) : delay;
        // The last cycle (after stop) sleeps too: the trigger is stopped, so sleep with a plain timer.
        await (final ? new Promise<void>((r) => setTimeout(r, Math.max(0, ms)).unref()) : this.trigger.sleep(ms));
      }
    } finally {
      this.cycling = false;
    }
  }

  /** The next batch to flush; `more` when the cycle must read again after it, whatever its size. */
  private async nextRead(): Promise<JournalRead & { more: boolean }> {
    const own = await this.readOwnPendingAfterReconnect();
    if (own !== undefined) return own;
    if (this.clock() >= this.nextClaimAt) {
      const claimed = await this.journal.claimStale(this.claimIdleMs, this.batchSize);
      if (this.journal.claimScanComplete) this.nextClaimAt = this.clock() + this.claimCheckMs;
      if (claimed.entries.length > 0 || claimed.unreadable.length > 0) {
        this.log.info(
          { stream: this.journal.streamKey, entries: claimed.entries.length },
          'Claimed write-back entries left pending by another sidecar',
        );
        return { ...claimed, more: true };
      }
    }
    if (this.others.length > 0) {
      const ids = this.others.splice(0, this.batchSize);
      try {
        return { ...(await this.journal.readDelivered(ids)), more: true };
      } catch (err) {
        this.others.unshift(...ids);
        throw err;
      }
    }
    // New entries nobody was given (appended without delivery) are read until a batch comes back short,
    // once per cycle; then the held ones.
    if (!this.newRead) {
      const read = await this.journal.readNew(this.batchSize);
      this.readingBehind = read.entries.length + read.unreadable.length >= this.batchSize;
      if (!this.readingBehind) this.newRead = true;
      if (read.entries.length > 0 || read.unreadable.length > 0) return { ...read, more: this.held.length > 0 };
    }
    if (this.held.length < this.batchSize && !this.heldAll) return { entries: [], unreadable: [], more: false };
    const entries = this.held.splice(0, this.batchSize);
    for (const e of entries) this.heldBytes -= entryBytes(e);
    return { entries, unreadable: [], more: false };
  }

  /**
   * Whether open coalescing windows should close early: the journal (as last seen: refreshed every cycle,
   * and after every batch while the pressure lasts) holds half of `maxPending` or more, and this flusher
   * keeps up with what is written (its last read of new entries came back short, its held entries are
   * under half their bound). When it does not keep up, the journal is full of entries waiting to be read,
   * not of entries the windows hold: closing them would only write more rows, on the database side that is
   * already the bottleneck, and free nothing sooner.
   */
  private backlogPressure(): boolean {
    return (
      (this.stats?.snapshot.pending ?? 0) >= this.pressureAt &&
      !this.readingBehind &&
      this.held.length < (HELD_MAX_BATCHES * this.batchSize) / 2
    );
  }

  /**
   * After a (re)connection: the next page of this consumer's own pending entries that the flusher does
   * not already hold (held, in a retried batch, or to be read by id); undefined when there is nothing to do.
   */
  private async readOwnPendingAfterReconnect(): Promise<(JournalRead & { more: boolean }) | undefined> {
    const epoch = this.journal.connectionEpoch;
    if (epoch !== this.seenEpoch) {
      this.seenEpoch = epoch;
      this.ownCursor = '0';
    }
    while (this.ownCursor !== undefined) {
      const page = await this.journal.readOwnPending(this.ownCursor, this.batchSize);
      this.ownCursor = page.done ? undefined : page.last;
      const known = new Set([...this.held, ...(this.retry?.entries ?? [])].map((e) => e.id).concat(this.others));
      const entries = page.entries.filter((e) => !known.has(e.id));
      const unreadable = page.unreadable.filter((id) => !known.has(id));
      if (entries.length > 0 || unreadable.length > 0) {
        this.log.info(
          { stream: this.journal.streamKey, entries: entries.length },
          'Took up write-back entries pending in this sidecar after reconnecting to Redis',
        );
        return { entries, unreadable, more: true };
      }
    }
    return undefined;
  }

  /** Applies one batch; false when the origin (or Redis, for the dead letters) was unavailable. */
  private async flush(entries: JournalEntry[]): Promise<boolean> {
    const { writes, coalesced } = coalesce(entries);
    /** The keys whose write the origin stored (undefined: it did not say; taken as all). */
    let applied: ReadonlySet<string> | undefined;
    try {
      const r = await this.origin.applyBatch(writes);
      applied = r.appliedKeys === undefined ? undefined : new Set(r.appliedKeys);
    } catch (err) {
      if (!(err instanceof OriginRejectedError)) return this.originFailed(err);
      const one = await this.applyOneByOne(writes, entries);
      if (one === false) return false;
      applied = one;
    }
    if (applied !== undefined) applied = await this.alreadyStored(writes, applied);
    if (this.outageSince !== undefined) {
      this.log.info(
        { origin: this.origin.description, outageSeconds: (this.clock() - this.outageSince) / 1000 },
        'Wrote write-back batches to the origin again',
      );
      this.outageSince = undefined;
    }
    try {
      const { repaired } = await this.records.settle(
        writes.map((w) =>
          applied !== undefined && !applied.has(w.key)
            ? { key: w.key, version: w.version, ttlMs: w.ttlMs, superseded: true }
            : w.op === 'put'
              ? { key: w.key, version: w.version, ttlMs: w.ttlMs, value: { body: w.body, contentType: w.contentType } }
              : { key: w.key, version: w.version, ttlMs: w.ttlMs },
        ),
      );
      if (repaired.length > 0) await this.announce(repaired);
    } catch (err) {
      // The records keep no TTL until overwritten; correct, only less frugal.
      this.redisFailed(err, 'settle write-back records');
    }
    const ids = entries.map((e) => e.id);
    try {
      await this.journal.ack(ids);
    } catch (err) {
      this.redisFailed(err, 'acknowledge write-back entries');
      this.unacked.push(...ids);
    }
    this.events.batchFlushed(entries.length, writes.length);
    if (coalesced > 0) this.events.coalesced(coalesced);
    return true;
  }

  /**
   * `applied` plus the puts the origin did not store because it already held them: an entry delivered again
   * (its flush reached the database, its acknowledgement did not reach Redis — a failover, a killed
   * sidecar) is "not applied" at its own version, and its Redis record, at that version, is right: it is
   * settled, not replaced by an invalidation (CI: a key read null in Redis after three failovers, the
   * database holding its value). Told apart from a row the application wrote newer by reading the row's
   * version (rare: only writes the origin did not apply). A read that fails, or an origin that does not
   * report versions, leaves the write superseded (an invalidation: always safe).
   */
  private async alreadyStored(writes: CoalescedWrite[], applied: ReadonlySet<string>): Promise<ReadonlySet<string>> {
    const notApplied = writes.filter((w) => w.op === 'put' && !applied.has(w.key));
    if (notApplied.length === 0) return applied;
    const same = await Promise.all(
      notApplied.map(async (w) => {
        try {
          const row = await this.origin.get(w.key);
          return row !== null && row.version === w.version;
        } catch {
          return false;
        }
      }),
    );
    const all = new Set(applied);
    notApplied.forEach((w, i) => {
      if (same[i]) all.add(w.key);
    });
    return all;
  }

  /**
   * After a rejected batch: applies each write alone and dead-letters the ones the origin refuses.
   * Returns the keys whose write the origin stored (undefined: it did not say), or false when the origin
   * (or Redis, for the dead letters) was unavailable.
   */
  private async applyOneByOne(
    writes: CoalescedWrite[],
    entries: JournalEntry[],
  ): Promise<ReadonlySet<string> | undefined | false> {
    const refused: { write: CoalescedWrite; reason: string }[] = [];
    let applied: Set<string> | undefined = new Set();
    for (const w of writes) {
      try {
        const r = await this.origin.applyBatch([w]);
        if (r.appliedKeys === undefined) applied = undefined;
        else for (const k of r.appliedKeys) applied?.add(k);
      } catch (err) {
        if (!(err instanceof OriginRejectedError)) return this.originFailed(err);
        refused.push({ write: w, reason: err.message });
      }
    }
    if (refused.length === 0) return applied;
    // The refused writes' records are settled as before (the dead letters are for the operator).
    for (const { write } of refused) applied?.add(write.key);
    const byId = new Map(entries.map((e) => [e.id, e]));
    try {
      for (const { write, reason } of refused) {
        await this.journal.deadLetter(
          write.ids.map((id) => ({ id, ...(byId.get(id) ? { entry: byId.get(id)! } : {}) })),
          reason,
        );
      }
    } catch (err) {
      this.redisFailed(err, 'dead-letter write-back entries');
      return false;
    }
    this.events.failure('rejected');
    this.log.error(
      {
        origin: this.origin.description,
        writes: refused.length,
        deadLetters: this.journal.deadLetterKey,
        reason: refused[0]?.reason,
      },
      'The origin refused write-back writes; moved them to the dead-letter stream',
    );
    return applied;
  }

  private originFailed(err: unknown): false {
    this.events.failure('origin');
    if (this.outageSince === undefined) {
      this.outageSince = this.clock();
      this.log.warn(
        { origin: this.origin.description, error: err instanceof Error ? err.message : String(err) },
        'Could not write a write-back batch to the origin; retrying with back-off',
      );
    }
    return false;
  }

  private redisFailed(err: unknown, what: string): void {
    this.events.failure('redis');
    this.log.warn(
      { stream: this.journal.streamKey, error: err instanceof Error ? err.message : String(err) },
      `Could not ${what}`,
    );
  }

  /**
   * Acknowledges (and deletes) entries a later write of their key superseded in a coalescing window: they
   * will never be written, and the entry superseding them is pending in this consumer. On a Redis failure
   * they are acknowledged with the leftovers of the next cycle.
   */
  private async ackSuperseded(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    this.events.coalesced(ids.length);
    try {
      await this.journal.ack(ids);
    } catch (err) {
      this.redisFailed(err, 'acknowledge write-back entries');
      this.unacked.push(...ids);
    }
  }

  private async ackLeftovers(): Promise<boolean> {
    try {
      await this.journal.ack(this.unacked);
      this.unacked = [];
      return true;
    } catch (err) {
      this.redisFailed(err, 'acknowledge write-back entries');
      return false;
    }
  }

  private async discardUnreadable(ids: string[]): Promise<void> {
    try {
      await this.journal.deadLetter(
        ids.map((id) => ({ id })),
        'not a journal entry',
      );
      this.events.failure('rejected');
      this.log.error(
        { stream: this.journal.streamKey, entries: ids.length },
        'Moved unreadable write-back entries to the dead-letter stream',
      );
    } catch (err) {
      this.redisFailed(err, 'dead-letter write-back entries');
    }
  }

  private async maintain(): Promise<void> {
    await this.refreshStats();
    if (this.clock() < this.nextCleanupAt) return;
    this.nextCleanupAt = this.clock() + CONSUMER_CLEANUP_EVERY_MS;
    try {
      const removed = await this.journal.removeIdleConsumers(Math.max(CONSUMER_CLEANUP_IDLE_MS, 10 * this.claimIdleMs));
      if (removed > 0) this.log.info({ stream: this.journal.streamKey, removed }, 'Removed idle write-back consumers');
    } catch (err) {
      this.redisFailed(err, 'clean up write-back consumers');
    }
  }

  private async refreshStats(): Promise<void> {
    try {
      this.stats = { snapshot: await this.journal.stats(), takenAt: this.clock() };
    } catch {
      // Keep the last snapshot; its age keeps growing in pendingSnapshot().
    }
  }
}
