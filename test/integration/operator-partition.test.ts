/**
 * Split brain of the operator itself: two operators with leader election, each reaching the API server
 * through its own TCP proxy, and each reaching the one redis-server that plays the CacheCluster's pod
 * through its own recording proxy (so every CONFIG SET can be attributed to the operator that sent it).
 * Freezing the leader's API proxy partitions it from the API server without closing anything. The leader
 * must stop writing and report `ripplecache_operator_leader 0` at its renew deadline and exit non-zero,
 * before its Lease can expire and the standby take over; the standby then applies a later eviction change
 * and nobody flips it back.
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvictionPolicy } from '../../operator/src/api/v1alpha1/types.js';
import { cacheCluster, cacheClusterYaml, inNamespace, withEviction, withTopology } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startTcpProxy, type ProxiedChunk, type TcpProxy } from '../harness/tcp-proxy.js';
import { progressLog, trackTempDir } from '../harness/tools.js';

const NS = 'default';
const LEASE = 'ripplecache-operator-leader';
const RENEW_DEADLINE_MS = 2000;
const log = progressLog('operator-partition');

let cp: ControlPlane;
let redis: RedisProcess;
let sim: PodSimulator;
const proxies: TcpProxy[] = [];
const operators: OperatorProcess[] = [];

/** A copy of the admin kubeconfig whose server is the proxy at `port` (same host, so TLS still verifies). */
function kubeconfigVia(port: number, dir: string, name: string): string {
  const kc = JSON.parse(readFileSync(cp.kubeconfigPath, 'utf8')) as {
    clusters: Array<{ cluster: { server: string } }>;
  };
  for (const c of kc.clusters) c.cluster.server = `https://127.0.0.1:${port}`;
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(path, JSON.stringify(kc), { mode: 0o600 });
  return path;
}

async function configGet(): Promise<{ maxmemory: number; policy: string }> {
  const r = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    const mm = (await r.call('CONFIG', 'GET', 'maxmemory')) as string[];
    const mp = (await r.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
    return { maxmemory: Number(mm[1]), policy: String(mp[1]) };
  } finally {
    r.disconnect();
  }
}

const evictYaml = (policy: EvictionPolicy, maxMemory: string) =>
  cacheClusterYaml(
    cacheCluster('evict', inNamespace(NS), withTopology('standalone'), withEviction({ policy, maxMemory })),
  );

/**
 * What one operator said about leading at one sample. Honest counting: an answer of 1 counts as leading;
 * 0 or a process that had exited before the request was sent count as not leading; an operator that is
 * still running but does not answer within 1 s counts as leading (we cannot show it was not).
 */
type GaugeSample = { state: 'answered'; value: number } | { state: 'exited' } | { state: 'unreachable' };

async function leaderGauge(op: OperatorProcess): Promise<GaugeSample> {
  if (op.proc.exited) return { state: 'exited' };
  try {
    const res = await fetch(op.metricsUrl, { signal: AbortSignal.timeout(1000) });
    const m = /^ripplecache_operator_leader (\S+)$/m.exec(await res.text());
    if (!m) return { state: 'unreachable' };
    return { state: 'answered', value: Number(m[1]) };
  } catch {
    return { state: 'unreachable' };
  }
}

const leads = (s: GaugeSample) => (s.state === 'answered' ? s.value === 1 : s.state === 'unreachable');

