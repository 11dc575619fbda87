/**
 * `npm run bench:write` (`npx tsx bench/write.bench.ts`): PUT throughput and database writes of each write
 * policy, measured in the same run on the same machine, through each interface a client can write with.
 *
 * One real sidecar process per set-up, all on one redis-server (each on its own database index, so that
 * write-back's journal is its own) and one PostgreSQL (a table per set-up). Set-ups: write-through,
 * write-back, write-back with a coalescing window (`--write-back-coalesce-window-ms`, BENCH_WRITE_WINDOW_MS,
 * default 10000), write-around, and a sidecar without an origin (PUT = one Redis write). Interfaces, each
 * driving every set-up it is measured on in the same way:
 *   - `put`: single HTTP PUTs, 64 connections, 256-byte values, keys drawn from Zipf(0.99) over 10,000
 *     keys, sent by wrk (C; Debian's `wrk` package) or, when wrk is missing or BENCH_WRITE_LOADGEN=autocannon,
 *     by autocannon (Node);
 *   - `batch`: `POST /v1/batch` with BENCH_WRITE_BATCH_OPS (default 100) puts of 256-byte values each (keys
 *     from the same Zipf draw, distinct within a batch), 4 connections, by wrk (write-through and the two
 *     write-back set-ups; without wrk this interface is skipped);
 *   - `resp`: pipelined RESP SETs (16 per pipeline, 64 connections, 256-byte values, uniformly random keys
 *     over 10,000 — redis-benchmark's `-r`) against `--listen-resp`, when the sidecar has that flag.
 * wrk needs about half the CPU per request that autocannon does; on a machine whose cores the load
 * generator shares with everything it measures, that CPU is taken from the sidecar, Redis and PostgreSQL,
 * and more so for the faster policy. Rounds alternate the order so that noise from the rest of the machine
 * falls on all of them alike; ratios are taken within each round, and reported as median and range.
 *
 * "Database writes" are counted by the sidecars themselves (`ripplecache_sidecar_origin_requests_total`:
 * statements sent to PostgreSQL that wrote; `ripplecache_sidecar_origin_rows_written_total`: rows stored).
 * For write-back they include the flushes that finish after the load stops (the journal is drained before
 * counting; with a coalescing window that includes the last window). Throughput counts only stored PUTs.
 *
 * PostgreSQL runs with its default durability (fsync and synchronous commit on), as an application's
 * database does in production: a write-through PUT waits for a commit, a write-back batch pays one.
 *
 * The CPU each process used during each run (and the write-back drain after it) is read from /proc
 * (Linux): the sidecar, redis-server, PostgreSQL (postmaster and backends) and the load generator (wrk or
 * redis-benchmark as an exited child of this process, or autocannon as this process). The machine's load
 * average (/proc/loadavg) is printed before and after.
 *
 * Environment: BENCH_WRITE_SECONDS (per run, default 10), BENCH_WRITE_ROUNDS (default 3),
 * BENCH_WRITE_KEYS (default 10000), BENCH_WRITE_LOADGEN (wrk | autocannon; default wrk when installed),
 * BENCH_WRITE_WINDOW_MS (default 10000), BENCH_WRITE_BATCH_OPS (default 100), BENCH_WRITE_INTERFACES
 * (comma-separated subset of put,batch,resp), BENCH_WRITE_MAX_PENDING (`--write-back-max-pending` of the
 * two write-back set-ups; default the sidecar's 100,000).
 *
 * Write-back acknowledges a PUT once it is in the Redis journal; the database gets it later. A run's PUT/s
 * is what the clients saw; "counting the drain" divides the same PUTs by the run plus the time the journal
 * took to empty after it (its last window included): the rate the database side sustained. When the
 * clients outrun the flusher for longer than the journal's room (`maxPending`) lasts, PUTs are refused
 * with 503 and counted as refused; redis-benchmark stops at the first refusal, so a RESP run that fills
 * the journal ends early (the log says so).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { prng, zipfSampler } from './sidecar-traces.js';
import { freePort, waitFor } from '../test/harness/ports.js';
import { startPostgres, type PostgresServer } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';
import { childrenCpuSeconds, fmt, hasWrk, loadAverage, median, range, runWrk, WRK_DONE_LUA } from './wrk.js';

const SECONDS = Number(process.env.BENCH_WRITE_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_WRITE_ROUNDS ?? 3);
const KEYS = Number(process.env.BENCH_WRITE_KEYS ?? 10_000);
const CONNECTIONS = 64;
const ZIPF_S = 0.99;
const VALUE_BYTES = 256;
/** Upper bound on the requests of one run, whatever the speed. */
const MAX_REQUESTS_PER_RUN = 5_000_000;

