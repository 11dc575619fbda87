/**
 * Versioned records in Redis: the guard that keeps Redis from ever going back to an older value than the
 * database holds, whatever order concurrent writers and read-through fills land in.
 *
 * Versions. One counter per CacheCluster (`ripplecache:version`, a plain string key) hands out versions
 * — on Redis Cluster one counter per bucket (`ripplecache:version:{tag}`, key-layout.ts), in the slot of
 * the bucket's records and journal, so that it moves with them when the slot moves:
 *
 *     version = max(microseconds of the primary's clock (TIME), previous version + 1)
 *
 * computed inside a Lua script, so that it is strictly increasing across every sidecar of the cluster and
 * in the same order as everything else the primary executes (a write-back journal entry is appended by
 * the same script that takes its version, so journal order and version order agree). Basing it on the
 * clock keeps it increasing even when Redis restarts empty (the counter is gone, the clock is not) and
 * across a failover to a replica whose copy of the counter lags. Versions are below 2^53 until the year
 * 2255, so they are exact in Lua doubles, JavaScript numbers and PostgreSQL bigint.
 *
 * On Redis Cluster a key's versions come from its bucket's counter only, so they are strictly increasing
 * per key (what the guard needs; versions of keys in different buckets are not comparable, and need not
 * be). Resharding moves the counter with its slot (same hash tag), so the next version on the new node
 * continues after the last; a failover to a replica whose counter lags is covered by the clock floor, as
 * on a replication primary.
 *
 * Records. The L2 format of `redis/redis-l2.ts` (hash `rc:<key>`, fields `v` and `ct`, TTL on the hash)
 * gains one field, `ver`: the version of the write (or of the database row) the value came from. A
 * *tombstone* is a hash without `v` and `ct`: readers that know nothing of versions see a miss, and a
 * fill older than the tombstone is refused. Two kinds:
 *
 *   - the tombstone of a DELETE also has `del`, the delete's version: the key is deleted, and readers
 *     answer 404 without asking the database — under write-back the database holds the deleted row until
 *     the delete is flushed (the tombstone has no TTL until then, like every record the journal wrote);
 *   - an *invalidation* tombstone (a write-around PUT, the cross-cluster bridge) has no `del`: readers go
 *     to the database. When it replaces a DELETE's tombstone it keeps that `del` (rows older than it are
 *     still the deleted ones) and, while the delete is not flushed, its pin (no TTL); settling the delete
 *     then gives it its TTL. Readers then read the database but take a row older than `del` as absent.
 *
 * A record is replaced only by a newer one:
 *
 *   - a value at version n replaces nothing, a record with ver < n, or an invalidation tombstone with
 *     ver = n (the tombstone of a write-around write says "values older than n are stale"; the row at n
 *     is the truth) — not a DELETE's tombstone at n (the row at n is the delete's);
 *   - a tombstone at version n replaces nothing or a record with ver < n.
 *
 * Records without `ver` (written with no origin configured) count as version 0. Every script that is
 * given an invalidation message publishes it whether or not it stored anything: the message carries the
 * sender's next sequence number, and a sequence number handed out but never published would look like a
 * lost message to every receiver.
 */
import type { Redis } from 'ioredis';
import { luaScript, runScript } from './prebuilt-script.js';
import { callRedis, type RedisClient } from './redis-client.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import { SINGLE_LAYOUT, type KeyLayout } from '../write/key-layout.js';

/** Field of the version in a record hash. */
export const FIELD_VERSION = 'ver';
/**
 * Field of a tombstone written by a DELETE: the delete's version. Such a tombstone means "deleted" (reads
 * answer 404 without asking the database); a tombstone without it means "invalidated, read the database"
 * (write-around PUT, the cross-cluster bridge). See the file header.
 */
export const FIELD_DELETED = 'del';
/** Default key of the version counter. Must not start with the record prefix `rc:`. */
export const DEFAULT_VERSION_KEY = 'ripplecache:version';
/**
 * Default life of a tombstone in Redis, ms. It must outlast any read-through in the air (a database read
 * started before the write it could otherwise overwrite in Redis).
 */
export const DEFAULT_TOMBSTONE_TTL_MS = 60_000;