/** Times (when the whole command had reached the proxy) of every CONFIG SET in a recorded client stream. */
function configSets(chunks: ProxiedChunk[]): number[] {
  const byConn = new Map<number, ProxiedChunk[]>();
  for (const c of chunks) byConn.set(c.conn, [...(byConn.get(c.conn) ?? []), c]);
  const times: number[] = [];
  for (const list of byConn.values()) {
    const text = Buffer.concat(list.map((c) => c.data)).toString('latin1');
    const ends: number[] = [];
    let off = 0;
    for (const c of list) ends.push((off += c.data.length));
    for (const m of text.matchAll(/\*\d+\r\n\$6\r\nCONFIG\r\n\$3\r\nSET\r\n(?:\$\d+\r\n[^\r]*\r\n){2}/gi)) {
      const end = m.index + m[0].length;
      times.push(list[ends.findIndex((e) => e >= end)]!.at);
    }
  }
  return times.sort((a, b) => a - b);
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-partition-'));
  trackTempDir(dir);
  const api = new URL(cp.server);
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(['evict-0']));
  sim.start();
  for (const id of ['operator-a', 'operator-b']) {
    const apiProxy = await startTcpProxy({ host: '127.0.0.1', port: Number(api.port) });
    const redisProxy = await startTcpProxy({ host: '127.0.0.1', port: redis.port }, { record: true });
    proxies.push(apiProxy, redisProxy);
    const op = await startOperator({
      kubeconfigPath: kubeconfigVia(apiProxy.port, dir, id),
      identity: id,
      podAddresses: { [`${NS}/evict-0`]: `127.0.0.1:${redisProxy.port}` },
      extraArgs: ['--leader-elect=true', '--lease-duration-seconds', '3', '--resync-seconds', '1'],
      // The renew deadline through the environment (same as the flag): a build without the setting ignores
      // it instead of refusing to start, so this test also shows what that build does.
      env: { RIPPLECACHE_RENEW_DEADLINE_SECONDS: String(RENEW_DEADLINE_MS / 1000) },
    });
    operators.push(op);
    if (id === 'operator-a')
      await waitFor('operator-a to lead', async () => (await op.metric('ripplecache_operator_leader')) === 1, 30_000);
  }
});

afterAll(async () => {
  sim?.stop();
  for (const op of operators) await op.stop().catch(() => undefined);
  for (const p of proxies) await p.close().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
  await cp?.stop();
});

