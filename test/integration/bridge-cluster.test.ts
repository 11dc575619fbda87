/**
 * The cross-cluster invalidation bridge with Redis Cluster on either side (issue 17): real redis-servers
 * (a Redis Cluster of 3 primaries in cluster mode, bootstrapped by test/harness/redis-cluster.ts, and a
 * standalone one), real sidecars (write-through over one real PostgreSQL), the bridge as a process.
 *
 * - standalone A → cluster B: a write through A turns B's older record into a tombstone at A's version
 *   (in the key's bucket, on whichever shard holds it), B's sidecar drops its L1 copy and reads the new
 *   value; a record B wrote after A's write is kept; with the bridge down B stays stale, and the bridge's
 *   start repairs B on every shard.
 * - cluster A → standalone B: the bridge subscribes to A's channel (messages numbered per bucket), reads
 *   the versions from A's buckets, and B gets the same guarantees.
 * - cluster A → cluster B: both at once.
 * Keys are chosen over many buckets (and so every shard), and several keys go in one relayed batch.
 */
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInvalidation, type InvalidationMessage } from '../../common/src/invalidation-message.js';
import { bucketedLayout } from '../../sidecar/src/write/key-layout.js';
import { startBridge, stopAllBridges, type BridgeProcess } from '../harness/bridge.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis-cluster.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

/** The propagation bound these tests hold the peer to, ms (as test/integration/bridge.test.ts). */
const BOUND_MS = 5000;
const CHANNEL = 'ripplecache:invalidations';
const layout = bucketedLayout();

let postgres: PostgresServer;
let admin: pg.Pool;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  admin = new pg.Pool({ connectionString: postgres.url, max: 2 });
  admin.on('error', () => {});
}, 120_000);

afterAll(async () => {
  await stopAllBridges();
  await stopAllSidecars();
  for (const close of closers.reverse()) await close();
  await admin?.end();
  await postgres?.stop();
});

/** Reads and writes records the way a test inspects them: one server, or a Cluster client. */
interface Side {
  name: string;
  url: string;
  cluster: boolean;
  sidecar: SidecarProcess;
  /** The record of a cache key, as stored (fields), in this side's key layout. */
  record(key: string): Promise<Record<string, string>>;
  /** Every message on this side's channel, from now on, parsed. */
  listen(): Promise<InvalidationMessage[]>;
}

function sidecarArgs(url: string, cluster: boolean, table: string): string[] {
  return [
    '--redis',
    url,
    ...(cluster ? ['--redis-cluster'] : []),
    '--origin',
    postgres.url,
    '--origin-table',
    table,
    '--write-policy',
    'write-through',
    '--l1-max-ttl',
    '60',
    '--redis-timeout-ms',
    '2000',
  ];
}

async function subscribe(url: string, seen: InvalidationMessage[]): Promise<void> {
  const sub = new Redis(url, { maxRetriesPerRequest: 1 });
  sub.on('error', () => {});
  closers.push(() => sub.disconnect());
  sub.on('message', (_c: string, raw: string) => seen.push(parseInvalidation(raw)));
  await sub.subscribe(CHANNEL);
}

async function standaloneSide(name: string, table: string): Promise<Side> {
  const redis: RedisProcess = await startRedis();
  closers.push(() => redis.stop());
  const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  raw.on('error', () => {});
  closers.push(() => raw.disconnect());
  const sidecar = await startSidecar({ name: `sidecar-${name}`, args: sidecarArgs(redis.url, false, table) });
  return {
    name,
    url: redis.url,
    cluster: false,
    sidecar,
    record: (key) => raw.hgetall(`rc:${key}`),
    listen: async () => {
      const seen: InvalidationMessage[] = [];
      await subscribe(redis.url, seen);
      return seen;
    },
  };
}

async function clusterSide(name: string, table: string): Promise<Side & { redisCluster: RedisCluster }> {
  const redisCluster = await startRedisCluster({ shards: 3, replicas: 0 });
  closers.push(() => redisCluster.stop());
  const seed = redisCluster.nodes[0]!;
  const raw = new Cluster([{ host: '127.0.0.1', port: seed.port }], { redisOptions: { maxRetriesPerRequest: 1 } });
  raw.on('error', () => {});
  closers.push(() => raw.disconnect());
  const sidecar = await startSidecar({ name: `sidecar-${name}`, args: sidecarArgs(redisCluster.seedUrl, true, table) });
  return {
    name,
    url: redisCluster.seedUrl,
    cluster: true,
    sidecar,
    redisCluster,
    record: (key) => raw.hgetall(layout.recordKey(key)),
    listen: async () => {
      // Subscribed on the last node: not the one the bridge's publishes are sent to, necessarily, and so
      // showing that a cluster-wide PUBLISH reaches it.
      const seen: InvalidationMessage[] = [];
      await subscribe(`redis://127.0.0.1:${redisCluster.nodes.at(-1)!.port}`, seen);
      return seen;
    },
  };
}

