/**
 * Cross-pod consistency with real processes: one Redis primary, two replicas, four sidecars.
 * A, B, C use `--on-disconnect drop`; D uses `serve-stale`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

const CHANNEL = 'ripplecache:it-consistency';
let primary: RedisProcess;
let replicas: RedisProcess[] = [];
let redis: Redis;
let A: SidecarProcess, B: SidecarProcess, C: SidecarProcess, D: SidecarProcess;

async function replicaInSync(r: RedisProcess): Promise<void> {
  const c = new Redis(r.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await c.connect();
    await waitFor(
      `replica ${r.port} in sync`,
      async () => (await c.info('replication')).includes('master_link_status:up'),
      15_000,
      50,
    );
  } finally {
    c.disconnect();
  }
}

/** Publishes a raw message on the channel, as another sender (or the flush CronJob) would. */
const publish = (message: string) => redis.publish(CHANNEL, message);

beforeAll(async () => {
  primary = await startRedis();
  replicas = await Promise.all([
    startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }),
    // Writable, so that a test can make it diverge from the primary.
    startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port), '--replica-read-only', 'no'] }),
  ]);
  await Promise.all(replicas.map(replicaInSync));
  redis = new Redis(primary.port, '127.0.0.1');
  const common = ['--redis', primary.url, '--channel', CHANNEL, '--l1-max-ttl', '30', '--redis-timeout-ms', '500'];
  [A, B, C, D] = await Promise.all([
    startSidecar({ name: 'A', args: common }),
    // B names its replicas; the others discover them with INFO replication.
    startSidecar({ name: 'B', args: [...common, ...replicas.flatMap((r) => ['--redis-replica', r.url])] }),
    startSidecar({ name: 'C', args: common }),
    startSidecar({ name: 'D', args: [...common, '--on-disconnect', 'serve-stale'] }),
  ]);
}, 120_000);

afterAll(async () => {
  await stopAllSidecars();
  redis?.disconnect();
  await Promise.all([primary, ...replicas].filter(Boolean).map((r) => r.stop()));
});

/** Reads a key on a sidecar until it is in L1 with the expected body. */
async function warm(s: SidecarProcess, key: string, body: string): Promise<void> {
  await waitFor(
    `${s.name} holds ${key}=${body} in L1`,
    async () => {
      const r = await s.get(key);
      return r.status === 200 && r.body === body && r.tier === 'L1';
    },
    5000,
    10,
  );
}