/** Lua helpers shared by every script that writes records (this file and the write-back journal). */
export const LUA_PRELUDE = `
local function next_version(counter)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', counter) or '0')
  if v <= last then v = last + 1 end
  local s = string.format('%.0f', v)
  redis.call('SET', counter, s)
  return v, s
end
-- may a record at version v (a value when is_value) replace what rk holds? (versions are > 0; no record,
-- or one without a version, counts as version 0)
local function newer(rk, v, is_value)
  local cur = tonumber(redis.call('HGET', rk, '${FIELD_VERSION}') or '0')
  if v > cur then return true end
  -- a value at n replaces an invalidation tombstone at n (the row at n is the truth), never the tombstone
  -- of a delete at n (the row at n is the delete's)
  if v == cur and is_value and redis.call('HEXISTS', rk, 'v') == 0 then
    return tonumber(redis.call('HGET', rk, '${FIELD_DELETED}') or '0') ~= cur
  end
  return false
end
-- a value record has exactly the fields v, ct and ver: HSET replaces all of a value's, HDEL a tombstone's
-- deletion mark
local function set_value(rk, vs, body, ct, ttlms)
  redis.call('HSET', rk, 'v', body, 'ct', ct, '${FIELD_VERSION}', vs)
  redis.call('HDEL', rk, '${FIELD_DELETED}')
  if ttlms > 0 then redis.call('PEXPIRE', rk, ttlms) else redis.call('PERSIST', rk) end
end
-- del: the version of the delete this tombstone records ('' or nil: an invalidation tombstone). An
-- invalidation tombstone keeps the deletion mark of the record it replaces ("rows older than del are
-- deleted" stays true), and keeps it pinned (no TTL) when it was: a write-back delete not yet flushed.
local function set_tombstone(rk, vs, ttlms, del)
  local pinned = false
  if del == nil or del == '' then
    del = redis.call('HGET', rk, '${FIELD_DELETED}')
    if del then pinned = redis.call('PTTL', rk) == -1 end
  end
  redis.call('DEL', rk)
  if del then
    redis.call('HSET', rk, '${FIELD_VERSION}', vs, '${FIELD_DELETED}', del)
  else
    redis.call('HSET', rk, '${FIELD_VERSION}', vs)
  end
  if ttlms > 0 and not pinned then redis.call('PEXPIRE', rk, ttlms) end
end
-- a write at version vs that the database superseded (it already held vs or newer, e.g. a row the
-- application wrote itself): a record at vs or older is older than the database, so it is replaced by an
-- invalidation tombstone at vs with ttlms (readers go to the database, which fills the row's version; a
-- fill older than vs is refused); a newer record (a newer concurrent write) is left alone. The tombstone
-- has no deletion mark and no pin: every row the database can hold now is at vs or newer.
local function supersede(rk, vs, ttlms)
  if tonumber(redis.call('HGET', rk, '${FIELD_VERSION}') or '0') > tonumber(vs) then return false end
  redis.call('DEL', rk)
  redis.call('HSET', rk, '${FIELD_VERSION}', vs)
  if ttlms > 0 then redis.call('PEXPIRE', rk, ttlms) end
  return true
end
local function announce(channel, message)
  if message ~= '' then redis.call('PUBLISH', channel, message) end
end
`;

/** KEYS[1] counter → the new version as a decimal string. */
const NEXT_VERSION = `${LUA_PRELUDE}
local _, s = next_version(KEYS[1])
return s`;

/** KEYS[1] record; ARGV version, body, content type, ttl ms (0: none), channel, message → 1 stored, 0 not. */
const FILL = `${LUA_PRELUDE}
local v = tonumber(ARGV[1])
local stored = 0
if newer(KEYS[1], v, true) then
  set_value(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
  stored = 1
end
announce(ARGV[5], ARGV[6])
return stored`;

/**
 * KEYS[1] record; ARGV version, ttl ms, channel, message, deleted ('1': the tombstone of a DELETE, marked
 * with its version; '0': an invalidation) → 1 stored, 0 not.
 */
const TOMBSTONE = `${LUA_PRELUDE}
local v = tonumber(ARGV[1])
local stored = 0
if newer(KEYS[1], v, false) then
  set_tombstone(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[5] == '1' and ARGV[1] or '')
  stored = 1
end
announce(ARGV[3], ARGV[4])
return stored`;

