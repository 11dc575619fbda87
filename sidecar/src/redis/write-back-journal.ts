/**
 * The write-back journal: a Redis Stream per CacheCluster (default key `ripplecache:write-back`) read by
 * the consumer group `flushers`, one consumer per sidecar process.
 *
 * Append (one Lua script, atomic on the primary, before the 204; one call carries every write a sidecar
 * received in the same turn of its event loop — see write-back.ts — and, for each write in order):
 *   1. refuse it when the stream already holds `maxPending` entries (entries are deleted once applied
 *      to the database, so the length is the cluster's backlog);
 *   2. take the next version (versioned-records.ts) — so stream order and version order agree;
 *   3. XADD the entry: fields `k` key, `op` put|delete, `ver` version, `v` body, `ct` content type,
 *      `ttl` the record's TTL in ms once flushed (0: none; a delete's tombstone: the tombstone TTL);
 *   4. store the record (a value, or a delete's tombstone marked `del`, which reads as 404 until and after
 *      the flush: versioned-records.ts) at that version unless Redis holds a newer
 *      one, *without* a TTL: it is pinned until the flusher has written it to the database and settles
 *      it (gives it its TTL), so that it cannot expire early and let a read-through serve the older row;
 *   5. publish the invalidation message (once per call, naming every key of the call);
 *   6. when the caller asks for it, deliver the new entries to the caller's consumer: they are in its
 *      pending list before the 204, and its flusher writes them from the copy it already holds instead
 *      of reading them back (write-back-flusher.ts). When the group had been given every earlier entry
 *      (XINFO GROUPS reports lag 0, Redis >= 7), the script claims the new ids for the consumer
 *      (XCLAIM … FORCE JUSTID) and moves the group past them (XGROUP SETID … ENTRIESREAD), which spares
 *      Redis converting the entries for the script. Otherwise it reads with XREADGROUP `>`, which hands
 *      out the oldest undelivered entries: the call's own, unless some were left undelivered (by a
 *      caller that did not ask for delivery); the reply says which of the call's entries were delivered
 *      and lists the ids of any others it took, so that the caller reads those from the stream.
 *
 * Flush side: XREADGROUP `>` (new entries), XAUTOCLAIM of entries idle longer than the claim timeout
 * (left pending by a sidecar that died), XCLAIM … JUSTID of our own pending entries while a batch is being
 * retried (resets their idle time so that no other sidecar claims them meanwhile), and XACK + XDEL once
 * the database has committed. Delivery is at least once; applying is idempotent (versions).
 *
 * Durability is that of the Redis primary (AOF, replicas): the operator's persistence settings apply.
 * The stream and pinned records have no TTL, so `volatile-*` and `noeviction` policies never evict them;
 * with `allkeys-*` policies Redis may evict them under memory pressure (README "Write policies").
 */
import { SINGLE_LAYOUT, type KeyLayout } from '../write/key-layout.js';
import {
  parseStreamEntries,
  putTtlMs,
  streamIdMs,
  WriteBackBacklogFullError,
  type AppendedWrite,
  type AppendOutcome,
  type InvalidationMessages,
  type Journal,
  type JournalEntry,
  type JournalRead,
  type JournalStats,
  type JournalWrite,
} from '../write/journal-entry.js';
import { DEFAULT_TOMBSTONE_TTL_MS, DEFAULT_VERSION_KEY, LUA_PRELUDE } from './versioned-records.js';
import { luaScript, runScript } from './prebuilt-script.js';
import { callRedis, toSidecarError, type RedisClient } from './redis-client.js';

// Entry types and parsers live in write/journal-entry.ts (pure); re-exported for the callers of before.
export {
  parseJournalEntry,
  parseStreamEntries,
  streamIdMs,
  WriteBackBacklogFullError,
  type AppendedWrite,
  type AppendOutcome,
  type Journal,
  type JournalEntry,
  type JournalRead,
  type JournalStats,
  type JournalWrite,
} from '../write/journal-entry.js';

/** Default stream key. Must not start with the record prefix `rc:`. */
export const DEFAULT_JOURNAL_KEY = 'ripplecache:write-back';
/** Default consumer group. */
export const DEFAULT_JOURNAL_GROUP = 'flushers';
/** Entries kept at most in the dead-letter stream `<journal>:dead`. */
const DEAD_LETTER_MAX = 10_000;