describe('sidecar cross-pod consistency', () => {
  it('a PUT on A is visible on B, C and D once the invalidation arrives', async () => {
    await A.put('greeting', 'v1');
    for (const s of [B, C, D]) await warm(s, 'greeting', 'v1');
    const put = await A.put('greeting', 'v2');
    expect(put.status).toBe(204);
    const acked = performance.now();
    const seen: Record<string, number> = {};
    for (const s of [B, C, D]) {
      await waitFor(`${s.name} sees v2`, async () => (await s.get('greeting')).body === 'v2', 5000, 1);
      seen[s.name] = performance.now() - acked;
    }
    console.log(`[consistency] PUT on A visible on B/C/D after (ms, including polling): ${JSON.stringify(seen)}`);
    // And then from L1 again.
    for (const s of [B, C, D]) await warm(s, 'greeting', 'v2');
  });

  it('hammering one key from several sidecars: no read older than the last acknowledged write plus the measured propagation window', async () => {
    const key = 'hammer';
    await A.put(key, '0');
    for (const s of [B, C, D]) await warm(s, key, '0');

    const ack: number[] = [0]; // ack[v]: when the PUT of version v returned
    let writing = true;
    const writer = (async () => {
      const deadline = performance.now() + 5000;
      for (let v = 1; v <= 300 && performance.now() < deadline; v++) {
        const r = await A.put(key, String(v));
        expect(r.status).toBe(204);
        ack[v] = performance.now();
      }
      writing = false;
    })();

    type Read = { start: number; end: number; v: number; tier: string | undefined };
    // Two read loops per sidecar, so that concurrent misses also share flights.
    const readers = [B, B, C, C, D, D].map(async (s) => {
      const reads: Read[] = [];
      const deadline = performance.now() + 8000;
      while ((writing || reads.length === 0) && reads.length < 20_000 && performance.now() < deadline) {
        const start = performance.now();
        const r = await s.get(key);
        expect(r.status).toBe(200);
        reads.push({ start, end: performance.now(), v: Number(r.body), tier: r.tier });
      }
      return { name: s.name, reads };
    });
    await writer;
    const results = await Promise.all(readers);
    const last = ack.length - 1;
    expect(last).toBeGreaterThan(20);

    const staleness: number[] = [];
    for (const { name, reads } of results) {
      let prev = 0;
      for (const r of reads) {
        // Per reader, reads never go back in time.
        expect(r.v, `${name} went back from ${prev} to ${r.v}`).toBeGreaterThanOrEqual(prev);
        prev = r.v;
        const newer = ack[r.v + 1];
        if (newer !== undefined && newer < r.start) staleness.push(r.start - newer);
      }
    }
    staleness.sort((a, b) => a - b);
    const window = staleness.at(-1) ?? 0;
    const reads = results.reduce((n, r) => n + r.reads.length, 0);
    const l1Hits = results.reduce((n, r) => n + r.reads.filter((x) => x.tier === 'L1').length, 0);
    console.log(
      `[hammer] ${last} writes, ${reads} reads (${l1Hits} from L1), stale reads ${staleness.length}; ` +
        `propagation window measured: p50 ${(staleness[Math.floor(staleness.length / 2)] ?? 0).toFixed(1)} ms, ` +
        `max ${window.toFixed(1)} ms`,
    );
    // Every read returned at least the last version acknowledged `window` ms before it started, and the window
    // is invalidation propagation, not an L1 entry outliving a lost invalidation (l1.maxTTL is 30 s here).
    expect(window).toBeLessThan(2000);
    // After the writer stopped, every reader has the final version.
    for (const s of [B, C, D]) expect((await s.get(key)).body).toBe(String(last));
  });

  it('consistency=all lists every distinct value across the primary and its replicas', async () => {
    await A.put('doc', 'primary-value', { contentType: 'text/plain' });
    expect(await redis.wait(2, 2000)).toBe(2);
    let report = (await (await fetch(`${B.url}/v1/cache/doc?consistency=all`)).json()) as Record<string, any>;
    expect(report.consistent).toBe(true);
    expect(report.values).toHaveLength(1);
    expect(report.values[0].nodes).toHaveLength(3);

    // Make the writable replica diverge.
    const divergent = new Redis(replicas[1]!.port, '127.0.0.1');
    await divergent.hset('rc:doc', 'v', 'replica-value');
    divergent.disconnect();
    for (const s of [A, B]) {
      // A discovers replicas, B was told them
      report = (await (await fetch(`${s.url}/v1/cache/doc?consistency=all`)).json()) as Record<string, any>;
      expect(report.consistent).toBe(false);
      const byValue = Object.fromEntries(report.values.map((v: any) => [v.value, v.nodes]));
      expect(byValue['primary-value']).toHaveLength(2);
      expect(byValue['replica-value']).toEqual([`127.0.0.1:${replicas[1]!.port}`]);
      expect(report.nodes.map((n: any) => n.role).sort()).toEqual(['primary', 'replica', 'replica']);
    }
    const res = await fetch(`${A.url}/v1/cache/missing-everywhere?consistency=all`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).values).toEqual([]);
  });

  it("POST /v1/invalidate on A drops a key from every sidecar's L1", async () => {
    await A.put('inv', 'old');
    for (const s of [B, C, D]) await warm(s, 'inv', 'old');
    await redis.hset('rc:inv', 'v', 'changed-behind-the-back'); // no invalidation: L1s still say "old"
    expect((await B.get('inv')).body).toBe('old');
    const r = await A.invalidate({ keys: ['inv'] });
    expect(r.status).toBe(200);
    for (const s of [B, C, D]) {
      await waitFor(
        `${s.name} dropped inv`,
        async () => (await s.get('inv')).body === 'changed-behind-the-back',
        5000,
        5,
      );
    }
  });

  it("invalidate all (API and the scheduled flush message) drops every sidecar's L1; the flush job's seq 1 is never a gap", async () => {
    const before = await Promise.all([B, C, D].map((s) => s.metric('ripplecache_sidecar_invalidation_gaps_total')));
    for (const round of [1, 2, 3]) {
      await A.put('all', `old${round}`);
      for (const s of [B, C, D]) await warm(s, 'all', `old${round}`);
      await redis.hset('rc:all', 'v', `behind${round}`);
      if (round === 1) expect((await A.invalidate({ all: true })).status).toBe(200);
      else await publish('{"v":1,"sender":"flush-cronjob","seq":1,"all":true}');
      for (const s of [B, C, D]) {
        await waitFor(
          `${s.name} dropped L1 (round ${round})`,
          async () => (await s.get('all')).body === `behind${round}`,
          5000,
          5,
        );
      }
    }
    const after = await Promise.all([B, C, D].map((s) => s.metric('ripplecache_sidecar_invalidation_gaps_total')));
    expect(after).toEqual(before);
    expect(await B.metric('ripplecache_sidecar_l1_drops_total', { reason: 'invalidate-all' })).toBeGreaterThanOrEqual(
      3,
    );
  });

  it("a gap in a sender's sequence drops L1", async () => {
    await A.put('gap', 'old');
    await warm(B, 'gap', 'old');
    await publish('{"v":1,"sender":"test-sender","seq":1,"keys":["unrelated"]}');
    await redis.hset('rc:gap', 'v', 'new');
    const gaps = await B.metric('ripplecache_sidecar_invalidation_gaps_total');
    await publish('{"v":1,"sender":"test-sender","seq":4,"keys":["unrelated"]}'); // 2 and 3 were lost
    await waitFor(
      'B counted the gap',
      async () => (await B.metric('ripplecache_sidecar_invalidation_gaps_total')) === gaps + 1,
      5000,
      5,
    );
    expect((await B.get('gap')).body).toBe('new');
  });

  it('a malformed message is counted and drops L1', async () => {
    await A.put('bad', 'old');
    await warm(C, 'bad', 'old');
    await redis.hset('rc:bad', 'v', 'new');
    const malformed = await C.metric('ripplecache_sidecar_invalidations_malformed_total');
    await publish('{"v":1,"sender":"x","seq":"one"}');
    await waitFor(
      'C counted it',
      async () => (await C.metric('ripplecache_sidecar_invalidations_malformed_total')) === malformed + 1,
      5000,
      5,
    );
    expect((await C.get('bad')).body).toBe('new');
  });

  it('CLIENT KILL TYPE pubsub: B and D serve no stale L1 value afterwards', async () => {
    await A.put('killed', 'old');
    for (const s of [B, D]) await warm(s, 'killed', 'old');
    const lost = await Promise.all(
      [B, D].map((s) => s.metric('ripplecache_sidecar_l1_drops_total', { reason: 'subscription-lost' })),
    );
    const resub = await D.metric('ripplecache_sidecar_l1_drops_total', { reason: 'resubscribed' });
    const killed = await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(Number(killed)).toBeGreaterThanOrEqual(4);
    // Written while the subscriptions are down: its invalidation is lost for B and D.
    expect((await A.put('killed', 'new')).status).toBe(204);
    // B (drop) noticed and dropped L1; D (serve-stale) keeps L1 but answers from Redis while it is reachable,
    // and drops L1 when subscribed again.
    await waitFor(
      'B dropped L1',
      async () => (await B.metric('ripplecache_sidecar_l1_drops_total', { reason: 'subscription-lost' })) > lost[0]!,
      5000,
      5,
    );
    for (const s of [B, D]) {
      const r = await s.get('killed');
      expect(r.body, `${s.name} answered ${r.tier}`).toBe('new');
    }
    for (const s of [A, B, C, D]) await s.waitReady(10_000);
    // D (serve-stale) answers /readyz 200 while degraded, so being "ready" does not say it has subscribed again:
    // wait (bounded) for its drop on re-subscription.
    await waitFor(
      'D dropped L1 on re-subscribing',
      async () => (await D.metric('ripplecache_sidecar_l1_drops_total', { reason: 'resubscribed' })) > resub,
      10_000,
      5,
    );
    for (const s of [B, D]) expect((await s.get('killed')).body).toBe('new');
    // Subscribed again: invalidations flow.
    for (const s of [B, D]) await warm(s, 'killed', 'new');
    await A.put('killed', 'newer');
    for (const s of [B, D])
      await waitFor(`${s.name} sees newer`, async () => (await s.get('killed')).body === 'newer', 5000, 5);
  });

  it('DELETE on A, and invalidate with tier all, remove the key from every tier', async () => {
    await A.put('gone', 'x');
    for (const s of [B, C]) await warm(s, 'gone', 'x');
    expect((await A.del('gone')).status).toBe(204);
    expect(await redis.exists('rc:gone')).toBe(0);
    for (const s of [B, C]) await waitFor(`${s.name} 404`, async () => (await s.get('gone')).status === 404, 5000, 5);

    await A.put('gone2', 'y');
    for (const s of [B, C]) await warm(s, 'gone2', 'y');
    expect((await D.invalidate({ keys: ['gone2'], tier: 'all' })).status).toBe(200);
    expect(await redis.exists('rc:gone2')).toBe(0);
    for (const s of [B, C]) await waitFor(`${s.name} 404`, async () => (await s.get('gone2')).status === 404, 5000, 5);
  });

  it('stores the documented record: a hash rc:<key> with v, ct and the TTL on the hash', async () => {
    await A.put('format', '{"a":1}', { ttl: 120, contentType: 'application/json' });
    const h = await redis.hgetall('rc:format');
    expect(h).toEqual({ v: '{"a":1}', ct: 'application/json' });
    const pttl = await redis.pttl('rc:format');
    expect(pttl).toBeGreaterThan(110_000);
    expect(pttl).toBeLessThanOrEqual(120_000);
    const r = await B.get('format');
    expect(r.contentType).toBe('application/json');
  });
});
