/**
 * `npm run bench:failover`: failover time — from the primary's death (SIGKILL of its redis-server) to the first
 * write acknowledged by the new primary as a client sees it — p50/p99 over BENCH_FAILOVER_RUNS runs (default
 * 10), for the operator-led failover and for Redis Sentinel (Debian's redis-sentinel, its documented minimal
 * set-up of 3 sentinels, quorum 2) with its default `down-after-milliseconds` (30000) and a tuned one
 * (BENCH_FAILOVER_SENTINEL_DOWN_MS, default 1000), measured in the same run on the same topology (one primary,
 * two replicas, loopback). Runs of the three set-ups alternate, so that noise from the rest of the machine falls
 * on all of them alike.
 *
 * The client: for the operator, a sidecar (write-back, durability replicated, PostgreSQL origin) reaching
 * Redis through the client Service (the kube-proxy stand-in over the real EndpointSlices of a test control
 * plane; simulated pods); for Sentinel, ioredis with its Sentinel support doing what the sidecar's write path
 * does (the write, then WAIT 1 1000: acknowledged only when a replica has it). One writer sends a write every
 * 10 ms (each waiting for its answer); the failover time is from the kill to the answer of the first write
 * sent after the kill and acknowledged. Every acknowledged write is checked on the new primary afterwards: the
 * number lost must be 0. After each run the old primary is restarted (empty) and must rejoin as a replica.
 *
 * The machine's load (/proc/loadavg) is printed before and after: this bench shares its cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withReplicas,
  withTopology,
} from '../test/fixtures/cache-cluster.js';
import { startControlPlane } from '../test/harness/control-plane.js';
import { startOperator } from '../test/harness/operator.js';
import { PodSimulator } from '../test/harness/pod-simulator.js';
import { freePort, waitFor } from '../test/harness/ports.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { startServiceProxy } from '../test/harness/service-proxy.js';
import { startSidecar, stopAllSidecars } from '../test/harness/sidecar.js';

const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 10);
const TUNED_DOWN_MS = Number(process.env.BENCH_FAILOVER_SENTINEL_DOWN_MS ?? 1000);
const WRITE_EVERY_MS = 10;
const NS = 'default';
const NAME = 'bench';

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:failover] ${line}\n`);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** A set-up under test: kills its primary and measures until the first acknowledged write after it. */
interface Target {
  name: string;
  /** One acknowledged-or-not write; true when acknowledged. */
  write(key: string, value: string): Promise<boolean>;
  /** The current primary's redis-server and a client on it (for the lost-write check). */
  primary(): Promise<{ proc: RedisProcess; client: Redis }>;
  /** A key as the set-up stores it, read on `client`. */
  read(client: Redis, key: string): Promise<string | null>;
  /** Restarts the killed one and waits until it is a replica again. */
  rejoin(killed: RedisProcess): Promise<void>;
  close(): Promise<void>;
}

interface RunResult {
  seconds: number;
  acknowledged: number;
  lost: number;
}

async function run(t: Target, round: number): Promise<RunResult> {
  const acked = new Map<string, string>();
  let stop = false;
  let killedAt = Number.POSITIVE_INFINITY;
  let firstAfter: number | undefined;
  let n = 0;
  const writer = (async () => {
    while (!stop) {
      const key = `r${round}-k${n % 200}`;
      const value = `v${n++}`;
      const sent = performance.now();
      const ok = await t.write(key, value).catch(() => false);
      if (ok) {
        acked.set(key, value);
        if (sent > killedAt && firstAfter === undefined) firstAfter = performance.now();
      }
      await sleep(WRITE_EVERY_MS);
    }
  })();
  await sleep(500 + Math.random() * 500);
  const { proc } = await t.primary();
  killedAt = performance.now();
  await proc.kill();
  const deadline = Date.now() + 120_000;
  while (firstAfter === undefined && Date.now() < deadline) await sleep(20);
  await sleep(300);
  stop = true;
  await writer;
  if (firstAfter === undefined) throw new Error(`${t.name}: no write acknowledged within 120 s of the kill`);
  const { client } = await t.primary();
  let lost = 0;
  for (const [k, v] of acked) if ((await t.read(client, k)) !== v) lost++;
  await t.rejoin(proc);
  return { seconds: (firstAfter - killedAt) / 1000, acknowledged: acked.size, lost };
}

