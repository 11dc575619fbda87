/**
 * `npm run bench:sidecar` (= `npx tsx bench/sidecar.bench.ts`). Four measurements, each against a baseline
 * measured in the same run:
 *
 * 1. L1 get (and set) throughput per policy against `lru-cache` {max} with the same capacity and key set,
 *    each cache in a process of its own (`bench/l1-worker.ts`), in alternated pairs; and bytes of
 *    overhead per entry (heap growth of a full cache, keys and values excluded).
 * 2. HTTP GET served from L1 by a real sidecar process, requests/s with autocannon at 64 connections,
 *    against a bare fastify route returning the same bytes (the ceiling).
 * 3. Invalidation propagation: a PUT on one sidecar until the key left three others' L1 (p50, p99).
 *    The four sidecars are built in this process with `buildApp` on a real redis-server, so that the
 *    removal can be timed exactly; the message goes through Redis pub/sub over loopback TCP.
 * 4. Hit ratio of each policy on a Zipf(0.99) trace, a Zipf trace with one-off scans and a Zipf + loop +
 *    scans mix, at 1 % and 10 % of the key space, with lru-cache, Caffeine's figures (from issue 16) and
 *    Belady's optimum for reference.
 *
 * Environment: BENCH_SECTIONS=1,2,3,4 (default all), BENCH_L1_PAIRS (default 5), BENCH_L1_ONLY (contenders
 * of section 1 to pair with lru-cache and to measure bytes per entry of, comma-separated; default all),
 * BENCH_HTTP_SECONDS
 * (default 3), BENCH_HTTP_PAIRS (default 8).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import { buildApp } from '../sidecar/src/app.js';
import { SIDECAR_DEFAULTS, type L1Policy, type SidecarConfig } from '../sidecar/src/config-defaults.js';
import { createL1Store } from '../sidecar/src/l1/create-l1-store.js';
import type { L1Store } from '../sidecar/src/l1/l1-store.js';
import { freePort, waitFor } from '../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars } from '../test/harness/sidecar.js';
import { L1_CONTENDERS, type L1Contender } from './l1-worker.js';
import { beladyHits, zipfLoopScansTrace, zipfTrace, zipfWithScansTrace } from './sidecar-traces.js';

const POLICIES: L1Policy[] = ['tinylfu', 'lru', 'lfu', 'fifo', 'ttl'];
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? '1,2,3,4').split(',').map((s) => s.trim()));
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 3);
const HTTP_PAIRS = Number(process.env.BENCH_HTTP_PAIRS ?? 8);

const out = (line = '') => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 2) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;

// ------------------------------------------------------------------------------------------------
// 1. L1 throughput and overhead: one contender per process (bench/l1-worker.ts), alternated pairs

const L1_PAIRS = Number(process.env.BENCH_L1_PAIRS ?? 5);

function l1Worker(name: L1Contender, mode: 'get' | 'mem'): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/l1-worker.ts', name, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`l1-worker ${name} ${mode} exited with ${code}`));
      else resolve(JSON.parse(text) as Record<string, number>);
    });
  });
}

const range = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;

async function benchL1(): Promise<void> {
  const BASE: L1Contender = 'lru-cache';
  const only = process.env.BENCH_L1_ONLY?.split(',');
  const others = L1_CONTENDERS.filter((c) => c !== BASE && (only === undefined || only.includes(c)));
  const load0 = loadavg();
  const rows: string[] = [];
  for (const name of others) {
    const getRatio: number[] = [];
    const getCpuRatio: number[] = [];
    const setRatio: number[] = [];
    const mine: Record<string, number>[] = [];
    const base: Record<string, number>[] = [];
    for (let pair = 0; pair < L1_PAIRS; pair++) {
      const order = pair % 2 === 0 ? [BASE, name] : [name, BASE];
      const r: Record<string, Record<string, number>> = {};
      for (const n of order) r[n] = await l1Worker(n, 'get');
      const [b, m] = [r[BASE]!, r[name]!];
      base.push(b);
      mine.push(m);
      getRatio.push(m.mops! / b.mops!);
      getCpuRatio.push(b.cpuNsPerOp! / m.cpuNsPerOp!);
      setRatio.push(m.setMops! / b.setMops!);
    }
    rows.push(
      `| ${name} | ${fmt(median(mine.map((m) => m.mops!)))} | ${fmt(median(base.map((b) => b.mops!)))} | **${fmt(median(getRatio))}×** (${range(getRatio)}) | ${fmt(median(mine.map((m) => m.cpuNsPerOp!)), 0)} / ${fmt(median(base.map((b) => b.cpuNsPerOp!)), 0)} ns = ${fmt(median(getCpuRatio))}× (${range(getCpuRatio)}) | ${fmt(median(setRatio))}× (${range(setRatio)}) |`,
    );
  }
  const mem = new Map<L1Contender, number>();
  for (const name of [BASE, ...others]) {
    const samples: number[] = [];
    for (let rep = 0; rep < 3; rep++) samples.push((await l1Worker(name, 'mem')).bytesPerEntry!);
    mem.set(name, median(samples));
  }
  const load1 = loadavg();
  out(
    `## 1. L1 get throughput and bytes per entry (one cache per process; ${L1_PAIRS} alternated pairs against lru-cache {max} per contender; load average ${fmt(load0[0]!)} at the start, ${fmt(load1[0]!)} at the end)`,
  );
  out();
  out(
    'Each process fills a 10,000-entry cache, times 10 M random gets (all hits) after two warm-up passes, then 2 M random sets over 20,000 keys into a full 10,000-entry cache. Ratios are per pair (the two processes run one after the other), median and range; CPU is user + system time from /proc/self/stat.',
  );
  out();
  out(
    '| cache | get M ops/s | lru-cache get M ops/s | get × lru-cache | get CPU per op (this / lru-cache) | set × lru-cache |',
  );
  out('|---|---:|---:|---:|---:|---:|');
  for (const row of rows) out(row);
  out();
  const baseMem = mem.get(BASE)!;
  out('| cache | bytes per entry (100,000 entries, keys and value excluded) | × lru-cache {max} |');
  out('|---|---:|---:|');
  for (const [name, bytes] of mem) out(`| ${name} | ${fmt(bytes, 1)} | ${fmt(bytes / baseMem)} |`);
  out();
  out(
    '`lru-cache` is `new LRUCache({ max })` (count only); `lru-cache-ttl` adds `ttl` and `maxSize` (what every ripplecache policy tracks); `map` is a bare `Map` (get: one lookup; set into a full map: its oldest entry deleted), the ceiling of every cache that finds entries through a `Map`.',
  );
  out();
}

// ------------------------------------------------------------------------------------------------
// 2. HTTP GET from L1 against a bare fastify route

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** CPU time (user + system) a process has used, in ms, from /proc (Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function startBaselineServer(
  valueBytes: number,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/sidecar-baseline-server.ts', String(port), String(valueBytes)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`baseline server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function cannon(url: string, seconds: number): Promise<AutocannonResult> {
  return autocannon({ url, connections: 64, duration: seconds, pipelining: 1 });
}

async function benchHttp(redis: RedisProcess): Promise<void> {
  const VALUE_BYTES = 256;
  const sidecar = await startSidecar({
    name: 'bench-http',
    args: ['--redis', redis.url, '--channel', 'ripplecache:bench-http', '--l1-max-ttl', '3600', '--log-level', 'warn'],
  });
  const baseline = await startBaselineServer(VALUE_BYTES);
  try {
    await sidecar.put('bench', 'v'.repeat(VALUE_BYTES), { ttl: 3600 });
    await waitFor('bench in L1', async () => (await sidecar.get('bench')).tier === 'L1', 5000, 5);
    const targets = { baseline: `${baseline.url}/v1/cache/bench`, sidecar: `${sidecar.url}/v1/cache/bench` };
    for (const url of Object.values(targets)) await cannon(url, 3); // warm-up (JIT)
    // Short runs, alternated, many pairs: the ratio of each pair is taken right next to each other, so
    // that load from elsewhere on the machine affects both sides of a pair about equally.
    const runs: Record<'baseline' | 'sidecar', AutocannonResult[]> = { baseline: [], sidecar: [] };
    const cpuPerRequest: Record<'baseline' | 'sidecar', number[]> = { baseline: [], sidecar: [] };
    const pids = { baseline: baseline.pid, sidecar: sidecar.pid };
    const ratios: number[] = [];
    for (let pair = 0; pair < HTTP_PAIRS; pair++) {
      const order = pair % 2 === 0 ? (['baseline', 'sidecar'] as const) : (['sidecar', 'baseline'] as const);
      for (const name of order) {
        const cpu0 = cpuMs(pids[name]);
        const r = await cannon(targets[name], HTTP_SECONDS);
        cpuPerRequest[name].push(((cpuMs(pids[name]) - cpu0) * 1000) / r.requests.total);
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        runs[name].push(r);
      }
      ratios.push(runs.sidecar[pair]!.requests.average / runs.baseline[pair]!.requests.average);
    }
    const hits = await sidecar.metric('ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' });
    const med = (xs: number[]) => median(xs);
    out(
      `## 2. HTTP GET served from L1 (${VALUE_BYTES}-byte value, autocannon, 64 connections, ${HTTP_PAIRS} alternated pairs of ${HTTP_SECONDS} s runs)`,
    );
    out();
    out(
      '| server | requests/s (median) | requests/s (max) | p50 ms (median) | p99 ms (median) | server CPU µs/request (median) |',
    );
    out('|---|---:|---:|---:|---:|---:|');
    for (const name of ['baseline', 'sidecar'] as const) {
      const rs = runs[name];
      out(
        `| ${name === 'baseline' ? 'bare fastify route (ceiling)' : 'ripplecache sidecar, L1 hit'} | ${fmt(med(rs.map((r) => r.requests.average)), 0)} | ${fmt(Math.max(...rs.map((r) => r.requests.average)), 0)} | ${fmt(med(rs.map((r) => r.latency.p50)))} | ${fmt(med(rs.map((r) => r.latency.p99)))} | ${fmt(med(cpuPerRequest[name]), 1)} |`,
      );
    }
    out();
    out(
      `Ratio sidecar / bare fastify: **${fmt(med(ratios))}×** requests/s (median of the ${HTTP_PAIRS} pairs; pairs ranged ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}); ` +
        `**${fmt(med(cpuPerRequest.baseline) / med(cpuPerRequest.sidecar))}×** by server CPU time per request (less sensitive to other load on the machine). The sidecar counted ${hits} L1 hits.`,
    );
    out();
  } finally {
    await baseline.stop();
    await sidecar.stop();
  }
}

// ------------------------------------------------------------------------------------------------
// 3. Invalidation propagation

async function benchPropagation(redis: RedisProcess): Promise<void> {
  const ITERATIONS = 1000;
  const WARMUP = 100;
  const config: SidecarConfig = {
    ...(structuredClone(SIDECAR_DEFAULTS) as SidecarConfig),
    redis: redis.url,
    channel: 'ripplecache:bench-propagation',
    l1: { ...SIDECAR_DEFAULTS.l1, maxTTLSeconds: 3600 },
    logLevel: 'warn',
  };
  const apps = await Promise.all(
    ['A', 'B', 'C', 'D'].map((id) => buildApp({ config, logger: false, senderId: `bench-${id}` })),
  );
  try {
    await waitFor(
      'all subscribed',
      async () => apps.every((a) => a.ripplecache.cache.isSubscribed && a.ripplecache.cache.l2Available),
      10_000,
      10,
    );
    const [writer, ...receivers] = apps as [(typeof apps)[0], ...typeof apps];
    const removedAt: (number | undefined)[] = receivers.map(() => undefined);
    let waiting: (() => void) | undefined;
    receivers.forEach((app, i) => {
      const cache = app.ripplecache.cache;
      const original = cache.invalidateKeys.bind(cache);
      cache.invalidateKeys = (keys) => {
        original(keys);
        if (keys.includes('prop')) {
          removedAt[i] = performance.now();
          if (removedAt.every((t) => t !== undefined)) waiting?.();
        }
      };
    });
    const each: number[] = [];
    const all: number[] = [];
    const afterAck: number[] = [];
    for (let i = 0; i < ITERATIONS + WARMUP; i++) {
      for (const r of receivers) {
        await r.ripplecache.cache.get('prop');
        if (i > 0 && r.ripplecache.cache.l1.peek('prop', Date.now()) === undefined) throw new Error('not in L1');
      }
      removedAt.fill(undefined);
      const done = new Promise<void>((resolve) => {
        waiting = resolve;
      });
      const t0 = performance.now();
      const res = await writer.inject({
        method: 'PUT',
        url: '/v1/cache/prop',
        payload: `v${i}`,
        headers: { 'content-type': 'text/plain' },
      });
      const acked = performance.now();
      if (res.statusCode !== 204) throw new Error(`PUT: ${res.statusCode}`);
      await done;
      if (i < WARMUP) continue;
      const ts = removedAt as number[];
      for (const t of ts) each.push(t - t0);
      all.push(Math.max(...ts) - t0);
      afterAck.push(Math.max(...ts) - acked);
    }
    const s = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const [e, a, k] = [s(each), s(all), s(afterAck)];
    out(
      `## 3. Invalidation propagation (${ITERATIONS} PUTs on A; time from the PUT's start until the key left the L1 of B, C, D)`,
    );
    out();
    out('| measure | p50 ms | p99 ms | max ms |');
    out('|---|---:|---:|---:|');
    out(`| one receiver's L1 | ${fmt(pct(e, 50), 3)} | ${fmt(pct(e, 99), 3)} | ${fmt(e.at(-1)!, 3)} |`);
    out(`| all three receivers' L1 | ${fmt(pct(a, 50), 3)} | ${fmt(pct(a, 99), 3)} | ${fmt(a.at(-1)!, 3)} |`);
    out(
      `| all three, counted from the PUT's 204 (negative: before it) | ${fmt(pct(k, 50), 3)} | ${fmt(pct(k, 99), 3)} | ${fmt(k.at(-1)!, 3)} |`,
    );
    out();
  } finally {
    await Promise.all(apps.map((a) => a.close()));
  }
}

// ------------------------------------------------------------------------------------------------
// 4. Hit ratio

/** Replays a trace; the clock is the request index, and every entry gets the same (long) TTL. */
function hitRatio(
  store: { get(k: string, now: number): unknown; set(k: string, now: number): void },
  trace: Int32Array,
  keyOf: (id: number) => string,
): number {
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const k = keyOf(trace[i] as number);
    if (store.get(k, i) !== undefined) hits++;
    else store.set(k, i);
  }
  return hits / trace.length;
}
const TRACE_TTL = 1e12;

