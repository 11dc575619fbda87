/**
 * `npm run bench:cluster` (sidecar part; the operator's resharding part is its own file): in the same run,
 *
 *   1. GET and PUT throughput and CPU per operation of a sidecar on one Redis primary against a sidecar on
 *      a 3-shard Redis Cluster (3 primaries, no replicas; `--redis-cluster`), no origin, L1 off
 *      (`--l1-max-ttl 0`) so that every GET reaches Redis. Load: wrk, BENCH_CLUSTER_CONNECTIONS
 *      connections (default 16), 256-byte values over BENCH_CLUSTER_KEYS keys (default 10,000),
 *      BENCH_CLUSTER_SECONDS per run (default 4). Rounds (BENCH_CLUSTER_ROUNDS, default 3) alternate the
 *      two setups (order flipped every round); the report gives the median and range of each, and of the
 *      ratio cluster / single. CPU per op: CPU seconds (/proc) of the sidecar and every redis-server of the
 *      setup, divided by the requests.
 *   2. Invalidation transport: PUBLISH (cluster-wide: every node forwards it over the cluster bus) against
 *      SPUBLISH (sharded: only the shard of the channel), BENCH_CLUSTER_MESSAGES messages (default 20,000)
 *      of ~120 bytes from one client with 64 in flight, one subscriber (SUBSCRIBE on another node /
 *      SSUBSCRIBE), alternated rounds: messages per second delivered and CPU of all redis-servers per
 *      message.
 *   3. The idle cost of the bucketed write-back journal: Redis commands per second that one idle sidecar in
 *      write-back sends to the cluster (INFO commandstats, summed over the primaries, over 5 s).
 *
 * The machine's load (/proc/loadavg) is printed before and after.
 */
import { Redis } from 'ioredis';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedisCluster } from '../test/harness/redis-cluster.js';
import { startRedis } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';
import { cpuSeconds, cpuSecondsOf, cyclingKeysScript, fmt, hasWrk, loadAverage, median, runWrk } from './wrk.js';

const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 3);
const KEYS = Number(process.env.BENCH_CLUSTER_KEYS ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_CLUSTER_CONNECTIONS ?? 16);
const MESSAGES = Number(process.env.BENCH_CLUSTER_MESSAGES ?? 20_000);
const VALUE_BYTES = 256;

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:cluster] ${line}\n`);

interface Run {
  opsPerSec: number;
  cpuMsPerOp: number;
  errors: number;
}

async function wrk(s: SidecarProcess, script: string, pids: readonly number[]): Promise<Run> {
  const cpu0 = cpuSecondsOf(pids);
  const r = await runWrk({ url: s.url, threads: 1, connections: CONNECTIONS, seconds: SECONDS, script });
  const cpu = cpuSecondsOf(pids) - cpu0;
  return {
    opsPerSec: r.requests / r.seconds,
    cpuMsPerOp: (cpu * 1000) / Math.max(1, r.requests),
    errors: r.status + r.socket,
  };
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}
const show = (xs: number[], d = 0) => {
  const s = stats(xs);
  return `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
};