describe('operator partitioned from the API server', () => {
  it('a Lease request on a dead connection is abandoned after its time box; the leader keeps its Lease', async () => {
    const [a, b] = operators as [OperatorProcess, OperatorProcess];
    const apiProxyA = proxies[0]!;
    // Nothing else is going on yet (no CacheCluster): the next connection operator-a opens is a Lease request.
    apiProxyA.holdNext();
    await waitFor('operator-a to open a connection', async () => apiProxyA.held === 1, 10_000, 50);
    const heldAt = Date.now();
    const holders = new Set<string>();
    let renewedAfter = false;
    const gauges: Array<[number, number]> = [];
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    // Longer than the lease duration (3 s) plus the renew deadline: without the time box the request never
    // returns, the Lease is not renewed, and the standby takes it.
    while (Date.now() < heldAt + 6000) {
      const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: 'default' });
      holders.add(lease.spec?.holderIdentity ?? '');
      if (lease.spec?.renewTime && new Date(lease.spec.renewTime).getTime() > heldAt + 1000) renewedAfter = true;
      gauges.push([await a.metric('ripplecache_operator_leader'), await b.metric('ripplecache_operator_leader')]);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(apiProxyA.held).toBe(1);
    expect([...holders]).toEqual(['operator-a']);
    expect(renewedAfter).toBe(true);
    expect(gauges.length).toBeGreaterThan(10);
    expect(gauges.filter(([ga, gb]) => ga !== 1 || gb !== 0)).toEqual([]);
    expect(a.log()).toMatch(
      /"error":"(reading|updating) the Lease got no answer within 1000 ms","msg":"Lease update failed"/,
    );
  });

  it('steps down at its renew deadline, before the standby leads; never writes Redis after it', async () => {
    const [a, b] = operators as [OperatorProcess, OperatorProcess];
    const [apiProxyA, redisProxyA, , redisProxyB] = proxies as [TcpProxy, TcpProxy, TcpProxy, TcpProxy];
    const apply = await cp.kubectl(['apply', '-f', '-'], evictYaml('allkeys-lru', '32Mi'));
    expect(apply.code, apply.stderr).toBe(0);
    await waitFor(
      'operator-a to apply allkeys-lru 32Mi',
      async () => {
        const got = await configGet();
        return got.maxmemory === 32 * 1024 * 1024 && got.policy === 'allkeys-lru';
      },
      30_000,
      200,
    );
    expect(configSets(redisProxyA.sent()).length).toBeGreaterThan(0); // attribution works: A wrote these
    expect(await a.metric('ripplecache_operator_leader')).toBe(1);
    expect(await b.metric('ripplecache_operator_leader')).toBe(0);

    // Sample both gauges and the Lease every 200 ms for the rest of the test.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const samples: Array<{ at: number; a: GaugeSample; b: GaugeSample }> = [];
    let lastRenewByA: number | undefined;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const next = Date.now() + 200;
        const [ga, gb, lease] = await Promise.all([
          leaderGauge(a),
          leaderGauge(b),
          coordination.readNamespacedLease({ name: LEASE, namespace: 'default' }).catch(() => undefined),
        ]);
        samples.push({ at: Date.now(), a: ga, b: gb });
        if (lease?.spec?.holderIdentity === 'operator-a' && lease.spec.renewTime)
          lastRenewByA = new Date(lease.spec.renewTime).getTime();
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      }
    })();

    try {
      await new Promise((r) => setTimeout(r, 1000));
      const frozenAt = Date.now();
      apiProxyA.freeze();

      await waitFor(
        'operator-b to lead',
        async () => {
          const last = samples.at(-1);
          return last?.b.state === 'answered' && last.b.value === 1;
        },
        30_000,
        100,
      );
      const bLeadsAt = samples.at(-1)!.at;

      // The new leader applies a later change; nobody may flip it back.
      const change = await cp.kubectl(['apply', '-f', '-'], evictYaml('allkeys-lfu', '48Mi'));
      expect(change.code, change.stderr).toBe(0);
      const wanted = { maxmemory: 48 * 1024 * 1024, policy: 'allkeys-lfu' };
      await waitFor(
        'operator-b to apply allkeys-lfu 48Mi',
        async () => {
          const got = await configGet();
          return got.maxmemory === wanted.maxmemory && got.policy === wanted.policy;
        },
        30_000,
        200,
      );
      // Five more seconds (five resyncs of a stale leader, were one still writing), sampled every 200 ms.
      const seen: Array<{ maxmemory: number; policy: string }> = [];
      for (const until = Date.now() + 5000; Date.now() < until;) {
        seen.push(await configGet());
        await new Promise((r) => setTimeout(r, 200));
      }
      sampling = false;
      await sampler;
      const t = (ms: number | undefined) => (ms === undefined ? '-' : `${((ms - frozenAt) / 1000).toFixed(1)}s`);
      const aStopped = samples.find((s) => s.at > frozenAt && !leads(s.a))?.at;
      log(
        `froze operator-a's API link; its last stored renewal ${t(lastRenewByA)}, it reported not leading at ` +
          `${t(aStopped)}, operator-b leading at ${t(bLeadsAt)}; ${samples.length} samples, ` +
          `${samples.filter((s) => leads(s.a) && leads(s.b)).length} with two leaders; ` +
          `CONFIG SETs by operator-a after the freeze: ${configSets(redisProxyA.sent()).filter((x) => x > frozenAt).length}`,
      );

      // Never two leaders at once, by the honest count above; and the hand-over was observed.
      const both = samples.filter((s) => leads(s.a) && leads(s.b));
      expect(samples.length).toBeGreaterThan(20);
      expect(both, `samples with two leaders: ${JSON.stringify(both.slice(0, 5))}`).toEqual([]);
      expect(samples.some((s) => s.at >= frozenAt && s.a.state === 'answered' && s.a.value === 1)).toBe(true);
      expect(bLeadsAt).toBeGreaterThan(frozenAt);

      // The setting stayed as the new leader applied it.
      expect(seen.length).toBeGreaterThan(10);
      expect(seen.filter((s) => s.maxmemory !== wanted.maxmemory || s.policy !== wanted.policy)).toEqual([]);

      // No CONFIG SET from operator-a after its renew deadline, bounded by the last renewal of it that the
      // API server stored (its last *successful* one cannot be later) plus the renew deadline.
      expect(lastRenewByA).toBeDefined();
      expect(lastRenewByA!).toBeLessThanOrEqual(frozenAt);
      const deadlineA = lastRenewByA! + RENEW_DEADLINE_MS;
      const lateWritesA = configSets(redisProxyA.sent()).filter((t) => t > deadlineA);
      expect(lateWritesA, `CONFIG SETs by operator-a after ${new Date(deadlineA).toISOString()}`).toEqual([]);
      // ... while the recording does see the new leader's writes.
      expect(configSets(redisProxyB.sent()).filter((t) => t > bLeadsAt).length).toBeGreaterThan(0);

      // It stepped down by exiting non-zero, saying why; the Lease is the new leader's.
      await waitFor('operator-a to exit', async () => a.proc.exited, 10_000, 100);
      expect(a.proc.child.exitCode, a.log()).not.toBe(0);
      expect(a.log()).toMatch(/renew deadline/);
      const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: 'default' });
      expect(lease.spec?.holderIdentity).toBe('operator-b');
    } finally {
      sampling = false;
      await sampler;
      apiProxyA.thaw();
    }
  });
});