export interface WriteBackJournalOptions {
  client: RedisClient;
  /** This sidecar's consumer name (unique per process; the invalidation sender id serves). */
  consumer: string;
  /** Invalidation channel of the CacheCluster. */
  channel: string;
  /** Default `ripplecache:write-back`. */
  streamKey?: string;
  /** Default `flushers`. */
  group?: string;
  /** Default `ripplecache:version`. */
  versionKey?: string;
  /**
   * Record keys. Default {@link SINGLE_LAYOUT}. On Redis Cluster (bucketed layout) a journal is one
   * bucket's stream, and is given only writes of that bucket's keys (bucketed-journal.ts).
   */
  layout?: KeyLayout;
  /** TTL of a delete's tombstone once flushed, ms. Default {@link DEFAULT_TOMBSTONE_TTL_MS}. */
  tombstoneTtlMs?: number;
  /** Called once for every failed Redis call (metrics). */
  onError?: (err: unknown) => void;
  /**
   * Count the client's `ready` events ({@link WriteBackJournal.connectionEpoch}). Default true; the
   * bucketed journal counts them once for all its buckets.
   */
  trackConnection?: boolean;
}

/**
 * KEYS stream, counter, then the record of each write; ARGV maxPending, channel, message, group, consumer
 * to deliver the new entries to ('' none), then per write op, key, body, ct, ttl ms → per write three
 * values: {id, version, delivered '1'|'0'}, or {'', backlog, '0'} when it was refused; then the ids of
 * other entries the delivery took; all of them joined by spaces into one string. Writes are journaled in ARGV order, each with the next version; the
 * invalidation is published once.
 */
const APPEND = `${LUA_PRELUDE}
local max = tonumber(ARGV[1])
local pending = redis.call('XLEN', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local group, consumer = ARGV[4], ARGV[5]
-- Delivery without reading the entries back is possible when the group has been given every entry so far
-- (lag 0; Redis >= 7 reports it): claim the new ids for the consumer and move the group past them.
local read0 = nil
if consumer ~= '' then
  local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
  if type(groups) == 'table' and groups.err == nil then
    for _, g in ipairs(groups) do
      local m = {}
      for i = 1, #g, 2 do m[g[i]] = g[i + 1] end
      if m['name'] == group and m['lag'] == 0 and type(m['entries-read']) == 'number' then read0 = m['entries-read'] end
    end
  end
end
local out = {}
local mine = {}
local ids = {}
for i = 1, #KEYS - 2 do
  local a = 6 + (i - 1) * 5
  local rk = KEYS[2 + i]
  if pending >= max then
    out[#out + 1] = ''
    out[#out + 1] = tostring(pending)
    out[#out + 1] = '0'
  else
    local v = now
    if v <= last then v = last + 1 end
    last = v
    local vs = string.format('%.0f', v)
    local id
    if ARGV[a] == 'put' then
      id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[a + 1], 'op', 'put', 'ver', vs, 'v', ARGV[a + 2], 'ct', ARGV[a + 3], 'ttl', ARGV[a + 4])
      if newer(rk, v, true) then set_value(rk, vs, ARGV[a + 2], ARGV[a + 3], 0) end
    else
      id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[a + 1], 'op', 'delete', 'ver', vs, 'ttl', ARGV[a + 4])
      if newer(rk, v, false) then set_tombstone(rk, vs, 0, vs) end
    end
    pending = pending + 1
    ids[#ids + 1] = id
    out[#out + 1] = id
    out[#out + 1] = vs
    out[#out + 1] = '0'
    mine[id] = #out
  end
end
local taken = #ids
if taken > 0 then redis.call('SET', KEYS[2], string.format('%.0f', last)) end
announce(ARGV[2], ARGV[3])
if taken > 0 and read0 ~= nil then
  local claim = { KEYS[1], group, consumer, '0' }
  for _, id in ipairs(ids) do claim[#claim + 1] = id end
  claim[#claim + 1] = 'FORCE'
  claim[#claim + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(claim))
  redis.call('XGROUP', 'SETID', KEYS[1], group, ids[taken], 'ENTRIESREAD', read0 + taken)
  for _, id in ipairs(ids) do out[mine[id]] = '1' end
elseif taken > 0 and consumer ~= '' then
  local function deliver()
    return redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', taken, 'STREAMS', KEYS[1], '>')
  end
  local r = deliver()
  if type(r) == 'table' and r.err ~= nil and string.find(r.err, 'NOGROUP', 1, true) then
    -- No group yet (or Redis lost it): create it as ensureGroup() does, from the start of the stream.
    redis.call('XGROUP', 'CREATE', KEYS[1], group, '0')
    r = deliver()
  end
  if type(r) == 'table' and r.err == nil and r[1] ~= nil then
    local others = {}
    for _, e in ipairs(r[1][2]) do
      local j = mine[e[1]]
      if j then out[j] = '1' else others[#others + 1] = e[1] end
    end
    for _, id in ipairs(others) do out[#out + 1] = id end
  end
end
-- One string (ids and versions hold no space): one bulk string to decode instead of three per write.
return table.concat(out, ' ')`;

