/**
 * `npx tsx bench/write.bench.ts` (to be wired as `npm run bench:write`): PUT throughput and database writes
 * of each write policy, measured in the same run on the same machine.
 *
 * One real sidecar process per policy, all on one redis-server (each on its own database index, so that
 * write-back's journal is its own) and one PostgreSQL (a table per policy), plus a sidecar without an
 * origin (PUT = one Redis write). Load: 64 connections, PUTs of 256-byte values to keys drawn from
 * Zipf(0.99) over 10,000 keys, sent by wrk (C; Debian's `wrk` package, installed by
 * scripts/ensure-tools.sh) or, when wrk is missing or BENCH_WRITE_LOADGEN=autocannon, by autocannon (Node).
 * wrk needs about half the CPU per request that autocannon does; on a machine whose cores the load
 * generator shares with everything it measures, that CPU is taken from the sidecar, Redis and PostgreSQL,
 * and more so for the faster policy. Rounds alternate the order so that noise from the rest of the machine
 * falls on all of them alike.
 *
 * "Database writes" are counted by the sidecars themselves (`ripplecache_sidecar_origin_requests_total`:
 * statements sent to PostgreSQL that wrote; `ripplecache_sidecar_origin_rows_written_total`: rows stored).
 * For write-back they include the flushes that finish after the load stops (the journal is drained before
 * counting). Throughput counts only 204 answers.
 *
 * PostgreSQL runs with its default durability (fsync and synchronous commit on), as an application's
 * database does in production: a write-through PUT waits for a commit, a write-back batch pays one.
 *
 * The CPU each process used during each run (and the write-back drain after it) is read from /proc
 * (Linux): the sidecar, redis-server, PostgreSQL (postmaster and backends) and the load generator (wrk as
 * an exited child of this process, or autocannon as this process).
 *
 * Environment: BENCH_WRITE_SECONDS (per run, default 10), BENCH_WRITE_ROUNDS (default 2),
 * BENCH_WRITE_KEYS (default 10000), BENCH_WRITE_LOADGEN (wrk | autocannon; default wrk when installed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng, zipfSampler } from './sidecar-traces.js';
import { waitFor } from '../test/harness/ports.js';
import { startPostgres, type PostgresServer } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';

const SECONDS = Number(process.env.BENCH_WRITE_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_WRITE_ROUNDS ?? 2);
const KEYS = Number(process.env.BENCH_WRITE_KEYS ?? 10_000);
const CONNECTIONS = 64;
const ZIPF_S = 0.99;
const VALUE_BYTES = 256;
/** Upper bound on the requests of one run, whatever the speed. */
const MAX_REQUESTS_PER_RUN = 5_000_000;

/** `no-origin`: the baseline, a sidecar without an origin (every PUT is one Redis write). */
const POLICIES = ['write-through', 'write-back', 'write-around', 'no-origin'] as const;
type Policy = (typeof POLICIES)[number];

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
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

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
  return spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk';
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
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nWRK-RESULT {"requests":%d,"duration_us":%d,"status":%d,"socket":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/** CPU seconds used so far by this process's exited (waited-for) children: wrk, once it has exited. */
function childrenCpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[13]) + Number(f[14])) / 100;
}