/** `no-origin`: the baseline, a sidecar without an origin (every PUT is one Redis write). */
type Policy = 'write-through' | 'write-back' | 'write-around' | 'no-origin';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  duration: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:write] ${line}\n`);

/** Sum of every sample of a metric whose labels match `where`. */
async function metricSum(
  s: SidecarProcess,
  name: string,
  where: (labels: Map<string, string>) => boolean = () => true,
): Promise<number> {
  let sum = 0;
  for (const line of (await s.metrics()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] ?? '', x[2] ?? '']));
    if (where(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** Statements that wrote (put, delete, batch) and rows stored, as the sidecar counted them. */
async function dbWrites(s: SidecarProcess): Promise<{ statements: number; rows: number }> {
  const statements = await metricSum(
    s,
    'ripplecache_sidecar_origin_requests_total',
    (l) =>
      ['put', 'delete', 'batch'].includes(l.get('op') ?? '') &&
      ['applied', 'superseded'].includes(l.get('outcome') ?? ''),
  );
  const rows = await metricSum(s, 'ripplecache_sidecar_origin_rows_written_total');
  return { statements, rows };
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere. With
 * `children`, also what its exited children used (PostgreSQL's backends come and go).
 */
function cpuSeconds(pid: number, children = false): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // After the command: state ppid … utime(11) stime(12) cutime(13) cstime(14), in ticks of 10 ms.
    const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a PostgreSQL server: the postmaster, what its exited children used, and the live ones. */
function postgresCpuSeconds(pg: PostgresServer): number | undefined {
  try {
    const postmaster = Number(readFileSync(join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    let total = cpuSeconds(postmaster, true);
    if (total === undefined) return undefined;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(postmaster))
          total += cpuSeconds(Number(d)) ?? 0;
      } catch {
        // The process exited meanwhile.
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

/** Whose CPU the report shows, per PUT: the processes of the run (the load generator is this process). */
const CPU_CONSUMERS = ['sidecar', 'redis-server', 'PostgreSQL', 'load generator'] as const;

interface Run {
  puts: number;
  seconds: number;
  /** From the end of the load until the write-back journal was empty (0 for the other policies). */
  drainSeconds: number;
  p50: number;
  p99: number;
  statements: number;
  rows: number;
  refused: number;
  /** CPU seconds each of CPU_CONSUMERS used during the run and its write-back drain (undefined off Linux). */
  cpu: (number | undefined)[];
}

/** The load generator: wrk (C, from Debian's `wrk` package) when installed, else autocannon (Node). */
const LOADGEN: 'wrk' | 'autocannon' = (() => {
  const want = process.env.BENCH_WRITE_LOADGEN;
  if (want === 'autocannon' || want === 'wrk') return want;
  if (want) throw new Error(`BENCH_WRITE_LOADGEN must be wrk or autocannon, not ${JSON.stringify(want)}`);
  return hasWrk() ? 'wrk' : 'autocannon';
})();

/** wrk threads: one per core, as wrk's documentation suggests (the connections are spread over them). */
const WRK_THREADS = Math.min(availableParallelism(), 8);

interface LoadResult {
  ok: number;
  refused: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  cpuSeconds: number;
}

const WRK_SCRIPT = `
local keys, i, n = {}, 0, 0
local body = string.rep("v", ${VALUE_BYTES})
local headers = { ["Content-Type"] = "text/plain" }
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local requests = {}
function init(args)
  for line in io.lines(args[1]) do n = n + 1; keys[n] = line end
  i = (tid or 0) * 7919 % n