const APPEND_SCRIPT = luaScript(APPEND);

/**
 * KEYS[1] stream; ARGV group, consumer → 1 removed, 0 kept (it owns pending entries, or there is no such
 * group). Check and removal in one script: XGROUP DELCONSUMER would make a consumer's pending entries
 * unclaimable, and an append may deliver entries to it at any time.
 */
const REMOVE_CONSUMER_SCRIPT = luaScript(`
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(p) ~= 'table' or p.err ~= nil or #p > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1`);

/**
 * KEYS[1] stream; ARGV group, then entry ids → XACK and XDEL of them (in chunks: Lua's unpack is bounded).
 * Without the group (Redis lost it) there is nothing to acknowledge; the entries, in the database now, are
 * deleted all the same.
 */
const ACK_SCRIPT = luaScript(`
local n = #ARGV
for first = 2, n, 1000 do
  local last = math.min(first + 999, n)
  local acked = redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ARGV, first, last))
  if type(acked) == 'table' and acked.err ~= nil and not string.find(acked.err, 'NOGROUP', 1, true) then
    return redis.error_reply(acked.err)
  end
  redis.call('XDEL', KEYS[1], unpack(ARGV, first, last))
end
return n - 1`);

export class WriteBackJournal implements Journal {
  readonly streamKey: string;
  readonly group: string;
  readonly consumer: string;
  private readonly client: RedisClient;
  private readonly channel: string;
  private readonly versionKey: string;
  private readonly layout: KeyLayout;
  private readonly tombstoneTtlMs: number;
  private readonly onError: (err: unknown) => void;
  /** XAUTOCLAIM cursor: a scan of the pending entries continues where the last call stopped. */
  private claimCursor = '0-0';
  private groupReady = false;
  private epoch_ = 0;

  constructor(options: WriteBackJournalOptions) {
    this.client = options.client;
    this.consumer = options.consumer;
    this.channel = options.channel;
    this.streamKey = options.streamKey ?? DEFAULT_JOURNAL_KEY;
    this.group = options.group ?? DEFAULT_JOURNAL_GROUP;
    this.versionKey = options.versionKey ?? DEFAULT_VERSION_KEY;
    this.layout = options.layout ?? SINGLE_LAYOUT;
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.onError = options.onError ?? (() => {});
    // A new connection may reach another server (a failover behind the same Service address): make sure
    // of the group again before the next group command, and let the flusher look at what it holds there.
    if (options.trackConnection ?? true) {
      this.client.on('ready', () => {
        this.epoch_++;
        this.groupReady = false;
      });
    }
  }

  /**
   * Counts the connection's `ready` events: it changes whenever the connection was (re)established, e.g.
   * to a new primary after a failover (write-back-flusher.ts then re-reads this consumer's pending entries).
   */
  get connectionEpoch(): number {
    return this.epoch_;
  }

  /** The dead-letter stream: entries the origin refused for good. */
  get deadLetterKey(): string {
    return `${this.streamKey}:dead`;
  }

  /** Creates the stream and the consumer group if absent (idempotent). */
  async ensureGroup(): Promise<void> {
    try {
      await this.client.xgroup('CREATE', this.streamKey, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) {
        this.onError(err);
        throw toSidecarError(err, 'create the write-back consumer group');
      }
    }
    this.groupReady = true;
  }

  /**
   * Journals a write and stores its record (see the file header). Throws {@link WriteBackBacklogFullError}
   * when the stream holds `maxPending` entries, or a SidecarError when Redis fails.
   */
  async append(write: JournalWrite, maxPending: number, invalidation = ''): Promise<{ id: string; version: number }> {
    const [result] = (await this.appendMany([write], maxPending, invalidation)).results;
    if (result instanceof Error) throw result;
    return result as AppendedWrite;
  }

