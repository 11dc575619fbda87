/**
 * The cross-cluster invalidation bridge (issue 17) with real processes: one redis-server per CacheCluster,
 * real sidecars (write-through over one real PostgreSQL origin), and the bridge itself as a process.
 *
 * - 1,000 writes through A, each read through B until it shows the new value: p50/p99 of propagation are
 *   printed, and B never goes back to an older value once it showed the new one.
 * - Three clusters, each the peer of the two others (a full mesh), and three in a ring where each lists
 *   only its successor (relayed over two hops): every write reaches each other cluster exactly once and
 *   never comes back (keys counted on every channel), carrying the writer's version.
 * - The bridge SIGKILLed while writes go on (B shown stale meanwhile), B's Redis restarted: once the bridge
 *   is back, B reads every key at the last value A acknowledged.
 * - A peer record newer than the relayed write is kept; an older one is replaced by a tombstone.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridge, stopAllBridges, type BridgeProcess } from '../harness/bridge.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';
import { parseInvalidation, type InvalidationMessage } from '../../common/src/invalidation-message.js';

/** The propagation bound these tests hold B to, ms (README: cross-cluster consistency). */
const BOUND_MS = 5000;

let postgres: PostgresServer;
let admin: pg.Pool;
const redises: RedisProcess[] = [];
const clients: Redis[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  admin = new pg.Pool({ connectionString: postgres.url, max: 2 });
  admin.on('error', () => {});
});

afterAll(async () => {
  await stopAllBridges();
  await stopAllSidecars();
  for (const c of clients) c.disconnect();
  await admin?.end();
  await Promise.all(redises.map((r) => r.stop()));
  await postgres?.stop();
});

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

interface Cluster {
  name: string;
  redis: RedisProcess;
  sidecar: SidecarProcess;
  raw: Redis;
}

/** One "CacheCluster": its own redis-server and a sidecar (write-through unless told) on the shared table. */
async function cluster(name: string, table: string, policy = 'write-through'): Promise<Cluster> {
  const redis = await startRedis();
  redises.push(redis);
  const sidecar = await startSidecar({ name: `sidecar-${name}`, args: sidecarArgs(redis, table, policy) });
  return { name, redis, sidecar, raw: client(redis.url) };
}

function sidecarArgs(redis: RedisProcess, table: string, policy: string): string[] {
  return [
    '--redis',
    redis.url,
    '--origin',
    postgres.url,
    '--origin-table',
    table,
    '--write-policy',
    policy,
    '--write-back-flush-interval-ms',
    '100',
    '--l1-max-ttl',
    '60',
    '--redis-timeout-ms',
    '1000',
  ];
}

function bridgeArgs(from: Cluster, to: Cluster[]): string[] {
  return [
    '--cluster',
    `test/${from.name}`,
    '--redis',
    from.redis.url,
    // Peers named by their clusters' names, as the operator does: what relaying over several hops compares.
    ...to.flatMap((p) => ['--peer', `test/${p.name}=${p.redis.url}`]),
  ];
}