end
-- One formatted request per key, built on first use.
function request()
  i = i + 1
  if i > n then i = 1 end
  local k = keys[i]
  local r = requests[k]
  if r == nil then
    r = wrk.format("PUT", "/v1/cache/bench-" .. k, headers, body)
    requests[k] = r
  end
  return r
end
${WRK_DONE_LUA}`;

async function loadWrk(s: SidecarProcess, seed: number): Promise<LoadResult> {
  // Keys drawn ahead of the run (wrk cycles through them): more than a run sends at the speeds seen here.
  const next = zipfSampler(KEYS, ZIPF_S, prng(seed));
  const data = Array.from({ length: 1_000_000 }, () => String(next())).join('\n');
  return wrkLoad(s.url, CONNECTIONS, WRK_SCRIPT, data);
}

async function loadAutocannon(s: SidecarProcess, seed: number): Promise<LoadResult> {
  const next = zipfSampler(KEYS, ZIPF_S, prng(seed));
  const body = 'v'.repeat(VALUE_BYTES);
  const before = process.cpuUsage();
  const r = await autocannon({
    url: s.url,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: SECONDS,
    maxOverallRequests: MAX_REQUESTS_PER_RUN,
    requests: [
      {
        method: 'PUT',
        headers: { 'content-type': 'text/plain' },
        body,
        setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/v1/cache/bench-${next()}` }),
      },
    ],
  });
  const used = process.cpuUsage(before);
  return {
    ok: r['2xx'],
    refused: r.non2xx,
    errors: r.errors,
    seconds: r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpuSeconds: (used.user + used.system) / 1e6,
  };
}

const load = (s: SidecarProcess, seed: number) => (LOADGEN === 'wrk' ? loadWrk(s, seed) : loadAutocannon(s, seed));

const WINDOW_MS = Number(process.env.BENCH_WRITE_WINDOW_MS ?? 10_000);
/** `--write-back-max-pending` of the write-back set-ups (unset: the sidecar's default, 100,000). */
const MAX_PENDING = process.env.BENCH_WRITE_MAX_PENDING;
const BATCH_OPS = Number(process.env.BENCH_WRITE_BATCH_OPS ?? 100);
const BATCH_CONNECTIONS = 4;
/** Distinct batch bodies wrk cycles through. */
const BATCH_BODIES = 400;
/** Upper bound on the SETs of one RESP run (it is stopped after SECONDS). */
const RESP_MAX_REQUESTS = 100_000_000;
const RESP_CONNECTIONS = 64;
const RESP_PIPELINE = 16;

type Iface = 'put' | 'batch' | 'resp';
const IFACE_LABEL: Record<Iface, string> = {
  put: 'single HTTP PUTs',
  batch: `POST /v1/batch (${BATCH_OPS} puts each)`,
  resp: `pipelined RESP SETs (${RESP_PIPELINE} per pipeline)`,
};

interface Setup {
  name: string;
  policy: Policy;
  args: string[];
  ifaces: Iface[];
}

/** True when the sidecar has the RESP front (`--listen-resp`). */
function sidecarHasResp(): boolean {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'sidecar/src/main.ts', '--help'], { encoding: 'utf8' });
  return r.stdout.includes('--listen-resp');
}

const BATCH_WRK_SCRIPT = `
local bodies, i, n = {}, 0, 0
local headers = { ["Content-Type"] = "application/json" }
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local requests = {}
function init(args)
  for line in io.lines(args[1]) do n = n + 1; bodies[n] = line end
  i = (tid or 0) * 131 % n
end
function request()
  i = i + 1
  if i > n then i = 1 end
  local r = requests[i]
  if r == nil then
    r = wrk.format("POST", "/v1/batch", headers, bodies[i])
    requests[i] = r
  end
  return r
end
${WRK_DONE_LUA}`;