  /**
   * Journals several writes in one script call, in order (each takes the next version), and publishes
   * `invalidation` once. Answers one result per write: its entry id and version, or a
   * {@link WriteBackBacklogFullError} for a write refused because the stream held `maxPending` entries.
   * With `deliver`, the new entries are delivered to this consumer in the same call: each result then
   * carries its journal entry when it was (see the file header), and `others` lists the ids of entries of
   * other writers the delivery took. Throws a SidecarError when Redis fails (then none of them is known to
   * be journaled).
   */
  async appendMany(
    writes: readonly JournalWrite[],
    maxPending: number,
    invalidation: string | InvalidationMessages = '',
    deliver = false,
  ): Promise<AppendOutcome> {
    const keys: string[] = [this.streamKey, this.versionKey];
    const args: (string | Buffer | number)[] = [
      maxPending,
      this.channel,
      typeof invalidation === 'string' ? invalidation : invalidation.keys(writes.map((w) => w.key)),
      this.group,
      deliver ? this.consumer : '',
    ];
    for (const w of writes) {
      keys.push(this.layout.recordKey(w.key));
      if (w.op === 'put') args.push('put', w.key, w.body, w.contentType, putTtlMs(w));
      else args.push('delete', w.key, '', '', this.tombstoneTtlMs);
    }
    const reply = (
      (await this.call('write-back append', () => runScript(this.client, APPEND_SCRIPT, keys, args))) as string
    ).split(' ');
    const results = writes.map((w, i): AppendedWrite | WriteBackBacklogFullError => {
      const id = reply[3 * i] ?? '';
      const second = reply[3 * i + 1] ?? '';
      if (id === '') {
        return new WriteBackBacklogFullError(
          `write-back backlog is full: the write-back journal holds ${second} entries (maxPending ${maxPending})`,
        );
      }
      const version = Number(second);
      if (reply[3 * i + 2] !== '1') return { id, version };
      const entry: JournalEntry =
        w.op === 'put'
          ? { id, key: w.key, op: 'put', version, body: w.body, contentType: w.contentType, ttlMs: putTtlMs(w) }
          : { id, key: w.key, op: 'delete', version, ttlMs: this.tombstoneTtlMs };
      return { id, version, entry };
    });
    return { results, others: reply.slice(3 * writes.length) };
  }

  /**
   * Reads entries already delivered to this consumer, by id (entries of other writers that an append's
   * delivery took); resets their idle time. Ids of entries deleted meanwhile are dropped by Redis.
   */
  async readDelivered(ids: readonly string[]): Promise<JournalRead> {
    if (ids.length === 0) return { entries: [], unreadable: [] };
    const reply = await this.withGroup('read delivered write-back entries', () =>
      this.client.callBuffer('XCLAIM', this.streamKey, this.group, this.consumer, '0', ...ids),
    );
    return parseStreamEntries(reply);
  }

  /**
   * Reads up to `count` of the entries pending in this consumer with ids after `after` (`0` from the
   * start: XREADGROUP with an id reads the consumer's own pending list, not new entries). Entries that were
   * deleted meanwhile (already applied by someone) are acknowledged here and left out. `last` is the id to
   * continue after; the list is done when fewer than `count` came back (`done`).
   */
  async readOwnPending(after: string, count: number): Promise<JournalRead & { last: string; done: boolean }> {
    const reply = await this.withGroup('read this consumer’s pending write-back entries', () =>
      this.client.xreadgroupBuffer(
        'GROUP',
        this.group,
        this.consumer,
        'COUNT',
        count,
        'STREAMS',
        this.streamKey,
        after,
      ),
    );
    const items = (reply?.[0]?.[1] ?? []) as unknown as [Buffer, Buffer[] | null][];
    const gone = items.filter((it) => it[1] === null).map((it) => it[0].toString());
    if (gone.length > 0) await this.ack(gone);
    const read = parseStreamEntries(items.filter((it) => it[1] !== null));
    const lastItem = items[items.length - 1];
    return { ...read, last: lastItem ? lastItem[0].toString() : after, done: items.length < count };
  }

  /** Reads up to `count` entries no consumer has been given yet. */
  async readNew(count: number): Promise<JournalRead> {
    const reply = await this.withGroup('read the write-back journal', () =>
      this.client.xreadgroupBuffer('GROUP', this.group, this.consumer, 'COUNT', count, 'STREAMS', this.streamKey, '>'),
    );
    const streams = reply;
    return parseStreamEntries(streams?.[0]?.[1] ?? null);
  }