/**
 * KEYS[1] record; ARGV version, ttl ms, channel, message → 1 replaced, 0 not (Redis holds something
 * newer). A write the database superseded (see `supersede` in the prelude); publishes either way.
 */
const SUPERSEDE = `${LUA_PRELUDE}
local stored = 0
if supersede(KEYS[1], ARGV[1], tonumber(ARGV[2])) then stored = 1 end
announce(ARGV[3], ARGV[4])
return stored`;

/**
 * KEYS one record per flushed write; ARGV tombstone ttl ms, with values (1|0), then per record: version,
 * ttl ms, kind ('v' value | 't' tombstone | 's' superseded)[, body, content type when with values and kind
 * 'v'] → per record 1 settled, 2 repaired, 3 a repair needs the value (call again with values), 0 left
 * alone (Redis holds something newer).
 *
 * Kind 's': the database did not apply the write, it held the same version or a newer one (a row the
 * application wrote itself, or a redelivered entry): a record at that version or older is replaced by an
 * invalidation tombstone (2: repaired, so that every L1 drops the key and the next read takes the row).
 *
 * Used by the write-back flusher once a write is in the database. A record the journal wrote has no TTL
 * until then (so that it cannot expire and let a read-through serve the older row); settling gives it its
 * TTL if it still holds that version. If the record is gone or older (it was invalidated with
 * `tier: all` or evicted, and perhaps a read-through refilled it from the older row meanwhile), the
 * flushed write is stored again: Redis then matches the database.
 */
const SETTLE = `${LUA_PRELUDE}
local function settle(rk, vs, ttl, kind, tombstone_ttl, body, ct)
  if kind == 's' then
    if supersede(rk, vs, tombstone_ttl) then return 2 end
    return 0
  end
  if redis.call('HGET', rk, '${FIELD_VERSION}') == vs then
    if ttl > 0 then redis.call('PEXPIRE', rk, ttl) end
    return 1
  end
  local v = tonumber(vs)
  if kind == 'v' then
    if newer(rk, v, true) then
      if body == nil then return 3 end
      set_value(rk, vs, body, ct, ttl)
      return 2
    end
  elseif newer(rk, v, false) then
    set_tombstone(rk, vs, tombstone_ttl, vs)
    return 2
  elseif redis.call('HGET', rk, '${FIELD_DELETED}') == vs and redis.call('HEXISTS', rk, 'v') == 0 then
    -- a later invalidation tombstone (the bridge) kept this delete's mark and pin: the delete is in the
    -- database now, the pin can go
    if ttl > 0 and redis.call('PTTL', rk) == -1 then redis.call('PEXPIRE', rk, ttl) end
    return 1
  end
  return 0
end
-- ARGV tombstone ttl ms, with values (1|0), then per record: version, ttl ms, kind[, body, ct]
local tombstone_ttl = tonumber(ARGV[1])
local with_values = ARGV[2] == '1'
local out = {}
local a = 3
for i = 1, #KEYS do
  local kind = ARGV[a + 2]
  local body, ct
  local step = 3
  if with_values and kind == 'v' then body, ct, step = ARGV[a + 3], ARGV[a + 4], 5 end
  out[i] = settle(KEYS[i], ARGV[a], tonumber(ARGV[a + 1]), kind, tombstone_ttl, body, ct)
  a = a + step
end
return out`;

/** One call per flushed batch: sent pre-encoded (prebuilt-script.ts), like the write-back append. */
const SETTLE_SCRIPT = luaScript(SETTLE);

interface ScriptedRedis {
  rcNextVersion(counter: string): Promise<string>;
  rcFill(
    rk: string,
    version: string,
    body: Buffer,
    contentType: string,
    ttlMs: number,
    channel: string,
    message: string,
  ): Promise<number>;
  rcTombstone(
    rk: string,
    version: string,
    ttlMs: number,
    channel: string,
    message: string,
    deleted: string,
  ): Promise<number>;
  rcSupersede(rk: string, version: string, ttlMs: number, channel: string, message: string): Promise<number>;
}

