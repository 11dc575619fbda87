/**
 * The bridge's Lua scripts, on the record format and version rules of `../redis/versioned-records.ts`
 * (hash `rc:<key>` with `v`, `ct`, `ver`; a tombstone is a hash with only `ver`; a record is replaced only
 * by a newer one). The `newer` and `set_tombstone` helpers are that file's, so that a relayed invalidation
 * obeys exactly the rule a local delete obeys.
 */
import type { RedisClient } from '../redis/redis-client.js';
import { FIELD_VERSION, LUA_PRELUDE } from '../redis/versioned-records.js';

/**
 * On a peer. KEYS the records; ARGV tombstone ttl ms, channel, message, then one version per key → per key
 * 1 invalidated, 0 left alone (the peer holds a newer record). On a Redis Cluster peer it runs once per
 * bucket with an empty message (nothing published), and the batch's message is published after the last
 * (bridge-redis.ts).
 *
 * A key at version n > 0 becomes a tombstone at n when the peer's record is older (or absent): readers
 * there miss and read the database, and a read-through fill older than n, in the air at that moment, is
 * refused. A record at n or newer is never touched. Version 0 means the local cluster has no versions (no
 * origin configured): the record is deleted. The message is published whatever was stored, in the same
 * script, so that the peer's sidecars drop their L1 copies right after the records changed.
 */
const RELAY = `${LUA_PRELUDE}
local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local vs = ARGV[i + 3]
  local v = tonumber(vs)
  if v == 0 then
    redis.call('DEL', KEYS[i])
    out[i] = 1
  elseif newer(KEYS[i], v, false) then
    set_tombstone(KEYS[i], vs, ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
announce(ARGV[2], ARGV[3])
return out`;

/**
 * On a peer, during a repair. KEYS records (one SCAN page); ARGV threshold → records deleted. Every record
 * (value or tombstone) with a version below the threshold and a TTL goes; newer ones stay. Records without
 * a TTL stay too, as in the flush job (operator/src/desired/flush-cron-job.ts): they are the peer's own
 * write-back writes not yet in its database, which deleting would let a read fill from the older row.
 */
const DROP_OLDER = `
local threshold = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  if redis.call('TYPE', KEYS[i]).ok == 'hash' then
    local cur = tonumber(redis.call('HGET', KEYS[i], '${FIELD_VERSION}') or '0')
    if cur < threshold and redis.call('PTTL', KEYS[i]) >= 0 then n = n + redis.call('DEL', KEYS[i]) end
  end
end
return n`;

/**
 * On the local cluster. KEYS the records, then the version counter → per record its version, or (record
 * gone, or without a version) the counter's value, which no version handed out so far exceeds; '0' when
 * neither exists (a cluster without versions).
 */
const LOCAL_VERSIONS = `
local counter = redis.call('GET', KEYS[#KEYS]) or '0'
local out = {}
for i = 1, #KEYS - 1 do
  local v = redis.call('HGET', KEYS[i], '${FIELD_VERSION}')
  if not v or v == '0' then v = counter end
  out[i] = v
end
return out`;

/**
 * On the local cluster. KEYS[1] the version counter → max(the primary's clock in µs, the counter): at
 * least the version of every write the cluster has acknowledged so far.
 */
const VERSION_NOW = `
local t = redis.call('TIME')
local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last > v then v = last end
return string.format('%.0f', v)`;

export interface BridgeScripts {
  rcBridgeRelay(...args: (string | number)[]): Promise<number[]>;
  rcBridgeDropOlder(...args: (string | number)[]): Promise<number>;
  rcBridgeLocalVersions(...args: (string | number)[]): Promise<string[]>;
  rcBridgeVersionNow(counter: string): Promise<string>;
}

/**
 * Defines the scripts on a client (idempotent): one server, or a Redis Cluster client, which sends each
 * call to the primary of its first key's slot (every key of a call must then be in that slot:
 * record-groups.ts).
 */
export function defineBridgeScripts<C extends RedisClient>(client: C): C & BridgeScripts {
  const c = client as C & Partial<BridgeScripts>;
  if (c.rcBridgeRelay === undefined) {
    // numberOfKeys is given per call (the first argument) for the scripts that take many keys.
    client.defineCommand('rcBridgeRelay', { lua: RELAY });
    client.defineCommand('rcBridgeDropOlder', { lua: DROP_OLDER });
    client.defineCommand('rcBridgeLocalVersions', { lua: LOCAL_VERSIONS });
    client.defineCommand('rcBridgeVersionNow', { numberOfKeys: 1, lua: VERSION_NOW });
  }
  return client as C & BridgeScripts;
}