async function main(): Promise<void> {
  if (!hasWrk()) throw new Error('wrk is not installed (scripts/ensure-tools.sh)');

  out(`load before: ${loadAverage()}`);
  log('starting one redis-server and a 3-shard Redis Cluster');
  const single = await startRedis();
  const cluster = await startRedisCluster({ shards: 3, replicas: 0 });
  const clusterPids = cluster.nodes.map((n) => n.process.pid);
  try {
    const common = ['--l1-max-ttl', '0', '--redis-timeout-ms', '2000', '--log-level', 'warn'];
    const [S, C] = await Promise.all([
      startSidecar({ name: 'bench-single', args: ['--redis', single.url, ...common] }),
      startSidecar({ name: 'bench-cluster', args: ['--redis', cluster.seedUrl, '--redis-cluster', ...common] }),
    ]);
    if (!S || !C) throw new Error('no sidecars');
    const setups = [
      { name: 'single', s: S, pids: [S.pid, single.pid] },
      { name: 'cluster', s: C, pids: [C.pid, ...clusterPids] },
    ];
    // Every key present in both, so that GETs are hits (the PUT runs may not cover every key).
    log(`writing the ${fmt(KEYS)} keys once in each setup`);
    for (const setup of setups) {
      let next = 0;
      const value = 'v'.repeat(VALUE_BYTES);
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < KEYS) {
            const i = next++;
            const r = await setup.s.put(`bench-${i}`, value);
            if (r.status !== 204) throw new Error(`prefill PUT answered ${r.status}`);
          }
        }),
      );
    }
    const results: Record<string, Record<string, Run[]>> = {
      single: { PUT: [], GET: [] },
      cluster: { PUT: [], GET: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [...setups].reverse() : setups;
      for (const method of ['PUT', 'GET'] as const) {
        for (const setup of order) {
          const r = await wrk(setup.s, cyclingKeysScript(method, KEYS, VALUE_BYTES), setup.pids);
          (results[setup.name] as Record<string, Run[]>)[method]?.push(r);
          log(`round ${round + 1} ${setup.name} ${method}: ${fmt(r.opsPerSec)}/s, ${fmt(r.cpuMsPerOp, 3)} CPU ms/op`);
        }
      }
    }
    out();
    out(`## Sidecar on 1 primary vs a 3-shard cluster (${ROUNDS} rounds × ${SECONDS} s, ${CONNECTIONS} connections)`);
    out('| op | setup | ops/s median (range) | CPU ms/op median (range) | non-2xx + socket errors |');
    out('|---|---|---|---|---|');
    for (const method of ['PUT', 'GET'] as const) {
      for (const name of ['single', 'cluster']) {
        const runs = results[name]?.[method] ?? [];
        out(
          `| ${method} | ${name} | ${show(runs.map((r) => r.opsPerSec))} | ${show(
            runs.map((r) => r.cpuMsPerOp),
            3,
          )} | ${runs.reduce((a, r) => a + r.errors, 0)} |`,
        );
      }
      const s = results.single?.[method] ?? [];
      const c = results.cluster?.[method] ?? [];
      out(
        `| ${method} | cluster / single | ${show(
          c.map((r, i) => r.opsPerSec / (s[i] as Run).opsPerSec),
          2,
        )} | ${show(
          c.map((r, i) => r.cpuMsPerOp / (s[i] as Run).cpuMsPerOp),
          2,
        )} | |`,
      );
    }
    await Promise.all([S.stop(), C.stop()]);

    // 2. PUBLISH vs SPUBLISH.
    const ports = cluster.nodes.map((n) => n.port);
    const message = JSON.stringify({ v: 1, sender: 'bench-sender-0000', seq: 1, keys: ['bench-key-0001', 'b2'] });
    const pub = new Redis({ host: '127.0.0.1', port: ports[0] as number });
    const sub = new Redis({ host: '127.0.0.1', port: ports[1] as number });
    const channel = 'ripplecache:bench';
    const shardOwner = await cluster.ownerOf((await pub.call('CLUSTER', 'KEYSLOT', channel)) as number);
    const spub = new Redis({ host: '127.0.0.1', port: shardOwner });
    const ssub = new Redis({ host: '127.0.0.1', port: shardOwner });
    await sub.subscribe(channel);
    await ssub.call('SSUBSCRIBE', channel);
    let received = 0;
    sub.on('message', () => received++);
    ssub.on('smessage', () => received++);
    const pubRuns: Record<string, { perSec: number; cpuUsPerMsg: number }[]> = { PUBLISH: [], SPUBLISH: [] };
    const send = async (kind: 'PUBLISH' | 'SPUBLISH') => {
      received = 0;
      const cpu0 = cpuSecondsOf(clusterPids);
      const started = performance.now();
      const client = kind === 'PUBLISH' ? pub : spub;
      let sent = 0;
      const worker = async () => {
        while (sent < MESSAGES) {
          sent++;
          await client.call(kind, channel, message);
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      while (received < MESSAGES && performance.now() - started < 60_000) await new Promise((r) => setTimeout(r, 5));
      const secs = (performance.now() - started) / 1000;
      pubRuns[kind]?.push({
        perSec: received / secs,
        cpuUsPerMsg: ((cpuSecondsOf(clusterPids) - cpu0) * 1e6) / MESSAGES,
      });
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? (['SPUBLISH', 'PUBLISH'] as const) : (['PUBLISH', 'SPUBLISH'] as const);
      for (const k of order) await send(k);
    }
    out();
    out(`## Invalidation transport on the 3-shard cluster (${ROUNDS} rounds × ${fmt(MESSAGES)} messages)`);
    out('| command | delivered msgs/s median (range) | redis-server CPU µs/msg (all nodes) median (range) |');
    out('|---|---|---|');
    for (const k of ['PUBLISH', 'SPUBLISH']) {
      const runs = pubRuns[k] ?? [];
      out(
        `| ${k} | ${show(runs.map((r) => r.perSec))} | ${show(
          runs.map((r) => r.cpuUsPerMsg),
          1,
        )} |`,
      );
    }
    for (const c of [pub, sub, spub, ssub]) c.disconnect();

    // 3. The idle cost of the bucketed journal.
    const pg = await startPostgres();
    try {
      const W = await startSidecar({
        name: 'bench-idle',
        args: [
          '--redis',
          cluster.seedUrl,
          '--redis-cluster',
          '--origin',
          pg.url,
          '--write-policy',
          'write-back',
          '--log-level',
          'warn',
        ],
      });
      await new Promise((r) => setTimeout(r, 3000));
      const total = async () => {
        let n = 0;
        for (const p of ports) {
          const info = String(await cluster.client(p).info('commandstats'));
          for (const m of info.matchAll(/calls=(\d+)/g)) n += Number(m[1]);
        }
        return n;
      };
      const c0 = await total();
      const cpu0 = cpuSeconds(W.pid);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 5000));
      const c1 = await total();
      const secs = (performance.now() - t0) / 1000;
      const cpuPct = ((cpuSeconds(W.pid) - cpu0) / secs) * 100;
      out();
      out('## Idle write-back sidecar on the cluster (256 bucket streams, flush interval 1 s)');
      out(
        `Redis commands/s (all primaries, including this bench's INFO): ${fmt((c1 - c0) / secs)}; sidecar CPU: ${fmt(cpuPct, 1)} % of a core`,
      );
      await W.stop();
    } finally {
      await pg.stop();
    }
  } finally {
    await stopAllSidecars();
    await cluster.stop();
    await single.stop();
  }
  out();
  out(`load after: ${loadAverage()}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