/** Defines the scripts on a client (idempotent; ioredis sends EVALSHA and falls back to EVAL once). */
export function defineRecordScripts(client: RedisClient): Redis & ScriptedRedis {
  const c = client as Redis & Partial<ScriptedRedis>;
  if (c.rcFill === undefined) {
    client.defineCommand('rcNextVersion', { numberOfKeys: 1, lua: NEXT_VERSION });
    client.defineCommand('rcFill', { numberOfKeys: 1, lua: FILL });
    client.defineCommand('rcTombstone', { numberOfKeys: 1, lua: TOMBSTONE });
  }
  if (c.rcSupersede === undefined) client.defineCommand('rcSupersede', { numberOfKeys: 1, lua: SUPERSEDE });
  return client as Redis & ScriptedRedis;
}

/** Where versions come from. */
export interface VersionSource {
  /** A version for a write of `key` (on Redis Cluster from the key's bucket counter). */
  nextVersion(key?: string): Promise<number>;
}

/**
 * Versions without Redis (L1-only mode with an origin): max(clock in µs, previous + 1), per process.
 * Only as good as the host clocks when several sidecars write the same origin.
 */
export class LocalVersionSource implements VersionSource {
  private last = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  nextVersion(): Promise<number> {
    this.last = Math.max(Math.floor(this.clock() * 1000), this.last + 1);
    return Promise.resolve(this.last);
  }
}

/** A flushed write: key, version, the record's TTL (ms, 0: none) and its value (absent: a delete). */
export interface SettleItem {
  readonly key: string;
  readonly version: number;
  readonly ttlMs: number;
  readonly value?: CacheValue;
  /**
   * The database did not apply the write (it held this version or a newer one): a record at this version
   * or older is replaced by an invalidation tombstone (see {@link VersionedRecords.supersede}).
   */
  readonly superseded?: boolean;
}

/** A record as stored, for inspection (tests, the flusher). */
export interface StoredRecord {
  /** 0 when the record has no `ver` field. */
  readonly version: number;
  /** Absent for a tombstone. */
  readonly value?: CacheValue;
  /** A tombstone's deletion mark: the version of the DELETE it records (absent: an invalidation). */
  readonly deleted?: number;
  /** Remaining TTL in ms; -1 when none. */
  readonly pttlMs: number;
}

export interface VersionedRecordsOptions {
  client: RedisClient;
  /** Invalidation channel of the CacheCluster. */
  channel: string;
  /** Record keys and version counters. Default {@link SINGLE_LAYOUT}. */
  layout?: KeyLayout;
  /** Default {@link DEFAULT_TOMBSTONE_TTL_MS}. */
  tombstoneTtlMs?: number;
  /** Called once for every failed Redis call (metrics). */
  onError?: (err: unknown) => void;
}

/** Version-guarded writes of records. Every call is one script (one round trip, atomic on the primary). */
export class VersionedRecords implements VersionSource {
  readonly tombstoneTtlMs: number;
  private readonly client: Redis & ScriptedRedis;
  private readonly channel: string;
  private readonly layout: KeyLayout;
  private readonly onError: (err: unknown) => void;

  constructor(options: VersionedRecordsOptions) {
    this.client = defineRecordScripts(options.client);
    this.channel = options.channel;
    this.layout = options.layout ?? SINGLE_LAYOUT;
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.onError = options.onError ?? (() => {});
  }

  /** A new version, greater than every version handed out before by any sidecar of the cluster. */
  async nextVersion(key = ''): Promise<number> {
    const counter = this.layout.bucketOf(key).versionKey;
    return Number(await this.call('take a version', () => this.client.rcNextVersion(counter)));
  }

  /**
   * Stores the value at `version` unless Redis holds a newer record; publishes `invalidation` (when
   * given) either way. Returns whether the value was stored.
   */
  async fill(key: string, value: CacheValue, ttlSeconds: number, version: number, invalidation = ''): Promise<boolean> {
    const stored = await this.call('versioned write', () =>
      this.client.rcFill(
        this.layout.recordKey(key),
        String(version),
        value.body,
        value.contentType,
        ttlSeconds > 0 ? ttlSeconds * 1000 : 0,
        this.channel,
        invalidation,
      ),
    );
    return stored === 1;
  }

  /**
   * Replaces the record by a tombstone at `version` unless Redis holds a newer one; publishes either way.
   * `deleted`: the tombstone of a DELETE (reads answer 404 without the database); otherwise an
   * invalidation (reads go to the database).
   */
  async tombstone(key: string, version: number, invalidation = '', deleted = false): Promise<boolean> {
    const stored = await this.call('versioned delete', () =>
      this.client.rcTombstone(
        this.layout.recordKey(key),
        String(version),
        this.tombstoneTtlMs,
        this.channel,
        invalidation,
        deleted ? '1' : '0',
      ),
    );
    return stored === 1;
  }