/** Runs wrk with a script and one data file, as a LoadResult. */
async function wrkLoad(url: string, connections: number, script: string, data: string): Promise<LoadResult> {
  const r = await runWrk({ url, threads: WRK_THREADS, connections, seconds: SECONDS, script, data });
  return {
    ok: r.requests - r.status,
    refused: r.status,
    errors: r.socket,
    seconds: r.seconds,
    p50: Math.round(r.p50Ms * 10) / 10,
    p99: Math.round(r.p99Ms * 10) / 10,
    cpuSeconds: r.wrkCpuSeconds,
  };
}

/** Batch bodies: BATCH_OPS puts each, keys from the Zipf draw, distinct within a body. */
function batchBodies(seed: number): string {
  const next = zipfSampler(KEYS, ZIPF_S, prng(seed));
  const value = 'v'.repeat(VALUE_BYTES);
  const lines: string[] = [];
  for (let b = 0; b < BATCH_BODIES; b++) {
    const keys = new Set<number>();
    while (keys.size < Math.min(BATCH_OPS, KEYS)) keys.add(next());
    lines.push(
      JSON.stringify({
        ops: [...keys].map((k) => ({ op: 'put', key: `bench-${k}`, value, contentType: 'text/plain' })),
      }),
    );
  }
  return lines.join('\n');
}

/**
 * Pipelined RESP SETs by redis-benchmark (C) for SECONDS (it has no duration option: it is stopped with
 * SIGTERM). SETs stored and refused are counted by the sidecar (`requests_total{operation="put"}` and
 * `resp_commands_total{command="set"}`); redis-benchmark's own latency figures are lost with the stop.
 */
async function loadResp(s: SidecarProcess, port: number): Promise<LoadResult> {
  const counts = async () => ({
    stored: await metricSum(
      s,
      'ripplecache_sidecar_requests_total',
      (l) => l.get('operation') === 'put' && l.get('outcome') === 'stored',
    ),
    failed: await metricSum(
      s,
      'ripplecache_sidecar_resp_commands_total',
      (l) => l.get('command') === 'set' && l.get('result') !== 'ok',
    ),
  });
  const before = await counts();
  const cpuBefore = childrenCpuSeconds();
  const started = performance.now();
  const child = spawn(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-c',
      String(RESP_CONNECTIONS),
      '-P',
      String(RESP_PIPELINE),
      '-n',
      String(RESP_MAX_REQUESTS),
      '-r',
      String(KEYS),
      '-d',
      String(VALUE_BYTES),
      '-t',
      'set',
      '-q',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const closed = new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
  const timer = setTimeout(() => child.kill('SIGTERM'), SECONDS * 1000);
  const code = await closed;
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  // redis-benchmark exits at the first error reply (e.g. REDIS_UNAVAILABLE under load): the run ends there.
  if (seconds < SECONDS * 0.9) log(`redis-benchmark stopped after ${seconds.toFixed(1)} s (${code}): ${stderr.trim()}`);
  if (seconds < 1) throw new Error(`redis-benchmark stopped at once (${code}): ${stderr}`);
  // SETs in flight when it stopped still finish: count once the count stops moving.
  let after = await counts();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const again = await counts();
    if (again.stored === after.stored && again.failed === after.failed) break;
    after = again;
  }
  return {
    ok: after.stored - before.stored,
    refused: after.failed - before.failed,
    errors: 0,
    seconds,
    p50: NaN,
    p99: NaN,
    cpuSeconds: childrenCpuSeconds() - cpuBefore,
  };
}

/** Batch operations so far, as the sidecar counted them: PUTs stored, and operations refused or failed. */
const batchCounts = async (s: SidecarProcess) => ({
  stored: await metricSum(
    s,
    'ripplecache_sidecar_requests_total',
    (l) => l.get('operation') === 'batch' && l.get('outcome') === 'stored',
  ),
  failed: await metricSum(
    s,
    'ripplecache_sidecar_requests_total',
    (l) => l.get('operation') === 'batch' && !['stored', 'deleted', 'hit', 'miss'].includes(l.get('outcome') ?? ''),
  ),
});