function benchHitRatio(): void {
  const KEYS = 100_000;
  const LENGTH = 2_000_000;
  const traces = {
    'Zipf(0.99)': zipfTrace(LENGTH, KEYS, 0.99, 42),
    'Zipf(0.99) + scans (4000 Zipf, then 1000 one-off keys)': zipfWithScansTrace(LENGTH, KEYS, 0.99, 43, 4000, 1000),
    'Zipf + loop + scans (3000 Zipf, 1000 over a 5000-key loop, 1000 one-off keys)': zipfLoopScansTrace(
      LENGTH,
      KEYS,
      0.99,
      44,
      3000,
      1000,
      5000,
      1000,
    ),
  };
  /** Caffeine 3.2.3's hit ratios on the same traces, as given in issue 16 (1 % and 10 % per trace). */
  const CAFFEINE = [57.2, 77.7, 43.8, 61.7, 33.7, 62.0];
  const names: string[] = [];
  const keyCache: string[] = [];
  const keyOf = (id: number) => keyCache[id] ?? (keyCache[id] = `k${id}`);
  out(
    `## 4. Hit ratio (${KEYS.toLocaleString('en-US')} keys, ${LENGTH.toLocaleString('en-US')} requests per trace; cache sizes 1 % and 10 % of the key space)`,
  );
  out();
  const rows: string[][] = [];
  const header = ['policy'];
  const CAFFEINE_ROW = POLICIES.length + 1;
  for (const [traceName, trace] of Object.entries(traces)) {
    for (const size of [KEYS / 100, KEYS / 10]) {
      header.push(`${traceName}, ${size.toLocaleString('en-US')} entries`);
      const col: [string, number][] = [];
      for (const p of POLICIES) {
        const store: L1Store<number> = createL1Store<number>(p, { maxEntries: size, maxBytes: 2 ** 40 });
        col.push([
          `ripplecache ${p}`,
          hitRatio(
            {
              get: (k, now) => store.get(k, now),
              set: (k, now) => {
                store.set(k, 1, 1, now + TRACE_TTL);
              },
            },
            trace,
            keyOf,
          ),
        ]);
      }
      const lc = new LRUCache<string, number>({ max: size });
      col.push([
        'lru-cache',
        hitRatio(
          {
            get: (k) => lc.get(k),
            set: (k) => {
              lc.set(k, 1);
            },
          },
          trace,
          keyOf,
        ),
      ]);
      col.push(['Caffeine 3.2.3 W-TinyLFU (figures from issue 16)', (CAFFEINE[header.length - 2] as number) / 100]);
      col.push(['optimal (Belady)', beladyHits(trace, size) / trace.length]);
      col.forEach(([name, ratio], i) => {
        if (names.length <= i) {
          names.push(name);
          rows.push([name]);
        }
        rows[i]!.push(`${fmt(ratio * 100, i === CAFFEINE_ROW ? 1 : 2)} %`);
      });
    }
  }
  out(`| ${header.join(' | ')} |`);
  out(
    `|---|${header
      .slice(1)
      .map(() => '---:')
      .join('|')}|`,
  );
  for (const row of rows) out(`| ${row.join(' | ')} |`);
  out();
  out(
    'The `ttl` policy evicts the entry closest to expiry; with one TTL for every key (as here) that is the oldest insertion, so it matches FIFO. `lru` is CLOCK (second chance). Seeds: 42, 43, 44.',
  );
  out();
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  out(
    // The CPU model: section 1's ratios depend on it (same code, 1.14× on one machine, 1.36–1.40× on another).
    `# ripplecache sidecar benchmark (${new Date().toISOString()}, Node ${process.version}, ${cpus().length} CPUs: ${cpus()[0]?.model ?? 'unknown'})`,
  );
  out();
  out('Command: `npm run bench:sidecar` (= `npx tsx bench/sidecar.bench.ts`)');
  out();
  if (SECTIONS.has('1')) await benchL1();
  let redis: RedisProcess | undefined;
  try {
    if (SECTIONS.has('2') || SECTIONS.has('3')) redis = await startRedis();
    if (SECTIONS.has('2')) await benchHttp(redis!);
    if (SECTIONS.has('3')) await benchPropagation(redis!);
  } finally {
    await stopAllSidecars();
    await redis?.stop();
  }
  if (SECTIONS.has('4')) benchHitRatio();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