  /**
   * A write at `version` that the database superseded (it already held that version or a newer one, e.g.
   * a row the application wrote itself): when Redis holds a record at `version` or older — older than the
   * database — it is replaced by an invalidation tombstone at `version` (the tombstone TTL), so that the next
   * read loads the row from the database; a newer record is left alone. Publishes `invalidation` either
   * way. Returns whether the record was replaced.
   */
  async supersede(key: string, version: number, invalidation = ''): Promise<boolean> {
    const stored = await this.call('versioned invalidation', () =>
      this.client.rcSupersede(
        this.layout.recordKey(key),
        String(version),
        this.tombstoneTtlMs,
        this.channel,
        invalidation,
      ),
    );
    return stored === 1;
  }

  /**
   * After their writes reached the database: gives records that still hold the given versions their TTL,
   * and stores again the ones that are gone or older (see SETTLE). One script call (two when some need their
   * values). Returns the keys stored
   * again (their L1 copies must be invalidated).
   */
  async settle(items: readonly SettleItem[]): Promise<{ settled: number; repaired: string[] }> {
    if (items.length === 0) return { settled: 0, repaired: [] };
    if (this.layout.buckets.length > 1) {
      // Redis Cluster: one script per bucket (a script's keys must share a slot), all in the air at once.
      const groups = new Map<number, SettleItem[]>();
      for (const it of items) {
        const b = this.layout.bucketOf(it.key).index;
        const g = groups.get(b);
        if (g) g.push(it);
        else groups.set(b, [it]);
      }
      const results = await Promise.all([...groups.values()].map((g) => this.settleBucket(g)));
      return {
        settled: results.reduce((n, r) => n + r.settled, 0),
        repaired: results.flatMap((r) => r.repaired),
      };
    }
    return this.settleBucket(items);
  }

  /** settle() for items of one bucket. */
  private async settleBucket(items: readonly SettleItem[]): Promise<{ settled: number; repaired: string[] }> {
    // First without the values (the common case needs none), then with them for the records to repair.
    const first = await this.settleRound(items, false);
    const needValue = items.filter((_, i) => first[i] === 3);
    const second = needValue.length > 0 ? await this.settleRound(needValue, true) : [];
    return {
      settled: first.filter((r) => r === 1).length,
      repaired: [...items.filter((_, i) => first[i] === 2), ...needValue.filter((_, i) => second[i] === 2)].map(
        (it) => it.key,
      ),
    };
  }

  private async settleRound(items: readonly SettleItem[], withValues: boolean): Promise<number[]> {
    const keys: string[] = [];
    const args: (string | Buffer | number)[] = [this.tombstoneTtlMs, withValues ? '1' : '0'];
    for (const it of items) {
      keys.push(this.layout.recordKey(it.key));
      const kind = it.superseded === true ? 's' : it.value === undefined ? 't' : 'v';
      args.push(String(it.version), it.ttlMs, kind);
      if (withValues && kind === 'v' && it.value !== undefined) args.push(it.value.body, it.value.contentType);
    }
    const replies = (await this.call('settle records', () =>
      runScript(this.client, SETTLE_SCRIPT, keys, args),
    )) as number[];
    return replies.map(Number);
  }

  /** Reads a record with its version (tests and diagnostics). */
  async read(key: string): Promise<StoredRecord | null> {
    const rk = this.layout.recordKey(key);
    const replies = await this.call('read record', () =>
      this.client.multi().hmgetBuffer(rk, 'v', 'ct', FIELD_VERSION, FIELD_DELETED).pttl(rk).exec(),
    );
    const fields = replies?.[0]?.[1] as (Buffer | null)[] | undefined;
    const pttl = Number(replies?.[1]?.[1]);
    if (fields === undefined || fields.every((f) => f === null)) return null;
    const [body, ct, ver, del] = fields;
    return {
      version: ver ? Number(ver.toString()) : 0,
      ...(body && ct ? { value: { body, contentType: ct.toString() } } : {}),
      ...(!body && del ? { deleted: Number(del.toString()) } : {}),
      pttlMs: pttl,
    };
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return callRedis(what, fn, this.onError);
  }
}
