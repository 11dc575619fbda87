/**
 * `npm run bench:bridge`: cross-cluster invalidation latency (issue 17) against in-cluster invalidation
 * latency, from the same writes in the same run, and the bridge's CPU per relayed key.
 *
 * Set-up (all real processes on loopback): CacheCluster A = a redis-server and a write-through sidecar;
 * CacheCluster B = another redis-server and a sidecar; one PostgreSQL origin; the bridge A → B.
 *
 * Each write is a PUT through A's sidecar, started at t0. Two raw subscribers timestamp the messages:
 * - in-cluster: the sidecar's own message arriving on A's channel (what A's other sidecars act on);
 * - cross-cluster: the bridge's relayed message with that key arriving on B's channel (what B's sidecars
 *   act on; the peer's record was replaced in the same script just before).
 * Both latencies are measured from t0, so the ratio compares the two paths end to end.
 *
 * Load: rounds alternate between sequential writes (one at a time) and concurrent writes (BENCH_BRIDGE_CONCURRENCY
 * in flight, where the bridge batches keys per peer), and alternate which subscriber was created first.
 * Per mode: median and range over its rounds of p50/p99, and of the ratio cross p99 / in-cluster p99 (target
 * ≤ 2). Bridge CPU: user + system seconds from /proc/<pid>/stat over the keys it relayed. The machine's load
 * (/proc/loadavg) is printed before and after: this bench shares its cores with whatever else runs.
 *
 * Environment: BENCH_BRIDGE_ROUNDS (per mode, default 3), BENCH_BRIDGE_WRITES (per round, default 1000),
 * BENCH_BRIDGE_CONCURRENCY (default 16).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import { parseInvalidation } from '../common/src/invalidation-message.js';
import { startBridge, stopAllBridges } from '../test/harness/bridge.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';

const ROUNDS = Number(process.env.BENCH_BRIDGE_ROUNDS ?? 3);
const WRITES = Number(process.env.BENCH_BRIDGE_WRITES ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_BRIDGE_CONCURRENCY ?? 16);
const CHANNEL = 'ripplecache:invalidations';

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:bridge] ${line}\n`);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // fields after "(comm) ": state is [0]; utime [11], stime [12] (clock ticks, 100 Hz on Linux)
  return (Number(f[11]) + Number(f[12])) / 100;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

const median = (v: number[]) => percentile(v, 50);
const range = (v: number[], d = 2) => `${Math.min(...v).toFixed(d)}–${Math.max(...v).toFixed(d)}`;

/** Arrival time (performance.now) of the first message mentioning each key, on one channel. */
function arrivals(redis: RedisProcess, relayedOnly: boolean): { seen: Map<string, number>; client: Redis } {
  const seen = new Map<string, number>();
  const client = new Redis(redis.url);
  client.on('message', (_c: string, raw: string) => {
    const at = performance.now();
    const m = parseInvalidation(raw);
    if (relayedOnly !== (m.origin !== undefined) || !('keys' in m)) return;
    for (const k of m.keys) if (!seen.has(k)) seen.set(k, at);
  });
  return { seen, client };
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  log(`load before: ${loadBefore} (${availableParallelism()} cores)`);
  const pg = await startPostgres();
  const [ra, rb] = await Promise.all([startRedis(), startRedis()]);
  const args = (r: RedisProcess) => [
    '--redis',
    r.url,
    '--origin',
    pg.url,
    '--origin-table',
    'bench_bridge',
    '--write-policy',
    'write-through',
  ];
  const sa: SidecarProcess = await startSidecar({
    name: 'bench-a',
    args: args(ra),
    env: { RIPPLECACHE_LOG_LEVEL: 'warn' },
  });
  await startSidecar({ name: 'bench-b', args: args(rb), env: { RIPPLECACHE_LOG_LEVEL: 'warn' } });
  const bridge = await startBridge({
    args: ['--cluster', 'bench/a', '--redis', ra.url, '--peer', `b=${rb.url}`, '--log-level', 'warn'],
  });
  const rows: string[] = [];
  const results: Record<
    string,
    {
      in50: number[];
      in99: number[];
      x50: number[];
      x99: number[];
      ratio: number[];
      cpuUs: number[];
      keysPerMsg: number[];
    }
  > = {};
  try {
    let round = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 === 0 ? ['sequential', 'concurrent'] : ['concurrent', 'sequential']) {
        round++;
        const inFirst = round % 2 === 1;
        const first = inFirst ? arrivals(ra, false) : arrivals(rb, true);
        const second = inFirst ? arrivals(rb, true) : arrivals(ra, false);
        const local = inFirst ? first : second;
        const cross = inFirst ? second : first;
        await Promise.all([local.client.subscribe(CHANNEL), cross.client.subscribe(CHANNEL)]);
        const started = new Map<string, number>();
        const relayed0 = await bridge.metric('ripplecache_bridge_relayed_keys_total');
        const messages0 = await bridge.metric('ripplecache_bridge_messages_total', { kind: 'keys' });
        const cpu0 = cpuSeconds(bridge.pid);
        let next = 0;
        const worker = async () => {
          while (next < WRITES) {
            const key = `r${round}-k${next++}`;
            started.set(key, performance.now());
            const res = await sa.put(key, 'v'.repeat(64));
            if (res.status !== 204) throw new Error(`PUT ${key}: ${res.status} ${res.body}`);
          }
        };
        await Promise.all(Array.from({ length: mode === 'sequential' ? 1 : CONCURRENCY }, worker));
        const deadline = performance.now() + 30_000;
        while (cross.seen.size < WRITES && performance.now() < deadline)
          await new Promise((res) => setTimeout(res, 20));
        const cpu = cpuSeconds(bridge.pid) - cpu0;
        const relayed = (await bridge.metric('ripplecache_bridge_relayed_keys_total')) - relayed0;
        const messages = (await bridge.metric('ripplecache_bridge_messages_total', { kind: 'keys' })) - messages0;
        local.client.disconnect();
        cross.client.disconnect();
        const inLat: number[] = [];
        const xLat: number[] = [];
        for (const [key, t0] of started) {
          const a = local.seen.get(key);
          const b = cross.seen.get(key);
          if (a === undefined || b === undefined)
            throw new Error(`${key}: no ${a === undefined ? 'local' : 'relayed'} message`);
          inLat.push(a - t0);
          xLat.push(b - t0);
        }
        const res = (results[mode] ??= { in50: [], in99: [], x50: [], x99: [], ratio: [], cpuUs: [], keysPerMsg: [] });
        const [i50, i99, x50, x99] = [
          percentile(inLat, 50),
          percentile(inLat, 99),
          percentile(xLat, 50),
          percentile(xLat, 99),
        ];
        res.in50.push(i50);
        res.in99.push(i99);
        res.x50.push(x50);
        res.x99.push(x99);
        res.ratio.push(x99 / i99);
        res.cpuUs.push((cpu / relayed) * 1e6);
        res.keysPerMsg.push(relayed / messages);
        rows.push(
          `| ${round} | ${mode} | ${i50.toFixed(2)} | ${i99.toFixed(2)} | ${x50.toFixed(2)} | ${x99.toFixed(2)} | ${(x99 / i99).toFixed(2)} | ${((cpu / relayed) * 1e6).toFixed(0)} | ${(relayed / messages).toFixed(1)} |`,
        );
        log(`round ${round} (${mode}) done`);
      }
    }
  } finally {
    await stopAllBridges();
    await stopAllSidecars();
    await Promise.all([ra.stop(), rb.stop()]);
    await pg.stop();
  }
  out(
    `bench:bridge — ${WRITES} write-through PUTs per round through A's sidecar; latencies in ms from the PUT's start`,
  );
  out(`to the message on A's channel (in-cluster) and the relayed message on B's channel (cross-cluster).`);
  out();
  out(
    '| round | load | in-cluster p50 | in-cluster p99 | cross p50 | cross p99 | cross p99 / in p99 | bridge CPU µs/key | keys/message |',
  );
  out('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) out(r);
  out();
  for (const [mode, r] of Object.entries(results)) {
    out(
      `${mode} (${mode === 'sequential' ? 1 : CONCURRENCY} in flight), median (range) over ${r.ratio.length} rounds: ` +
        `in-cluster p50 ${median(r.in50).toFixed(2)} (${range(r.in50)}) p99 ${median(r.in99).toFixed(2)} (${range(r.in99)}); ` +
        `cross p50 ${median(r.x50).toFixed(2)} (${range(r.x50)}) p99 ${median(r.x99).toFixed(2)} (${range(r.x99)}); ` +
        `ratio p99 ${median(r.ratio).toFixed(2)} (${range(r.ratio)}); bridge CPU ${median(r.cpuUs).toFixed(0)} µs/key (${range(r.cpuUs, 0)}); ` +
        `${median(r.keysPerMsg).toFixed(1)} keys/message`,
    );
  }
  out(`load (1/5/15 min): before ${loadBefore}, after ${loadavg()}; ${availableParallelism()} cores`);
  log(`load after: ${loadavg()}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:bridge failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