function bridgeArgs(from: Side, to: Side): string[] {
  return [
    '--cluster',
    `test/${from.name}`,
    '--redis',
    from.url,
    ...(from.cluster ? ['--redis-cluster'] : []),
    '--peer',
    `test/${to.name}=${to.url}`,
    ...(to.cluster ? ['--peer-cluster', `test/${to.name}`] : []),
  ];
}

/** `n` keys over at least `minBuckets` distinct buckets of the cluster layout. */
function spreadKeys(prefix: string, n: number): string[] {
  const keys = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  expect(new Set(keys.map((k) => layout.bucketOf(k).index)).size).toBeGreaterThan(n / 2);
  return keys;
}

function relayedKeys(seen: InvalidationMessage[], origin: string): Set<string> {
  const out = new Set<string>();
  for (const m of seen) if (m.origin === origin && 'keys' in m) for (const k of m.keys) out.add(k);
  return out;
}

/** Waits until B's channel carried a relay of every key from A. */
async function waitRelayed(what: string, A: Side, keys: readonly string[], seen: InvalidationMessage[]): Promise<void> {
  await waitFor(what, async () => keys.every((k) => relayedKeys(seen, `test/${A.name}`).has(k)), BOUND_MS, 20);
}

/** Runs `writes` with the bridge stopped (SIGSTOP), so that what they publish reaches it as one backlog. */
async function whilePaused(bridge: BridgeProcess, writes: () => Promise<void>): Promise<void> {
  bridge.kill('SIGSTOP');
  try {
    await writes();
  } finally {
    bridge.kill('SIGCONT');
  }
}

/**
 * Writes `<key>:0` through A, waits until the bridge relayed every key to B (so that no relay of these
 * writes is still to come), then has B read them (cached in B's L1 and L2). Clears `seen`.
 */
async function prime(A: Side, B: Side, keys: readonly string[], seen: InvalidationMessage[]): Promise<void> {
  for (const k of keys) expect((await A.sidecar.put(k, `${k}:0`)).status).toBe(204);
  await waitRelayed("the relay of every key's first write on B's channel", A, keys, seen);
  for (const k of keys) {
    await waitFor(`B reads ${k}:0`, async () => (await B.sidecar.get(k)).body === `${k}:0`, BOUND_MS, 10);
    expect((await B.sidecar.get(k)).tier).toBe('L1');
    expect(await B.record(k)).toMatchObject({ v: `${k}:0` });
  }
  seen.length = 0;
}

