/**
 * Where a cache key's data lives in Redis, and which of two versions of a record wins. Pure; the one
 * exported place for record keys and version comparison (the write-back journal, the versioned records,
 * the L2 adapter, and any other reader of the records call these).
 *
 * Two layouts:
 *
 *   - **single** (standalone and replication topologies, unchanged for users who upgrade): the record of
 *     key `k` is `rc:k`; one write-back stream `ripplecache:write-back`; one version counter
 *     `ripplecache:version`. Kept as it was so that an upgrade finds its pending journal entries where it
 *     left them (no migration, nothing to drain).
 *
 *   - **bucketed** (`--redis-cluster`): a fixed number of buckets {@link CLUSTER_BUCKETS}; key `k` is in
 *     bucket `crc16(k) mod B`; bucket `b` has a hash tag `{t_b}` and holds every record of its keys
 *     (`rc:{t_b}k`), its own journal stream (`ripplecache:write-back:{t_b}`, dead letters
 *     `…:{t_b}:dead`) and its own version counter (`ripplecache:version:{t_b}`). Everything of a bucket
 *     is in one hash slot, so one Lua script can take a version, append the journal entry and store the
 *     record (Redis Cluster refuses scripts over keys of several slots), and a slot move (MIGRATE) carries
 *     the records, the journal and the counter together.
 *
 * The tags are chosen so that bucket `b`'s slot lies in the b-th of B equal slices of the 16384 slots
 * (`t_b = "<b>.<n>"` with the smallest n that lands there): shards that own equal slot ranges (as the
 * operator assigns them) get equal numbers of buckets, and a move of any slot range moves a proportional
 * share of buckets. B = 256 allows up to 256 shards with data on each, and keeps the flusher's idle
 * polling at 256 probes (XLEN) per sweep (5 s) per sidecar (bucket-schedule.ts).
 *
 * B cannot change without a migration: a key's bucket (hence its record key, journal and counter) is
 * `crc16(k) mod B`, so a different B would look for records and journal entries elsewhere. Changing it
 * would need a new layout name, readers of both, and the old streams drained first.
 */

/** Buckets of the cluster layout. A protocol constant: see the file header before changing it. */
export const CLUSTER_BUCKETS = 256;
/** Hash slots of Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** Record key prefix (common/src/protocol.ts RECORD_KEY_PREFIX); both layouts start with it. */
const RECORD_PREFIX = 'rc:';
const SINGLE_JOURNAL_KEY = 'ripplecache:write-back';
const SINGLE_VERSION_KEY = 'ripplecache:version';

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), the hash Redis Cluster uses for slots. */
export function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The hash slot of a Redis key, honouring `{hash tags}` as Redis Cluster does. */
export function keySlot(key: string | Buffer): number {
  const buf = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const open = buf.indexOf(0x7b); // {
  if (open >= 0) {
    const close = buf.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(buf.subarray(open + 1, close)) % CLUSTER_SLOTS;
  }
  return crc16(buf) % CLUSTER_SLOTS;
}

/** Where one bucket's data lives. */
export interface Bucket {
  readonly index: number;
  /** The hash tag with its braces (`{3.117}`), or '' in the single layout. */
  readonly tag: string;
  /** Hash slot of everything of the bucket (cluster layout); 0 in the single layout. */
  readonly slot: number;
  /** The write-back stream. Its dead letters are `<streamKey>:dead`. */
  readonly streamKey: string;
  /** The version counter. */
  readonly versionKey: string;
}

export interface KeyLayout {
  readonly name: 'single' | 'bucketed';
  readonly buckets: readonly Bucket[];
  /** The bucket of a cache key. */
  bucketOf(key: string): Bucket;
  /** The Redis key of a cache key's record. */
  recordKey(key: string): string;
}

const SINGLE_BUCKET: Bucket = {
  index: 0,
  tag: '',
  slot: 0,
  streamKey: SINGLE_JOURNAL_KEY,
  versionKey: SINGLE_VERSION_KEY,
};

/** The layout of standalone and replication Redis (the only one before Redis Cluster support). */
export const SINGLE_LAYOUT: KeyLayout = {
  name: 'single',
  buckets: [SINGLE_BUCKET],
  bucketOf: () => SINGLE_BUCKET,
  recordKey: (key) => RECORD_PREFIX + key,
};

/** The tag of bucket b of B: `<b>.<n>` with the smallest n whose slot is in the b-th slice. Pure. */
export function bucketTag(b: number, count: number): string {
  const lo = Math.floor((b * CLUSTER_SLOTS) / count);
  const hi = Math.floor(((b + 1) * CLUSTER_SLOTS) / count);
  for (let n = 0; ; n++) {
    const tag = `${b}.${n}`;
    const slot = keySlot(tag);
    if (slot >= lo && slot < hi) return tag;
  }
}

/** The cluster layout with `count` buckets (default {@link CLUSTER_BUCKETS}). */
export function bucketedLayout(count = CLUSTER_BUCKETS): KeyLayout {
  const buckets: Bucket[] = [];
  for (let b = 0; b < count; b++) {
    const t = bucketTag(b, count);
    buckets.push({
      index: b,
      tag: `{${t}}`,
      slot: keySlot(t),
      streamKey: `${SINGLE_JOURNAL_KEY}:{${t}}`,
      versionKey: `${SINGLE_VERSION_KEY}:{${t}}`,
    });
  }
  const bucketOf = (key: string): Bucket => buckets[crc16(Buffer.from(key, 'utf8')) % count] as Bucket;
  return {
    name: 'bucketed',
    buckets,
    bucketOf,
    recordKey: (key) => RECORD_PREFIX + bucketOf(key).tag + key,
  };
}

let cachedCluster: KeyLayout | undefined;

/** The layout for a sidecar: bucketed on Redis Cluster, single otherwise. */
export function keyLayout(cluster: boolean): KeyLayout {
  if (!cluster) return SINGLE_LAYOUT;
  cachedCluster ??= bucketedLayout();
  return cachedCluster;
}

/**
 * May a record at version `incoming` (a value when `incomingIsValue`) replace the stored one? The stored
 * record has version `stored` (0: none, or no version) and holds a value or is a tombstone. A value at n
 * replaces a record below n, or a tombstone at n (the tombstone of a write-around says "older than n are
 * stale"; the row at n is the truth); a tombstone at n replaces a record below n. The Lua `newer()` of
 * redis/versioned-records.ts is the same rule; this is the reference for readers outside Redis.
 */
export function isNewerVersion(
  incoming: number,
  incomingIsValue: boolean,
  stored: number,
  storedHasValue: boolean,
): boolean {
  if (incoming > stored) return true;
  return incoming === stored && incomingIsValue && !storedHasValue;
}