async function main(): Promise<void> {
  const wanted = new Set((process.env.BENCH_WRITE_INTERFACES ?? 'put,batch,resp').split(',') as Iface[]);
  const haveWrk = hasWrk();
  const resp = wanted.has('resp') && sidecarHasResp() && !spawnSync('redis-benchmark', ['--version']).error;
  const ifaces: Iface[] = (['put', 'batch', 'resp'] as const).filter(
    (i) => wanted.has(i) && (i !== 'batch' || haveWrk) && (i !== 'resp' || resp),
  );
  const compared: Iface[] = ifaces;
  const maxPendingArgs = MAX_PENDING === undefined ? [] : ['--write-back-max-pending', MAX_PENDING];
  const setups: Setup[] = [
    { name: 'write-through', policy: 'write-through', args: [], ifaces: compared },
    { name: 'write-back', policy: 'write-back', args: [...maxPendingArgs], ifaces: compared },
    {
      name: `write-back, window ${WINDOW_MS} ms`,
      policy: 'write-back',
      args: ['--write-back-coalesce-window-ms', String(WINDOW_MS), ...maxPendingArgs],
      ifaces: compared,
    },
    { name: 'write-around', policy: 'write-around', args: [], ifaces: ifaces.filter((i) => i === 'put') },
    { name: 'no origin', policy: 'no-origin', args: [], ifaces: ifaces.filter((i) => i === 'put') },
  ];
  const loadBefore = loadAverage();
  log(`interfaces: ${ifaces.join(', ')}${resp ? '' : ' (no RESP front in this sidecar, or no redis-benchmark)'}`);
  log('starting redis-server and PostgreSQL');
  const [redis, pg] = await Promise.all([startRedis(), startPostgres({ durable: true })]);
  const sidecars = new Map<string, { s: SidecarProcess; respPort?: number }>();
  try {
    for (const [i, setup] of setups.entries()) {
      const respPort = ifaces.includes('resp') && setup.ifaces.includes('resp') ? await freePort() : undefined;
      const s = await startSidecar({
        name: `bench-${setup.name}`,
        args: [
          '--redis',
          `${redis.url}/${i + 1}`,
          '--channel',
          `ripplecache:bench-write-${i}`,
          '--log-level',
          'warn',
          // As the integration tests: under this machine's load the default 500 ms fails some calls.
          '--redis-timeout-ms',
          '2000',
          ...(respPort === undefined ? [] : ['--listen-resp', `127.0.0.1:${respPort}`]),
          ...(setup.policy === 'no-origin'
            ? []
            : ['--origin', pg.url, '--origin-table', `bench_${i}`, '--write-policy', setup.policy]),
          ...setup.args,
        ],
      });
      sidecars.set(setup.name, respPort === undefined ? { s } : { s, respPort });
    }
    // Create the tables and warm up the JIT of every sidecar.
    for (const { s } of sidecars.values()) {
      await s.put('warm-up', 'x');
      const w = await autocannon({
        url: `${s.url}/v1/cache/warm-up`,
        connections: 8,
        duration: 1,
        method: 'PUT',
        body: 'x',
        headers: { 'content-type': 'text/plain' },
      });
      if (w.non2xx > 0) throw new Error(`${s.name}: warm-up answered ${w.non2xx} non-2xx`);
    }
    const pairs = setups.flatMap((setup) => setup.ifaces.map((iface) => ({ setup, iface })));
    const id = (p: { setup: Setup; iface: Iface }) => `${p.setup.name}|${p.iface}`;
    const runs = new Map<string, Run[]>(pairs.map((p) => [id(p), []]));
    const loads: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      loads.push(loadAverage());
      const order = round % 2 === 0 ? pairs : [...pairs].reverse();
      for (const pair of order) {
        const { setup, iface } = pair;
        const { s, respPort } = sidecars.get(setup.name) as { s: SidecarProcess; respPort?: number };
        const seed = 1000 * round + pairs.indexOf(pair);
        const before = await dbWrites(s);
        const batchBefore = iface === 'batch' ? await batchCounts(s) : { stored: 0, failed: 0 };
        const readCpu = () => [cpuSeconds(s.pid), cpuSeconds(redis.pid), postgresCpuSeconds(pg)];
        const cpuBefore = readCpu();
        const r =
          iface === 'put'
            ? await load(s, seed)
            : iface === 'batch'
              ? await wrkLoad(s.url, BATCH_CONNECTIONS, BATCH_WRK_SCRIPT, batchBodies(seed))
              : await loadResp(s, respPort as number);
        if (r.errors > 0) throw new Error(`${setup.name} ${iface}: ${r.errors} connection errors`);
        const drainStart = performance.now();
        if (setup.policy === 'write-back') {
          await waitFor(
            'the write-back journal drained',
            async () => (await metricSum(s, 'ripplecache_sidecar_writeback_pending')) === 0,
            120_000 + WINDOW_MS,
            100,
          );
        }
        const drainSeconds = (performance.now() - drainStart) / 1000;
        const cpuAfter = readCpu();
        const after = await dbWrites(s);
        let puts = r.ok;
        let refused = r.refused;
        if (iface === 'batch') {
          // Counted by the sidecar: wrk does not count the requests still in flight when it stops.
          const batchAfter = await batchCounts(s);
          puts = batchAfter.stored - batchBefore.stored;
          refused = batchAfter.failed - batchBefore.failed + r.refused * BATCH_OPS;
        }
        const run: Run = {
          puts,
          seconds: r.seconds,
          drainSeconds,
          p50: r.p50,
          p99: r.p99,
          statements: after.statements - before.statements,
          rows: after.rows - before.rows,
          refused,
          cpu: [
            ...cpuAfter.map((a, i) => (a === undefined || cpuBefore[i] === undefined ? undefined : a - cpuBefore[i])),
            r.cpuSeconds,
          ],
        };
        runs.get(id(pair))?.push(run);
        log(
          `${setup.name} / ${iface} round ${round + 1}: ${fmt(run.puts / run.seconds)} PUT/s (${fmt(run.puts / (run.seconds + run.drainSeconds))} with the ${fmt(run.drainSeconds, 1)} s drain), ${fmt(run.statements)} statements, ${fmt(run.rows)} rows, ${run.refused} refused`,
        );
      }
    }
    const loadAfter = loadAverage();
    // The error codes of failed batch operations, per set-up and interface, as the sidecars counted them.
    const failures = new Map<string, Map<string, number>>();
    for (const pair of pairs.filter((p) => p.iface === 'batch')) {
      const { s } = sidecars.get(pair.setup.name) as { s: SidecarProcess };
      const codes = new Map<string, number>();
      for (const line of (await s.metrics()).split('\n')) {
        const m =
          /^ripplecache_sidecar_requests_total\{operation="batch",tier="[^"]*",outcome="(\w+)"[^}]*\} (\S+)$/.exec(
            line,
          );
        if (m && !['stored', 'deleted', 'hit', 'miss'].includes(m[1] as string) && Number(m[2]) > 0)
          codes.set(m[1] as string, (codes.get(m[1] as string) ?? 0) + Number(m[2]));
      }
      failures.set(id(pair), codes);
    }

    const total = (key: string) => {
      const rs = runs.get(key) ?? [];
      const sum = (f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0);
      return {
        rates: rs.map((r) => r.puts / r.seconds),
        drainedRates: rs.map((r) => r.puts / (r.seconds + r.drainSeconds)),
        puts: sum((r) => r.puts),
        statements: sum((r) => r.statements),
        rows: sum((r) => r.rows),
        refused: sum((r) => r.refused),
        cpu: CPU_CONSUMERS.map((_, i) =>
          rs.every((r) => r.cpu[i] !== undefined) ? sum((r) => r.cpu[i] ?? 0) : undefined,
        ),
        seconds: sum((r) => r.seconds),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
      };
    };
    out(`## Write policies: PUT throughput and database writes, per interface`);
    out();
    out(
      `${VALUE_BYTES}-byte values, keys over ${fmt(KEYS)}, ${ROUNDS} alternated rounds of ${SECONDS} s per set-up and interface; write-back flushIntervalMs 1000, flushBatchSize 500; --redis-timeout-ms 2000 on every sidecar; load generator, sidecars, redis-server and PostgreSQL share ${availableParallelism()} CPU cores. Load average (1 / 5 / 15 min) before: ${loadBefore}; at each round: ${loads.join('; ')}; after: ${loadAfter}.`,
    );
    for (const iface of ifaces) {
      out();
      out(`### ${IFACE_LABEL[iface]}`);
      out();
      out(
        '| set-up | PUT/s median (range) | PUT/s counting the drain | p50 / p99 latency (median) | PUTs | DB statements per 1,000 PUTs | DB rows per 1,000 PUTs | CPU µs per PUT: sidecar / redis / PostgreSQL / load generator / total |',
      );
      out('|---|---|---|---|---|---|---|---|');
      for (const setup of setups.filter((x) => x.ifaces.includes(iface))) {
        const x = total(`${setup.name}|${iface}`);
        const us = (c: number | undefined) => (c === undefined ? 'n/a' : fmt((1e6 * c) / x.puts, 1));
        const all = x.cpu.every((c) => c !== undefined) ? x.cpu.reduce<number>((a, c) => a + (c ?? 0), 0) : undefined;
        out(
          `| ${setup.name} | ${fmt(median(x.rates))} (${range(x.rates, 0)}) | ${fmt(median(x.drainedRates))} (${range(x.drainedRates, 0)}) | ${Number.isNaN(x.p50) ? 'n/a' : `${fmt(x.p50, 1)} / ${fmt(x.p99, 1)} ms`} | ${fmt(x.puts)} | ${fmt((1000 * x.statements) / x.puts, 1)} | ${fmt((1000 * x.rows) / x.puts, 1)} | ${[...x.cpu, all].map(us).join(' / ')} |`,
        );
        if (x.refused > 0) {
          const codes = [...(failures.get(`${setup.name}|${iface}`) ?? new Map<string, number>())]
            .map(([code, n]) => `${code} ${fmt(n)}`)
            .join(', ');
          out(`|   refused or failed PUTs: ${fmt(x.refused)}${codes ? ` (${codes})` : ''} | | | | | | | |`);
        }
      }
    }
    out();
    out('Ratios against write-through through the same interface, per round (median, range):');
    out();
    out(
      '| interface | write-back throughput | the same counting the drain | write-back + window throughput | the same counting the drain | write-back DB rows per PUT | write-back + window DB rows per PUT |',
    );
    out('|---|---|---|---|---|---|---|');
    const windowName = setups[2]?.name ?? '';
    for (const iface of ifaces) {
      const wt = runs.get(`write-through|${iface}`) ?? [];
      const ratio = (name: string, f: (r: Run) => number) =>
        (runs.get(`${name}|${iface}`) ?? []).map((r, i) => f(r) / f(wt[i] as Run));
      const cell = (xs: number[], digits: number) => `${fmt(median(xs), digits)}× (${range(xs, digits)})`;
      const rate = (r: Run) => r.puts / r.seconds;
      const drained = (r: Run) => r.puts / (r.seconds + r.drainSeconds);
      const rows = (r: Run) => r.rows / r.puts;
      out(
        `| ${IFACE_LABEL[iface]} | ${cell(ratio('write-back', rate), 2)} | ${cell(ratio('write-back', drained), 2)} | ${cell(ratio(windowName, rate), 2)} | ${cell(ratio(windowName, drained), 2)} | ${cell(ratio('write-back', rows), 3)} | ${cell(ratio(windowName, rows), 3)} |`,
      );
    }
    if (!ifaces.includes('resp'))
      out('\n(No RESP column: this sidecar has no `--listen-resp`, or redis-benchmark is missing.)');
  } finally {
    await stopAllSidecars();
    await Promise.all([redis.stop(), pg.stop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
