/**
 * The resharding half of `npm run bench:cluster` (also runnable alone: `tsx bench/cluster-reshard.bench.ts`):
 * how fast the operator moves slots, and what clients see meanwhile. A real control plane, a real operator
 * process and 8 redis-servers in cluster mode (simulated pods, as in test/integration/cluster-operator.test.ts);
 * the CacheCluster starts with 3 shards × 1 replica and BENCH_RESHARD_KEYS keys (default 50,000, 100-byte values).
 * Rounds alternate 3 → 4 and 4 → 3 (BENCH_RESHARD_ROUNDS of each, default 2). Per move it reports:
 * - keys moved per second: the keys the operator reported in status.resharding.keysMoved (last value seen),
 *   over the time status.resharding was present (first to last sighting, polled every 100 ms);
 * - p99 latency of an ioredis Cluster client (GET and SET alternately, one at a time, on random keys) during the
 *   move, against the p99 of the 5 s before it, as a ratio (same run, same client).
 * Client errors are counted (they must be 0: clients follow MOVED/ASK). The machine's load (/proc/loadavg) and
 * the CPU time of the redis-servers and the operator (from /proc) are printed: this bench shares its cores.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Cluster } from 'ioredis';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withReplicas,
  withSpec,
  withTopology,
} from '../test/fixtures/cache-cluster.js';
import { startControlPlane } from '../test/harness/control-plane.js';
import { startOperator } from '../test/harness/operator.js';
import { PodSimulator } from '../test/harness/pod-simulator.js';
import { freeClusterPort, waitFor } from '../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';

const NS = 'default';
const NAME = 'bench';
const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:cluster-reshard] ${line}\n`);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** utime + stime of a process, seconds (from /proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export interface ReshardRound {
  direction: string;
  keysMoved: number;
  seconds: number;
  keysPerSecond: number;
  p99BeforeMs: number;
  p99DuringMs: number;
  errors: number;
}

/** Runs the resharding bench and prints its report; returns the rounds (for bench/cluster.bench.ts). */
export async function runReshardBench(): Promise<ReshardRound[]> {
  const KEYS = Number(process.env.BENCH_RESHARD_KEYS ?? 50_000);
  const ROUNDS = Number(process.env.BENCH_RESHARD_ROUNDS ?? 2);
  out(`# resharding (operator): ${KEYS} keys, ${ROUNDS} rounds of 3 -> 4 and 4 -> 3; load before: ${loadavg()}`);
  const cp = await startControlPlane();
  const nodes = new Map<string, RedisProcess>();
  const overrides: Record<string, string> = {};
  const cleanups: Array<() => Promise<unknown>> = [];
  const rounds: ReshardRound[] = [];
  try {
    await cp.applyCrds();
    for (let s = 0; s < 4; s++)
      for (let o = 0; o < 2; o++) {
        const pod = `${NAME}-shard-${s}-${o}`;
        const port = await freeClusterPort();
        const r = await startRedis({
          port,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
        });
        nodes.set(pod, r);
        overrides[`${NS}/${pod}`] = `127.0.0.1:${port}`;
        cleanups.push(() => r.stop());
      }
    const probes = Object.fromEntries([...nodes].map(([pod, r]) => [pod, { host: '127.0.0.1', port: r.port }]));
    const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(nodes.keys()), probes);
    sim.start(300);
    cleanups.push(async () => sim.stop());
    const op = await startOperator({ kubeconfigPath: cp.kubeconfigPath, identity: 'bench', podAddresses: overrides });
    cleanups.push(() => op.stop());

    const apply = async (shards: number) => {
      const cc = cacheCluster(
        NAME,
        inNamespace(NS),
        withSpec({ shards, eviction: { policy: 'volatile-lru', maxMemory: '512Mi' } }),
        withTopology('cluster'),
        withReplicas(1),
      );
      const r = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
      if (r.code !== 0) throw new Error(r.stderr);
    };
    const status = async (): Promise<any> => {
      const r = await cp.kubectl(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']);
      return r.code === 0 ? JSON.parse(r.stdout).status : undefined;
    };
    const settled = async (shards: number) =>
      waitFor(
        `${shards} shards settled`,
        async () => {
          const s = await status();
          return (
            s?.clusterState === 'ok' &&
            s.slotsAssigned === 16384 &&
            s.resharding === undefined &&
            s.shards?.length === shards &&
            s.shards.every((x: any) => x.state === 'ok')
          );
        },
        600_000,
        500,
      );

    await apply(3);
    await settled(3);
    log('3 shards formed; loading keys');
    const client = new Cluster([{ host: '127.0.0.1', port: nodes.get(`${NAME}-shard-0-0`)!.port }]);
    client.on('error', () => undefined);
    cleanups.push(async () => client.disconnect());
    const value = 'x'.repeat(100);
    // 500 SETs in flight at a time (a Cluster pipeline must stay within one slot: these keys are spread).
    for (let i = 0; i < KEYS; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min(KEYS, i + 500); j++) batch.push(client.set(`bench:${j}`, value));
      await Promise.all(batch);
    }

    // The client load: one request at a time, latencies with their start times.
    const samples: Array<{ at: number; ms: number }> = [];
    let errors = 0;
    let running = true;
    const loader = (async () => {
      for (let n = 0; running; n++) {
        const key = `bench:${Math.floor(Math.random() * KEYS)}`;
        const t = performance.now();
        try {
          if (n % 2 === 0) await client.get(key);
          else await client.set(key, value);
          samples.push({ at: t, ms: performance.now() - t });
        } catch {
          errors++;
        }
        if (samples.length > 2_000_000) samples.splice(0, 1_000_000);
      }
    })();

    const cpuBefore =
      [...nodes.values()].reduce((a, r) => a + cpuSeconds(r.pid), 0) + cpuSeconds(op.proc.child.pid ?? 0);
    for (let round = 0; round < ROUNDS * 2; round++) {
      const to = round % 2 === 0 ? 4 : 3;
      await sleep(5000);
      const beforeFrom = performance.now() - 5000;
      const errorsBefore = errors;
      await apply(to);
      let first: number | undefined;
      let last: number | undefined;
      let keysMoved = 0;
      await waitFor(
        `resharding to ${to} done`,
        async () => {
          const s = await status();
          if (s?.resharding) {
            first ??= performance.now();
            last = performance.now();
            keysMoved = Math.max(keysMoved, s.resharding.keysMoved ?? 0);
          }
          return first !== undefined && s?.resharding === undefined && s.shards?.length === to;
        },
        900_000,
        100,
      );
      await settled(to);
      const seconds = ((last ?? first!) - first!) / 1000;
      const during = samples.filter((x) => x.at >= first! && x.at <= (last ?? first!)).map((x) => x.ms);
      const before = samples.filter((x) => x.at >= beforeFrom && x.at < beforeFrom + 5000).map((x) => x.ms);
      const r: ReshardRound = {
        direction: `${to === 4 ? 3 : 4} -> ${to}`,
        keysMoved,
        seconds,
        keysPerSecond: seconds > 0 ? keysMoved / seconds : NaN,
        p99BeforeMs: percentile(before, 99),
        p99DuringMs: percentile(during, 99),
        errors: errors - errorsBefore,
      };
      rounds.push(r);
      out(
        `round ${round + 1} ${r.direction}: ${r.keysMoved} keys in ${r.seconds.toFixed(1)} s = ${r.keysPerSecond.toFixed(0)} keys/s; ` +
          `client p99 ${r.p99BeforeMs.toFixed(2)} ms before, ${r.p99DuringMs.toFixed(2)} ms during ` +
          `(x${(r.p99DuringMs / r.p99BeforeMs).toFixed(2)}; ${before.length} / ${during.length} requests); errors ${r.errors}`,
      );
    }
    running = false;
    await loader;
    const cpuAfter =
      [...nodes.values()].reduce((a, r) => a + cpuSeconds(r.pid), 0) + cpuSeconds(op.proc.child.pid ?? 0);
    for (const dir of ['3 -> 4', '4 -> 3']) {
      const rs = rounds.filter((r) => r.direction === dir);
      const kps = rs.map((r) => r.keysPerSecond).sort((a, b) => a - b);
      const ratio = rs.map((r) => r.p99DuringMs / r.p99BeforeMs).sort((a, b) => a - b);
      out(
        `${dir}: keys/s median ${percentile(kps, 50).toFixed(0)} (range ${kps[0]!.toFixed(0)}-${kps[kps.length - 1]!.toFixed(0)}); ` +
          `p99 during/before median x${percentile(ratio, 50).toFixed(2)} (range x${ratio[0]!.toFixed(2)}-x${ratio[ratio.length - 1]!.toFixed(2)})`,
      );
    }
    out(
      `CPU of the redis-servers and the operator over the rounds: ${(cpuAfter - cpuBefore).toFixed(1)} s; client errors ${errors}; load after: ${loadavg()}`,
    );
    return rounds;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await cp.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runReshardBench().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