/** Every message on a cluster's channel, parsed, in arrival order. */
function listen(c: Cluster): InvalidationMessage[] {
  const seen: InvalidationMessage[] = [];
  const sub = client(c.redis.url);
  void sub.subscribe('ripplecache:invalidations');
  sub.on('message', (_channel: string, raw: string) => seen.push(parseInvalidation(raw)));
  return seen;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

describe('bridge A → B', () => {
  let A: Cluster;
  let B: Cluster;
  let bridge: BridgeProcess;

  beforeAll(async () => {
    [A, B] = await Promise.all([cluster('a', 'bridge_ab'), cluster('b', 'bridge_ab')]);
    bridge = await startBridge({ args: bridgeArgs(A, [B]) });
  });

  it('1,000 writes through A: B reads the new value after the bound, never the old one once seen', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `p${i}`);
    const propagation: number[] = [];
    let staleReadsBeforeNew = 0;
    for (let i = 0; i < 1000; i++) {
      const key = keys[i % keys.length]!;
      // B holds the previous value in L1 and L2 (or misses, on the first round).
      await B.sidecar.get(key);
      const value = `${key}:${i}`;
      const put = await A.sidecar.put(key, value);
      expect(put.status).toBe(204);
      const acked = performance.now();
      for (;;) {
        const r = await B.sidecar.get(key);
        if (r.body === value) break;
        staleReadsBeforeNew++;
        if (performance.now() - acked > BOUND_MS)
          throw new Error(`B still reads "${r.body}" for ${key} ${BOUND_MS} ms after "${value}" was acknowledged`);
      }
      propagation.push(performance.now() - acked);
      // Once B showed the new value it never goes back.
      expect((await B.sidecar.get(key)).body).toBe(value);
    }
    propagation.sort((x, y) => x - y);
    const p50 = percentile(propagation, 50);
    const p99 = percentile(propagation, 99);
    console.log(
      `cross-cluster propagation over 1000 writes: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${propagation.at(-1)?.toFixed(2)} ms; reads of the old value before the new one: ${staleReadsBeforeNew}`,
    );
    expect(propagation).toHaveLength(1000);
    expect(await bridge.metric('ripplecache_bridge_relayed_keys_total', { peer: 'test/b' })).toBeGreaterThanOrEqual(
      1000,
    );
    expect(await bridge.metric('ripplecache_bridge_errors_total')).toBe(0);
  });

  it('keeps a peer record newer than the relayed write, and tombstones an older one', async () => {
    // Both keys cached in B at old values.
    for (const k of ['newer', 'older']) {
      expect((await A.sidecar.put(k, `${k}:0`)).status).toBe(204);
      await waitFor(`B reads ${k}:0`, async () => (await B.sidecar.get(k)).body === `${k}:0`, BOUND_MS, 10);
    }
    const seen = listen(B);
    await new Promise((r) => setTimeout(r, 200)); // the subscription is in place
    // The bridge is paused: A's write is acknowledged, its message waits in the bridge's socket, and B
    // writes "newer" meanwhile, at a later version.
    let versions: { a: number; b: number } | undefined;
    bridge.kill('SIGSTOP');
    try {
      expect((await A.sidecar.put('newer', 'from-a')).status).toBe(204);
      expect((await A.sidecar.put('older', 'from-a')).status).toBe(204);
      expect((await B.sidecar.put('newer', 'from-b')).status).toBe(204);
      // Read while the bridge is still paused: what each cluster wrote, before any relay.
      versions = { a: Number(await A.raw.hget('rc:newer', 'ver')), b: Number(await B.raw.hget('rc:newer', 'ver')) };
    } finally {
      bridge.kill('SIGCONT');
    }
    const { a: aVersion, b: bVersion } = versions;
    expect(bVersion).toBeGreaterThan(aVersion);
    await waitFor(
      'the relay of "newer" and "older" on B\'s channel',
      async () =>
        seen.some((m) => m.origin === 'test/a' && 'keys' in m && m.keys.includes('newer')) &&
        seen.some((m) => m.origin === 'test/a' && 'keys' in m && m.keys.includes('older')),
      BOUND_MS,
      20,
    );
    // B's newer record is untouched, and B reads it.
    expect(await B.raw.hgetall('rc:newer')).toMatchObject({ v: 'from-b', ver: String(bVersion) });
    expect((await B.sidecar.get('newer')).body).toBe('from-b');
    // B's older record became a tombstone at A's version: B reads the database.
    const olderA = await A.raw.hget('rc:older', 'ver');
    expect(await B.raw.hgetall('rc:older')).toEqual({ ver: olderA });
    expect((await B.sidecar.get('older')).body).toBe('from-a');
    expect(
      await bridge.metric('ripplecache_bridge_relayed_keys_total', { peer: 'test/b', outcome: 'kept-newer' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('three clusters', () => {
  /** Waits until no bridge repairs any more (the start repairs, and those forwarded on) and all are ready. */
  async function settled(bridges: BridgeProcess[]): Promise<void> {
    let last = -1;
    await waitFor(
      'the bridges to finish their start repairs',
      async () => {
        await Promise.all(bridges.map((b) => b.waitReady()));
        const n = (
          await Promise.all(bridges.map((b) => b.metric('ripplecache_bridge_messages_total', { kind: 'all' })))
        ).reduce((a, b) => a + b, 0);
        const same = n === last;
        last = n;
        return same;
      },
      30_000,
      1000,
    );
  }

  it.each([
    ['each the peer of the two others (full mesh)', 'm', false],
    ['in a ring, each listing only its successor', 'r', true],
  ])('%s: each write reaches each other cluster exactly once, and never comes back', async (_what, tag, ring) => {
    const cs = await Promise.all([1, 2, 3].map((n) => cluster(`${tag}${n}`, `bridge_three_${tag}`)));
    const peersOf = (i: number) => (ring ? [cs[(i + 1) % cs.length]!] : cs.filter((_, j) => j !== i));
    const bridges = await Promise.all(cs.map((c, i) => startBridge({ args: bridgeArgs(c, peersOf(i)) })));
    await settled(bridges);
    const seen = new Map(cs.map((c) => [c.name, listen(c)]));
    await new Promise((r) => setTimeout(r, 200)); // the subscriptions are in place
    const writes = 40;
    for (let i = 0; i < writes; i++) {
      for (const c of cs) expect((await c.sidecar.put(`${c.name}-k${i}`, `v${i}`)).status).toBe(204);
    }
    /** Keys relayed into `into` from `origin`, counted per key. */
    const relayed = (into: string, origin: string) => {
      const counts = new Map<string, number>();
      for (const m of seen.get(into)!) {
        if (m.origin !== `test/${origin}` || !('keys' in m)) continue;
        for (const k of m.keys) counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      return counts;
    };
    const expected = cs.length * (cs.length - 1) * writes;
    const total = () =>
      cs.reduce(
        (n, into) =>
          n + cs.reduce((m, from) => m + [...relayed(into.name, from.name).values()].reduce((a, b) => a + b, 0), 0),
        0,
      );
    await waitFor(`${expected} relayed keys`, async () => total() >= expected, 30_000, 50);
    await new Promise((r) => setTimeout(r, 1000)); // anything extra (a loop, a duplicate) would arrive now
    for (const into of cs) {
      for (const from of cs) {
        const counts = relayed(into.name, from.name);
        if (from === into) {
          expect(counts.size, `keys relayed back into ${into.name}`).toBe(0);
          continue;
        }
        expect(counts.size, `${from.name} → ${into.name}`).toBe(writes);
        for (let i = 0; i < writes; i++)
          expect(counts.get(`${from.name}-k${i}`), `${from.name}-k${i} in ${into.name}`).toBe(1);
      }
      // No repair (invalidate-all) was needed meanwhile.
      expect(seen.get(into.name)!.filter((m) => 'all' in m)).toHaveLength(0);
    }
    expect(total()).toBe(expected);
    // Each cluster holds the writer's own version for the other clusters' keys (a tombstone at it, or the
    // value read through since), also where the write came over two hops.
    for (const from of cs) {
      const key = `rc:${from.name}-k${writes - 1}`;
      const version = await from.raw.hget(key, 'ver');
      expect(Number(version)).toBeGreaterThan(0);
      for (const into of cs.filter((c) => c !== from))
        expect(await into.raw.hget(key, 'ver'), `${key} in ${into.name}`).toBe(version);
    }
    const forwarded = await Promise.all(
      bridges.map((b) => b.metric('ripplecache_bridge_received_messages_total', { kind: 'forwarded' })),
    );
    const messages = await Promise.all(
      bridges.map((b) => b.metric('ripplecache_bridge_messages_total', { kind: 'keys' })),
    );
    console.log(
      `three clusters (${ring ? 'ring' : 'full mesh'}): ${expected} relayed keys in ${messages.reduce((a, b) => a + b, 0)} messages, ${forwarded.reduce((a, b) => a + b, 0)} of them received and forwarded`,
    );
    // Forwarding happens in the ring only: in the full mesh the writer's bridge reaches everyone.
    if (ring) expect(forwarded.every((n) => n > 0)).toBe(true);
    else expect(forwarded).toEqual([0, 0, 0]);
    for (const b of bridges) await b.stop();
  });
});

describe('every write policy of the writing cluster', () => {
  it.each([
    ['write-back', 'wb'],
    ['write-around', 'wa'],
  ])('%s in A: B reads each new value within the bound and never goes back', async (policy, tag) => {
    const table = `bridge_${tag}`;
    const [A, B] = await Promise.all([cluster(`${tag}a`, table, policy), cluster(`${tag}b`, table)]);
    const bridge = await startBridge({ args: bridgeArgs(A, [B]) });
    const keys = Array.from({ length: 20 }, (_, i) => `${tag}${i}`);
    const propagation: number[] = [];
    for (let i = 0; i < 200; i++) {
      const key = keys[i % keys.length]!;
      await B.sidecar.get(key); // B caches the previous value (or a miss)
      const value = `${key}:${i}`;
      expect((await A.sidecar.put(key, value)).status).toBe(204);
      const acked = performance.now();
      for (;;) {
        const r = await B.sidecar.get(key);
        if (r.body === value) break;
        if (performance.now() - acked > BOUND_MS)
          throw new Error(`${policy}: B still reads "${r.body}" for ${key} ${BOUND_MS} ms after "${value}"`);
        await new Promise((res) => setTimeout(res, 5));
      }
      propagation.push(performance.now() - acked);
      expect((await B.sidecar.get(key)).body).toBe(value);
    }
    propagation.sort((x, y) => x - y);
    console.log(
      `${policy} in A: propagation to B over 200 writes p50 ${percentile(propagation, 50).toFixed(1)} ms, p99 ${percentile(propagation, 99).toFixed(1)} ms`,
    );
    expect(
      await bridge.metric('ripplecache_bridge_relayed_keys_total', { peer: `test/${tag}b` }),
    ).toBeGreaterThanOrEqual(200);
    expect(await bridge.metric('ripplecache_bridge_errors_total')).toBe(0);
    await bridge.stop();
  });
});

describe('faults', () => {
  it('bridge SIGKILLed and the peer Redis restarted while writes go on: B is fresh once the bridge is back', async () => {
    const [A, B] = await Promise.all([cluster('fa', 'bridge_faults'), cluster('fb', 'bridge_faults')]);
    const args = bridgeArgs(A, [B]);
    let bridge = await startBridge({ args });
    const keys = Array.from({ length: 20 }, (_, i) => `f${i}`);
    const last = new Map<string, number>();
    let n = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const key = keys[n % keys.length]!;
        const i = ++n;
        const r = await A.sidecar.put(key, `${key}:${i}`);
        if (r.status === 204) last.set(key, i);
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    const expectFresh = async (what: string) => {
      // Every key read in B at the value A last acknowledged before the read began, within the bound.
      for (const key of keys) {
        const want = last.get(key) ?? 0;
        await waitFor(
          `${what}: B reads ${key} at ≥ ${want}`,
          async () => {
            const r = await B.sidecar.get(key);
            return r.status === 200 && Number(r.body.split(':')[1]) >= want;
          },
          BOUND_MS,
          20,
        );
      }
    };
    try {
      await new Promise((r) => setTimeout(r, 500));
      await expectFresh('bridge up');
      expect(await bridge.signal('SIGKILL')).toBe(null);
      // Without the bridge B stays stale: its cached copy outlives A's new writes.
      const probe = keys[0]!;
      const cached = (await B.sidecar.get(probe)).body;
      await waitFor(`a new write of ${probe} in A`, async () => `${probe}:${last.get(probe)}` !== cached, 10_000, 10);
      expect((await B.sidecar.get(probe)).body).toBe(cached);
      await new Promise((r) => setTimeout(r, 500));
      // B's Redis restarted while the bridge is down.
      await B.redis.kill();
      await B.redis.start();
      await B.sidecar.waitReady();
      for (const key of keys) await B.sidecar.get(key); // B caches whatever it reads now
      bridge = await startBridge({ args, port: bridge.port });
      await expectFresh('bridge back after SIGKILL');
      // B's Redis restarted again, now with the bridge running: it repairs B when B is back.
      const repairs = await bridge.metric('ripplecache_bridge_repairs_total');
      await B.redis.kill();
      await new Promise((r) => setTimeout(r, 300));
      await B.redis.start();
      await B.sidecar.waitReady();
      await bridge.waitReady();
      expect(await bridge.metric('ripplecache_bridge_repairs_total')).toBeGreaterThan(repairs);
      await expectFresh('B Redis restarted under a running bridge');
    } finally {
      writing = false;
      await writer;
    }
    // Writes stopped: B reads exactly the last acknowledged value of every key.
    for (const key of keys) {
      const want = `${key}:${last.get(key)}`;
      await waitFor(`B reads ${want}`, async () => (await B.sidecar.get(key)).body === want, BOUND_MS, 20);
    }
    await bridge.stop();
  });
});