/** The scenario, for a writer A and a peer B, whichever is the Redis Cluster. */
function scenario(label: string, make: () => Promise<{ A: Side; B: Side }>): void {
  describe(label, () => {
    let A: Side;
    let B: Side;
    let bridge: BridgeProcess;

    beforeAll(async () => {
      ({ A, B } = await make());
      bridge = await startBridge({ args: bridgeArgs(A, B) });
    }, 180_000);

    afterAll(async () => {
      await bridge?.stop();
    });

    it("a write through A replaces B's older record by a tombstone at A's version; B reads the new value", async () => {
      const keys = spreadKeys(`${A.name}w`, 24);
      const seen = await B.listen();
      await prime(A, B, keys, seen);
      // The bridge paused: A's writes queue up in its socket and are relayed in one batch over many buckets.
      const aVersions = new Map<string, string>();
      await whilePaused(bridge, async () => {
        for (const k of keys) expect((await A.sidecar.put(k, `${k}:1`)).status).toBe(204);
        for (const k of keys) aVersions.set(k, (await A.record(k)).ver ?? '');
      });
      await waitRelayed("the relay of every key on B's channel", A, keys, seen);
      for (const k of keys) {
        // B's record is a tombstone at A's write's version: B's value is gone.
        expect(await B.record(k)).toEqual({ ver: aVersions.get(k) });
        // B's sidecar dropped its L1 copy (of `:0`, kept 60 s otherwise) and reads the new row.
        await waitFor(`B reads ${k}:1`, async () => (await B.sidecar.get(k)).body === `${k}:1`, BOUND_MS, 10);
      }
      // More than one key per relayed message: batches that span buckets were grouped per bucket.
      const batches = seen.filter((m) => m.origin === `test/${A.name}` && 'keys' in m && m.keys.length > 1);
      expect(batches.length).toBeGreaterThan(0);
      // A's messages were understood in order (on a Redis Cluster A: numbered per bucket), nothing failed,
      // and B was repaired once only, at the bridge's start.
      expect(await bridge.metric('ripplecache_bridge_sequence_gaps_total')).toBe(0);
      expect(await bridge.metric('ripplecache_bridge_received_messages_total', { kind: 'malformed' })).toBe(0);
      expect(await bridge.metric('ripplecache_bridge_errors_total')).toBe(0);
      expect(await bridge.metric('ripplecache_bridge_repairs_total', { peer: `test/${B.name}` })).toBe(1);
    });

    it('keeps a record B wrote after A (newer), and tombstones the older ones', async () => {
      const keys = spreadKeys(`${A.name}n`, 16);
      const newer = keys.filter((_, i) => i % 2 === 0);
      const older = keys.filter((_, i) => i % 2 === 1);
      const seen = await B.listen();
      await prime(A, B, keys, seen);
      const keptBefore = await bridge.metric('ripplecache_bridge_relayed_keys_total', { outcome: 'kept-newer' });
      const bVersions = new Map<string, string>();
      await whilePaused(bridge, async () => {
        for (const k of keys) expect((await A.sidecar.put(k, `${k}:a`)).status).toBe(204);
        // B writes half of them after A did: at later versions.
        for (const k of newer) expect((await B.sidecar.put(k, `${k}:b`)).status).toBe(204);
        for (const k of newer) bVersions.set(k, (await B.record(k)).ver ?? '');
      });
      await waitRelayed("the relay of every key on B's channel", A, keys, seen);
      for (const k of newer) {
        expect(await B.record(k)).toMatchObject({ v: `${k}:b`, ver: bVersions.get(k) });
        expect((await B.sidecar.get(k)).body).toBe(`${k}:b`);
      }
      for (const k of older) {
        expect(await B.record(k)).toEqual({ ver: (await A.record(k)).ver });
        await waitFor(`B reads ${k}:a`, async () => (await B.sidecar.get(k)).body === `${k}:a`, BOUND_MS, 10);
      }
      expect(
        (await bridge.metric('ripplecache_bridge_relayed_keys_total', { outcome: 'kept-newer' })) - keptBefore,
      ).toBe(newer.length);
    });

    it('bridge down: B stays stale; the restarted bridge repairs B and B reads every new value', async () => {
      const keys = spreadKeys(`${A.name}r`, 30);
      await prime(A, B, keys, await B.listen());
      expect(await bridge.signal('SIGKILL')).toBeNull();
      for (const k of keys) expect((await A.sidecar.put(k, `${k}:1`)).status).toBe(204);
      // Nothing relays: B still answers the old values.
      for (const k of keys) expect((await B.sidecar.get(k)).body).toBe(`${k}:0`);
      bridge = await startBridge({ args: bridgeArgs(A, B) });
      // The start repair dropped B's records older than A's "now", on every shard, and B's L1.
      expect(
        await bridge.metric('ripplecache_bridge_repair_dropped_records_total', { peer: `test/${B.name}` }),
      ).toBeGreaterThanOrEqual(keys.length);
      for (const k of keys) {
        await waitFor(`B reads ${k}:1`, async () => (await B.sidecar.get(k)).body === `${k}:1`, BOUND_MS, 10);
      }
    });
  });
}

scenario('standalone A → Redis Cluster B', async () => {
  const [A, B] = await Promise.all([standaloneSide('sa', 'bridge_cl_1'), clusterSide('cb', 'bridge_cl_1')]);
  return { A, B };
});

scenario('Redis Cluster A → standalone B', async () => {
  const [A, B] = await Promise.all([clusterSide('ca', 'bridge_cl_2'), standaloneSide('sb', 'bridge_cl_2')]);
  return { A, B };
});

scenario('Redis Cluster A → Redis Cluster B', async () => {
  const [A, B] = await Promise.all([clusterSide('cc', 'bridge_cl_3'), clusterSide('cd', 'bridge_cl_3')]);
  return { A, B };
});