// ---- Operator-led ------------------------------------------------------------------------------------

async function operatorTarget(): Promise<Target> {
  const [cp, pgServer] = await Promise.all([
    startControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller'] }),
    startPostgres(),
  ]);
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const primary = await startRedis();
  const redis = [primary];
  for (let i = 1; i < 3; i++)
    redis.push(await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }));
  const addresses = Object.fromEntries(redis.map((r, i) => [`${NAME}-${i}`, { host: '127.0.0.1', port: r.port }]));
  const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(Object.keys(addresses)), addresses, { node: 'sim' });
  sim.start(200);
  const operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'bench-failover',
    podAddresses: Object.fromEntries(redis.map((r, i) => [`${NS}/${NAME}-${i}`, `127.0.0.1:${r.port}`])),
  });
  await cp.kubectl(
    ['apply', '-f', '-'],
    cacheClusterYaml(cacheCluster(NAME, inNamespace(NS), withTopology('replication'), withReplicas(2))),
  );
  const labels = async () =>
    Object.fromEntries(
      (
        await core.listNamespacedPod({ namespace: NS, labelSelector: `cache.ripplecache.io/cluster=${NAME}` })
      ).items.map((p) => [p.metadata!.name!, p.metadata?.labels?.['cache.ripplecache.io/role']]),
    );
  await waitFor('the primary labelled', async () => (await labels())[`${NAME}-0`] === 'primary', 120_000, 250);
  const service = await startServiceProxy({
    kubeconfigPath: cp.kubeconfigPath,
    namespace: NS,
    service: NAME,
    podAddresses: addresses,
  });
  const sidecar = await startSidecar({
    args: [
      '--redis',
      `redis://127.0.0.1:${service.port}`,
      '--origin',
      pgServer.url,
      '--origin-table',
      'bench_failover',
      '--write-policy',
      'write-back',
      '--durability',
      'replicated',
      '--durability-timeout-ms',
      '1000',
      '--redis-timeout-ms',
      '1000',
    ],
  });
  const clients = redis.map((r) => {
    const c = new Redis({ host: '127.0.0.1', port: r.port, lazyConnect: true, retryStrategy: () => 200 });
    c.on('error', () => undefined);
    return c;
  });
  const currentPrimary = async () => {
    const l = await labels();
    const pod = Object.keys(l).find((p) => l[p] === 'primary');
    if (pod) return Number(pod.split('-').at(-1));
    const cc = JSON.parse((await cp.kubectl(['get', 'cc', NAME, '-n', NS, '-o', 'json'])).stdout);
    return Number(String(cc.status.primary).split('-').at(-1));
  };
  return {
    name: 'operator',
    write: async (k, v) => (await sidecar.put(k, v, { timeoutMs: 3000 })).status === 204,
    read: async (c, k) => c.hget(`rc:${k}`, 'v'),
    primary: async () => {
      const i = await currentPrimary();
      return { proc: redis[i]!, client: clients[i]! };
    },
    rejoin: async (killed) => {
      await killed.start();
      const pod = `${NAME}-${redis.indexOf(killed)}`;
      await waitFor(`${pod} back as a replica`, async () => (await labels())[pod] === 'replica', 120_000, 200);
    },
    close: async () => {
      await stopAllSidecars();
      for (const c of clients) c.disconnect();
      await service.close();
      sim.stop();
      await operator.stop();
      await Promise.all([...redis.map((r) => r.stop()), pgServer.stop()]);
      await cp.stop();
    },
  };
}

// ---- Redis Sentinel ----------------------------------------------------------------------------------