  /**
   * Takes over up to `count` entries that have been pending in any consumer for at least `minIdleMs`
   * (a sidecar that died, or one that could not touch them). Successive calls walk the pending list.
   */
  async claimStale(minIdleMs: number, count: number): Promise<JournalRead> {
    const reply = await this.withGroup('claim write-back entries', () =>
      this.client.callBuffer(
        'XAUTOCLAIM',
        this.streamKey,
        this.group,
        this.consumer,
        String(minIdleMs),
        this.claimCursor,
        'COUNT',
        String(count),
      ),
    );
    const [next, items, deleted] = reply as [Buffer, [Buffer, Buffer[] | null][], Buffer[] | undefined];
    this.claimCursor = next.toString();
    const read = parseStreamEntries(items);
    return { entries: read.entries, unreadable: [...read.unreadable, ...(deleted ?? []).map((d) => d.toString())] };
  }

  /** True when the last claim scan reached the end of the pending list. */
  get claimScanComplete(): boolean {
    return this.claimCursor === '0-0';
  }

  /** Resets the idle time of our pending entries (so that no other sidecar claims them). */
  async touch(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.withGroup('touch write-back entries', () =>
      this.client.call('XCLAIM', this.streamKey, this.group, this.consumer, '0', ...ids, 'JUSTID'),
    );
  }

  /** Acknowledges and deletes entries (after the database committed them). */
  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.call('acknowledge write-back entries', () =>
      runScript(this.client, ACK_SCRIPT, [this.streamKey], [this.group, ...ids]),
    );
  }

  /** Copies entries to the dead-letter stream (bounded), then acknowledges and deletes them. */
  async deadLetter(entries: readonly { id: string; entry?: JournalEntry }[], reason: string): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.client.pipeline();
    for (const { id, entry } of entries) {
      const fields: (string | Buffer)[] = ['id', id, 'reason', reason];
      if (entry) {
        fields.push('k', entry.key, 'op', entry.op, 'ver', String(entry.version));
        if (entry.op === 'put' && entry.body && entry.contentType !== undefined)
          fields.push('v', entry.body, 'ct', entry.contentType);
      }
      pipeline.xadd(this.deadLetterKey, 'MAXLEN', '~', DEAD_LETTER_MAX, '*', ...fields);
    }
    await this.call('dead-letter write-back entries', () => pipeline.exec());
    await this.ack(entries.map((e) => e.id));
  }

  /** The backlog and the age of its oldest entry, by Redis's clock. */
  async stats(): Promise<JournalStats> {
    const replies = await this.call('write-back stats', () =>
      this.client.multi().xlen(this.streamKey).xrange(this.streamKey, '-', '+', 'COUNT', 1).time().exec(),
    );
    const pending = Number(replies?.[0]?.[1] ?? 0);
    const first = (replies?.[1]?.[1] as [string, string[]][] | undefined)?.[0];
    const time = replies?.[2]?.[1] as [string, string] | undefined;
    const redisNowMs = time ? Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) : Date.now();
    return { pending, oldestMs: first ? streamIdMs(first[0]) : undefined, redisNowMs };
  }

  /** Removes consumers (other than this one) that hold nothing and have been idle for `idleMs`. */
  async removeIdleConsumers(idleMs: number): Promise<number> {
    const raw = await this.withGroup('list write-back consumers', () =>
      this.client.xinfo('CONSUMERS', this.streamKey, this.group),
    );
    let removed = 0;
    for (const flat of raw as unknown[][]) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]);
      const name = String(info.get('name'));
      if (name === this.consumer || Number(info.get('pending')) > 0 || Number(info.get('idle')) < idleMs) continue;
      await this.call('remove an idle consumer', () =>
        this.client.xgroup('DELCONSUMER', this.streamKey, this.group, name),
      );
      removed++;
    }
    return removed;
  }

  /**
   * Removes this sidecar's consumer from the group when it owns no pending entry (a clean stop after the
   * drain); true when removed. A consumer still owning entries stays, so that another sidecar claims them.
   */
  async removeOwnConsumer(): Promise<boolean> {
    const removed = await this.call('remove this write-back consumer', () =>
      runScript(this.client, REMOVE_CONSUMER_SCRIPT, [this.streamKey], [this.group, this.consumer]),
    );
    return Number(removed) === 1;
  }

  /** Runs a group command, creating the group first when needed (and again after Redis lost it). */
  private async withGroup<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (!this.groupReady) await this.ensureGroup();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOGROUP')) {
        // Redis restarted empty (or someone deleted the stream): recreate and try once more.
        this.groupReady = false;
        this.claimCursor = '0-0';
        await this.ensureGroup();
        return this.call(what, fn);
      }
      this.onError(err);
      throw toSidecarError(err, what);
    }
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return callRedis(what, fn, this.onError);
  }
}