async function loadWrk(s: SidecarProcess, seed: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-wrk-'));
  try {
    // Keys drawn ahead of the run (wrk cycles through them): more than a run sends at the speeds seen here.
    const next = zipfSampler(KEYS, ZIPF_S, prng(seed));
    writeFileSync(join(dir, 'keys'), Array.from({ length: 1_000_000 }, () => String(next())).join('\n'));
    writeFileSync(join(dir, 'put.lua'), WRK_SCRIPT);
    const cpuBefore = childrenCpuSeconds();
    const child = spawn(
      'wrk',
      [
        `-t${WRK_THREADS}`,
        `-c${CONNECTIONS}`,
        `-d${SECONDS}s`,
        '--timeout',
        '10s',
        '-s',
        join(dir, 'put.lua'),
        s.url,
        '--',
        join(dir, 'keys'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
    const m = /WRK-RESULT (\{.*\})/.exec(stdout);
    if (code !== 0 || !m) throw new Error(`wrk exited with ${code}: ${stdout}`);
    const r = JSON.parse(m[1] as string) as {
      requests: number;
      duration_us: number;
      status: number;
      socket: number;
      p50_us: number;
      p99_us: number;
    };
    return {
      ok: r.requests - r.status,
      refused: r.status,
      errors: r.socket,
      seconds: r.duration_us / 1e6,
      p50: Math.round(r.p50_us / 100) / 10,
      p99: Math.round(r.p99_us / 100) / 10,
      cpuSeconds: childrenCpuSeconds() - cpuBefore,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

async function main(): Promise<void> {
  log('starting redis-server and PostgreSQL');
  const [redis, pg] = await Promise.all([startRedis(), startPostgres({ durable: true })]);
  const sidecars = new Map<Policy, SidecarProcess>();
  try {
    for (const [i, policy] of POLICIES.entries()) {
      sidecars.set(
        policy,
        await startSidecar({
          name: `bench-${policy}`,
          args: [
            '--redis',
            `${redis.url}/${i + 1}`,
            '--channel',
            `ripplecache:bench-write-${i}`,
            '--log-level',
            'warn',
            ...(policy === 'no-origin'
              ? []
              : ['--origin', pg.url, '--origin-table', `bench_${policy.replace('-', '_')}`, '--write-policy', policy]),
          ],
        }),
      );
    }
    // Create the tables and warm up the JIT of every sidecar.
    for (const s of sidecars.values()) {
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
    const runs = new Map<Policy, Run[]>(POLICIES.map((p) => [p, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? POLICIES : [...POLICIES].reverse();
      for (const policy of order) {
        const s = sidecars.get(policy) as SidecarProcess;
        const before = await dbWrites(s);
        const readCpu = () => [cpuSeconds(s.pid), cpuSeconds(redis.pid), postgresCpuSeconds(pg)];
        const cpuBefore = readCpu();
        const r = await load(s, 1000 * round + POLICIES.indexOf(policy));
        if (r.errors > 0) throw new Error(`${policy}: ${r.errors} connection errors`);
        if (policy === 'write-back') {
          await waitFor(
            'the write-back journal drained',
            async () => (await metricSum(s, 'ripplecache_sidecar_writeback_pending')) === 0,
            120_000,
            100,
          );
        }
        const cpuAfter = readCpu();
        const after = await dbWrites(s);
        const run: Run = {
          puts: r.ok,
          seconds: r.seconds,
          p50: r.p50,
          p99: r.p99,
          statements: after.statements - before.statements,
          rows: after.rows - before.rows,
          refused: r.refused,
          cpu: [
            ...cpuAfter.map((a, i) => (a === undefined || cpuBefore[i] === undefined ? undefined : a - cpuBefore[i])),
            r.cpuSeconds,
          ],
        };
        runs.get(policy)?.push(run);
        log(
          `${policy} round ${round + 1}: ${fmt(run.puts / run.seconds)} PUT/s, ${fmt(run.statements)} statements, ${fmt(run.rows)} rows, ${run.refused} refused`,
        );
      }
    }

    const total = (p: Policy) => {
      const rs = runs.get(p) ?? [];
      const sum = (f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0);
      return {
        rate: sum((r) => r.puts) / sum((r) => r.seconds),
        puts: sum((r) => r.puts),
        statements: sum((r) => r.statements),
        rows: sum((r) => r.rows),
        refused: sum((r) => r.refused),
        cpu: CPU_CONSUMERS.map((_, i) =>
          rs.every((r) => r.cpu[i] !== undefined) ? sum((r) => r.cpu[i] ?? 0) : undefined,
        ),
        seconds: sum((r) => r.seconds),
        p50: Math.max(...rs.map((r) => r.p50)),
        p99: Math.max(...rs.map((r) => r.p99)),
      };
    };
    const t = Object.fromEntries(POLICIES.map((p) => [p, total(p)])) as Record<Policy, ReturnType<typeof total>>;
    out(`## Write policies: PUT throughput and database writes`);
    out();
    out(
      `${CONNECTIONS} connections (${LOADGEN === 'wrk' ? `wrk, ${WRK_THREADS} threads` : 'autocannon'}), ${VALUE_BYTES}-byte values, keys Zipf(${ZIPF_S}) over ${fmt(KEYS)}, ${ROUNDS} alternated rounds of ${SECONDS} s per policy; write-back defaults (flushIntervalMs 1000, flushBatchSize 500); load generator, sidecars, redis-server and PostgreSQL share ${availableParallelism()} CPU cores.`,
    );
    out();
    out(
      '| policy | PUT/s | p50 / p99 latency | PUTs | DB statements | DB rows written | statements per 1,000 PUTs | rows per 1,000 PUTs |',
    );
    out('|---|---|---|---|---|---|---|---|');
    for (const p of POLICIES) {
      const x = t[p];
      out(
        `| ${p} | ${fmt(x.rate)} | ${x.p50} / ${x.p99} ms | ${fmt(x.puts)} | ${fmt(x.statements)} | ${fmt(x.rows)} | ${fmt((1000 * x.statements) / x.puts, 1)} | ${fmt((1000 * x.rows) / x.puts, 1)} |`,
      );
    }
    out();
    out('CPU per PUT (µs; in parentheses: cores used on average over the run):');
    out();
    out(`| policy | ${CPU_CONSUMERS.join(' | ')} | total |`);
    out(`|---|${CPU_CONSUMERS.map(() => '---|').join('')}---|`);
    for (const p of POLICIES) {
      const x = t[p];
      const cell = (c: number | undefined) =>
        c === undefined ? 'n/a' : `${fmt((1e6 * c) / x.puts, 1)} (${fmt(c / x.seconds, 2)})`;
      const total = x.cpu.every((c) => c !== undefined) ? x.cpu.reduce<number>((a, c) => a + (c ?? 0), 0) : undefined;
      out(`| ${p} | ${x.cpu.map(cell).join(' | ')} | ${cell(total)} |`);
    }
    out();
    const wb = t['write-back'];
    const wt = t['write-through'];
    const perPut = (x: typeof wb, k: 'statements' | 'rows') => x[k] / x.puts;
    out(
      `write-back / write-through: throughput ${fmt(wb.rate / wt.rate, 2)}×; DB statements per PUT ${fmt(perPut(wb, 'statements') / perPut(wt, 'statements'), 4)} (1/${fmt(perPut(wt, 'statements') / perPut(wb, 'statements'), 0)}); DB rows per PUT ${fmt(perPut(wb, 'rows') / perPut(wt, 'rows'), 3)} (1/${fmt(perPut(wt, 'rows') / perPut(wb, 'rows'), 1)})`,
    );
    out(`write-around / write-through: throughput ${fmt(t['write-around'].rate / wt.rate, 2)}×`);
    out(
      `against the no-origin ceiling (same run): write-back ${fmt(wb.rate / t['no-origin'].rate, 2)}×, write-through ${fmt(wt.rate / t['no-origin'].rate, 2)}×, write-around ${fmt(t['write-around'].rate / t['no-origin'].rate, 2)}×`,
    );
    if (POLICIES.some((p) => t[p].refused > 0))
      out(`refused PUTs (non-2xx): ${POLICIES.map((p) => `${p} ${t[p].refused}`).join(', ')}`);
  } finally {
    await stopAllSidecars();
    await Promise.all([redis.stop(), pg.stop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