async function sentinelTarget(downAfterMs: number): Promise<Target> {
  const primary = await startRedis();
  const redis = [primary];
  for (let i = 1; i < 3; i++)
    redis.push(await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }));
  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-sentinel-'));
  const sentinels: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    const conf = join(dir, `sentinel-${i}.conf`);
    // The minimal set-up of the Sentinel documentation: 3 sentinels, quorum 2.
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds mymaster ${downAfterMs}`,
        'sentinel failover-timeout mymaster 60000',
        'sentinel parallel-syncs mymaster 1',
        '',
      ].join('\n'),
    );
    sentinels.push(spawn('redis-sentinel', [conf], { stdio: 'ignore' }));
  }
  const client = new Redis({
    sentinels: ports.map((port) => ({ host: '127.0.0.1', port })),
    name: 'mymaster',
    maxRetriesPerRequest: 1,
    commandTimeout: 1000,
    retryStrategy: () => 50,
    sentinelRetryStrategy: () => 50,
  });
  client.on('error', () => undefined);
  const clients = redis.map((r) => {
    const c = new Redis({ host: '127.0.0.1', port: r.port, lazyConnect: true, retryStrategy: () => 200 });
    c.on('error', () => undefined);
    return c;
  });
  const sentinel = new Redis({ host: '127.0.0.1', port: ports[0]!, retryStrategy: () => 200 });
  sentinel.on('error', () => undefined);
  await waitFor(
    'the sentinels to see both replicas and each other',
    async () => {
      const m = (await sentinel.call('SENTINEL', 'MASTER', 'mymaster')) as string[];
      const f = new Map(Array.from({ length: m.length / 2 }, (_, i) => [m[2 * i], m[2 * i + 1]]));
      return f.get('num-slaves') === '2' && f.get('num-other-sentinels') === '2';
    },
    60_000,
    200,
  );
  const currentPrimary = async () => {
    const [, port] = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')) as [string, string];
    return redis.findIndex((r) => r.port === Number(port));
  };
  return {
    name: `sentinel ${downAfterMs} ms`,
    write: async (k, v) => {
      await client.set(k, v);
      return Number(await client.call('WAIT', '1', '1000')) >= 1;
    },
    read: async (c, k) => c.get(k),
    primary: async () => {
      const i = await currentPrimary();
      return { proc: redis[i]!, client: clients[i]! };
    },
    rejoin: async (killed) => {
      await killed.start();
      const c = clients[redis.indexOf(killed)]!;
      // Sentinel reconfigures a returning old master as a replica of the new one.
      await waitFor(
        'the old master back as a replica',
        async () => /master_link_status:up/.test(String(await c.info('replication'))),
        120_000,
        200,
      );
    },
    close: async () => {
      client.disconnect();
      sentinel.disconnect();
      for (const c of clients) c.disconnect();
      for (const s of sentinels) s.kill('SIGTERM');
      await Promise.all(redis.map((r) => r.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  log(`load before: ${loadavg()} (${availableParallelism()} cores)`);
  const targets = [await operatorTarget(), await sentinelTarget(30_000), await sentinelTarget(TUNED_DOWN_MS)];
  const results = new Map<string, RunResult[]>(targets.map((t) => [t.name, []]));
  try {
    for (let r = 0; r < RUNS; r++) {
      // Rotate the order of the set-ups in each round.
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(r + i) % targets.length]!;
        const res = await run(t, r);
        results.get(t.name)!.push(res);
        log(
          `run ${r + 1}/${RUNS} ${t.name}: ${res.seconds.toFixed(2)} s, ${res.acknowledged} acknowledged, ${res.lost} lost`,
        );
      }
    }
  } finally {
    for (const t of targets) await t.close().catch(() => undefined);
  }
  out(`Failover time, primary SIGKILL -> first write acknowledged by the new primary (${RUNS} runs each)`);
  out('set-up                      p50 s    p99 s    min s    max s    acknowledged  lost');
  for (const [name, rs] of results) {
    const s = rs.map((x) => x.seconds);
    out(
      `${name.padEnd(26)} ${percentile(s, 50).toFixed(2).padStart(6)} ${percentile(s, 99).toFixed(2).padStart(8)} ` +
        `${Math.min(...s)
          .toFixed(2)
          .padStart(8)} ${Math.max(...s)
          .toFixed(2)
          .padStart(8)} ` +
        `${String(rs.reduce((a, x) => a + x.acknowledged, 0)).padStart(13)} ${String(rs.reduce((a, x) => a + x.lost, 0)).padStart(5)}`,
    );
  }
  log(`load after: ${loadavg()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:failover: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
