/**
 * Redis killed under load (SIGKILL), then restarted empty on the same port.
 * A: `--on-disconnect drop`; B: `serve-stale`; W: a third sidecar that writes as soon as Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type CacheResponse, type SidecarProcess } from '../harness/sidecar.js';

let primary: RedisProcess;
let A: SidecarProcess, B: SidecarProcess, W: SidecarProcess;
const KEYS = Array.from({ length: 10 }, (_, i) => `k${i}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  primary = await startRedis();
  const common = [
    '--redis',
    primary.url,
    '--channel',
    'ripplecache:it-outage',
    '--l1-max-ttl',
    '60',
    '--redis-timeout-ms',
    '200',
  ];
  [A, B, W] = await Promise.all([
    startSidecar({ name: 'A', args: [...common, '--on-disconnect', 'drop'] }),
    startSidecar({ name: 'B', args: [...common, '--on-disconnect', 'serve-stale'] }),
    startSidecar({ name: 'W', args: common }),
  ]);
}, 120_000);

afterAll(async () => {
  await stopAllSidecars();
  await primary?.stop();
});

type Sample = CacheResponse & { who: 'A' | 'B'; key: string; start: number; end: number };

describe('sidecar with Redis killed under load', () => {
  it('fails fast, serves L1 only as the mode allows, recovers, and never hides a newer value behind an old L1 entry', async () => {
    for (const k of KEYS) expect((await W.put(k, 'old')).status).toBe(204);
    for (const s of [A, B])
      for (const k of KEYS) {
        await waitFor(`${s.name} has ${k} in L1`, async () => (await s.get(k)).tier === 'L1', 5000, 5);
      }

    // Load: two loops per sidecar, bounded in count and time.
    const samples: Sample[] = [];
    let loading = true;
    const loadDeadline = performance.now() + 40_000;
    const loops = (['A', 'A', 'B', 'B'] as const).map(async (who, n) => {
      const s = who === 'A' ? A : B;
      for (let i = n; loading && samples.length < 40_000 && performance.now() < loadDeadline; i++) {
        const key = KEYS[i % KEYS.length]!;
        const start = performance.now();
        let r: CacheResponse;
        try {
          r = await s.get(key, 5000);
        } catch (err) {
          r = {
            status: 0,
            body: String(err),
            tier: undefined,
            contentType: undefined,
            code: 'ClientTimeout',
            ms: performance.now() - start,
          };
        }
        samples.push({ ...r, who, key, start, end: performance.now() });
        await sleep(2);
      }
    });

    await sleep(300);
    const killedAt = performance.now();
    await primary.kill();

    // Both notice: A is not ready, B declares degraded mode.
    await waitFor('A not ready', async () => (await A.readyz()).status === 503, 10_000, 20);
    await waitFor('B degraded', async () => (await B.readyz()).body.status === 'degraded', 10_000, 20);
    // Writes need Redis: 503 quickly.
    const put = await A.put('k0', 'during-outage', { timeoutMs: 5000 });
    expect(put.status).toBe(503);
    expect(put.code).toBe('RedisUnavailable');
    expect(put.ms).toBeLessThan(2000);
    // A miss needs Redis too, in both modes.
    for (const s of [A, B]) {
      const miss = await s.get('never-cached', 5000);
      expect(miss.status).toBe(503);
      expect(miss.ms).toBeLessThan(2000);
    }
    expect((await B.readyz()).status).toBe(200); // degraded mode is declared, so B stays ready
    await sleep(1000);

    // Redis comes back empty; W writes a new value as soon as it can, possibly before A and B resubscribed.
    const restartedAt = performance.now();
    await primary.start();
    await waitFor('W can write', async () => (await W.put('k0', 'new')).status === 204, 15_000, 10);
    const newAckedAt = performance.now();
    await A.waitReady(15_000);
    await waitFor('B ready (subscribed again)', async () => (await B.readyz()).body.status === 'ready', 15_000, 20);
    const recoveredAt = performance.now();
    await sleep(300);
    loading = false;
    await Promise.all(loops);

    const during = (who: string) => samples.filter((s) => s.who === who && s.start > killedAt && s.end < restartedAt);
    const summary = (list: Sample[]) => {
      const counts: Record<string, number> = {};
      for (const s of list)
        counts[`${s.status} ${s.tier ?? s.code ?? ''}`.trim()] =
          (counts[`${s.status} ${s.tier ?? s.code ?? ''}`.trim()] ?? 0) + 1;
      return counts;
    };
    const maxMs = Math.max(...samples.map((s) => s.ms));
    console.log(
      `[outage] ${samples.length} requests; slowest ${maxMs.toFixed(1)} ms; A recovered ${(recoveredAt - restartedAt).toFixed(0)} ms after restart`,
    );
    console.log(
      `[outage] during the outage A: ${JSON.stringify(summary(during('A')))} B: ${JSON.stringify(summary(during('B')))}`,
    );

    // No hangs: every request answered, well within the client's 5 s limit.
    expect(samples.filter((s) => s.status === 0)).toEqual([]);
    expect(maxMs).toBeLessThan(3000);

    // A (drop): once it noticed the loss (its first non-200), no L1 answer until it was ready again, and
    // never the old value after the restart (Redis came back empty; "old" exists only in L1s).
    const aFirstError = samples.find((s) => s.who === 'A' && s.start > killedAt && s.status !== 200);
    expect(aFirstError?.status).toBe(503);
    expect(aFirstError?.code).toBe('RedisUnavailable');
    const aAfter = samples.filter((s) => s.who === 'A' && s.start > aFirstError!.end);
    expect(aAfter.filter((s) => s.status === 200 && s.body === 'old')).toEqual([]);
    expect(aAfter.filter((s) => s.tier === 'L1' && s.end < restartedAt)).toEqual([]);

    // B (serve-stale): L1 hits are served during the outage, all marked stale; misses are 503.
    const bFirstSign = samples.find(
      (s) => s.who === 'B' && s.start > killedAt && (s.tier === 'L1-STALE' || s.status !== 200),
    );
    const bDuring = during('B').filter((s) => s.start > bFirstSign!.end);
    expect(bDuring.filter((s) => s.tier === 'L1-STALE').length).toBeGreaterThan(0);
    expect(bDuring.filter((s) => !(s.tier === 'L1-STALE' || s.status === 503))).toEqual([]);
    const bAfterNoticed = samples.filter((s) => s.who === 'B' && s.start > bFirstSign!.end);
    expect(bAfterNoticed.filter((s) => s.body === 'old' && s.tier !== 'L1-STALE')).toEqual([]);

    // The value W wrote during the outage is never hidden behind an old L1 entry: after it was acknowledged,
    // no unmarked "old" for k0 anywhere, and nothing stale at all once a sidecar is subscribed again.
    const k0After = samples.filter((s) => s.key === 'k0' && s.start > newAckedAt);
    expect(k0After.filter((s) => s.body === 'old' && s.tier !== 'L1-STALE')).toEqual([]);
    expect(samples.filter((s) => s.start > recoveredAt && (s.body === 'old' || s.tier === 'L1-STALE'))).toEqual([]);

    // Recovered: fresh values, the restarted (empty) Redis's misses, and L1 fills again.
    for (const s of [A, B]) {
      expect((await s.get('k0')).body).toBe('new');
      expect((await s.get('k5')).status).toBe(404);
      await waitFor(`${s.name} fills L1 again`, async () => (await s.get('k0')).tier === 'L1', 5000, 5);
      expect(await s.metric('ripplecache_sidecar_redis_up')).toBe(1);
      expect(await s.metric('ripplecache_sidecar_redis_errors_total')).toBeGreaterThan(0);
    }
    expect(
      await A.metric('ripplecache_sidecar_l1_drops_total', { reason: 'subscription-lost' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await B.metric('ripplecache_sidecar_l1_drops_total', { reason: 'resubscribed' })).toBeGreaterThanOrEqual(1);
  });

  it('a frozen Redis (SIGSTOP: no FIN, no answers) is noticed by the time box and the heartbeat', async () => {
    await A.waitReady();
    await waitFor('B ready', async () => (await B.readyz()).body.status === 'ready', 15_000, 20);
    await W.put('frozen', 'before');
    for (const s of [A, B])
      await waitFor(`${s.name} has it in L1`, async () => (await s.get('frozen')).tier === 'L1', 5000, 5);
    const drops = await A.metric('ripplecache_sidecar_l1_drops_total', { reason: 'subscription-lost' });
    process.kill(primary.pid, 'SIGSTOP');
    try {
      const frozenAt = performance.now();
      // Requests that need Redis answer 503 within about the time box (200 ms), never hang.
      const miss = await A.get('not-there', 5000);
      expect(miss.status).toBe(503);
      expect(miss.ms).toBeLessThan(2000);
      // The heartbeat (PING every second, 200 ms time box) notices the dead subscription; A drops L1.
      await waitFor(
        'A dropped L1',
        async () => (await A.metric('ripplecache_sidecar_l1_drops_total', { reason: 'subscription-lost' })) > drops,
        10_000,
        20,
      );
      console.log(`[frozen] A noticed the frozen Redis after ${(performance.now() - frozenAt).toFixed(0)} ms`);
      expect((await A.get('frozen', 5000)).status).toBe(503);
      expect((await A.readyz()).status).toBe(503);
      // B (serve-stale) answers from L1, marked stale, once Redis fails to answer.
      await waitFor('B unsubscribed', async () => (await B.readyz()).body.subscribed === false, 10_000, 20);
      const stale = await B.get('frozen', 5000);
      expect(stale.tier).toBe('L1-STALE');
      expect(stale.body).toBe('before');
      expect(stale.ms).toBeLessThan(2000);
    } finally {
      process.kill(primary.pid, 'SIGCONT');
    }
    await A.waitReady(15_000);
    await waitFor('B ready', async () => (await B.readyz()).body.status === 'ready', 15_000, 20);
    for (const s of [A, B]) {
      const r = await s.get('frozen');
      expect(r.status).toBe(200);
      expect(r.tier).not.toBe('L1-STALE');
    }
  });
});
