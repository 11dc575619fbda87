/**
 * `npm run bench:durability`: the write latency cost of `--durability replicated` (WAIT 1 after the Redis
 * step) against `primary`, for write-back and write-through PUTs, measured in the same run.
 *
 * One redis-server primary and one replica (`--replicaof`, loopback), one PostgreSQL, and four sidecar
 * processes — write-back and write-through, each with durability replicated and primary — each on its own
 * Redis database index (write-back's journal is its own) and its own table. Load: wrk (Debian's package,
 * as in bench/write.bench.ts), BENCH_DURABILITY_CONNECTIONS connections (default 16, closed loop), PUTs of
 * 256-byte values cycling over BENCH_DURABILITY_KEYS keys (default 10,000), BENCH_DURABILITY_SECONDS per run
 * (default 5). Rounds (BENCH_DURABILITY_ROUNDS, default 3) run the four configurations in a rotated order,
 * so that noise from the rest of the machine falls on all of them alike. Each round gives p50 and p99 (wrk's
 * latency percentiles) and throughput per configuration, and the ratio replicated / primary per policy;
 * the report shows the median and the range over the rounds.
 *
 * CPU per operation: CPU seconds (user + system, /proc, Linux) of the sidecar, the primary and the replica
 * during the run, divided by the acknowledged PUTs (PostgreSQL and wrk are left out). The machine's load
 * (/proc/loadavg) is printed before and after: this bench shares its cores with whatever else runs.
 */
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import { waitFor } from '../test/harness/ports.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';
import { cpuSecondsOf, cyclingKeysScript, fmt, hasWrk, loadAverage, median, range, runWrk } from './wrk.js';

const SECONDS = Number(process.env.BENCH_DURABILITY_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_DURABILITY_ROUNDS ?? 3);
const KEYS = Number(process.env.BENCH_DURABILITY_KEYS ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_DURABILITY_CONNECTIONS ?? 16);
const VALUE_BYTES = 256;

const CONFIGS = [
  { policy: 'write-back', durability: 'replicated' },
  { policy: 'write-back', durability: 'primary' },
  { policy: 'write-through', durability: 'replicated' },
  { policy: 'write-through', durability: 'primary' },
] as const;
type Config = (typeof CONFIGS)[number];
const label = (c: Config) => `${c.policy} ${c.durability}`;

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:durability] ${line}\n`);

const WRK_SCRIPT = cyclingKeysScript('PUT', KEYS, VALUE_BYTES);

interface RunResult {
  /** Acknowledged PUTs per second. */
  rate: number;
  p50ms: number;
  p99ms: number;
  /** Non-2xx answers and socket errors. */
  failed: number;
  /** CPU ms per acknowledged PUT (sidecar + primary + replica); NaN without /proc. */
  cpuMsPerOp: number;
}

async function run(s: SidecarProcess, pids: number[]): Promise<RunResult> {
  const before = cpuSecondsOf(pids);
  const r = await runWrk({ url: s.url, threads: 1, connections: CONNECTIONS, seconds: SECONDS, script: WRK_SCRIPT });
  const cpu = cpuSecondsOf(pids) - before;
  const ok = r.requests - r.status;
  return {
    rate: ok / r.seconds,
    p50ms: r.p50Ms,
    p99ms: r.p99Ms,
    failed: r.status + r.socket,
    cpuMsPerOp: (cpu * 1000) / Math.max(1, ok),
  };
}

async function main(): Promise<void> {
  if (!hasWrk()) throw new Error('wrk is not installed (scripts/ensure-tools.sh installs it)');
  log(`starting redis primary + replica, PostgreSQL and ${CONFIGS.length} sidecars`);
  const [primary, pg] = await Promise.all([startRedis(), startPostgres()]);
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const onReplica = new Redis(replica.url);
  await waitFor('the replica linked', async () =>
    String(await onReplica.info('replication')).includes('master_link_status:up'),
  );
  onReplica.disconnect();
  try {
    const sidecars = new Map<Config, SidecarProcess>();
    for (const [i, c] of CONFIGS.entries()) {
      sidecars.set(
        c,
        await startSidecar({
          args: [
            '--redis',
            `${primary.url}/${i}`,
            '--channel',
            `ripplecache:bench-durability-${i}`,
            '--origin',
            pg.url,
            '--origin-table',
            `bench_durability_${i}`,
            '--write-policy',
            c.policy,
            '--durability',
            c.durability,
            '--redis-timeout-ms',
            '2000',
            '--log-level',
            'warn',
          ],
          env: { RIPPLECACHE_LOG_LEVEL: 'warn' },
        }),
      );
    }
    const loadBefore = loadAverage();
    const results = new Map<Config, RunResult[]>(CONFIGS.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length] as Config);
      for (const c of order) {
        const s = sidecars.get(c) as SidecarProcess;
        const r = await run(s, [s.pid, primary.pid, replica.pid]);
        results.get(c)!.push(r);
        log(
          `round ${round + 1}/${ROUNDS} ${label(c)}: ${fmt(r.rate)} PUT/s, p50 ${fmt(r.p50ms, 2)} ms, p99 ${fmt(r.p99ms, 2)} ms, failed ${r.failed}`,
        );
      }
    }
    const loadAfter = loadAverage();

    out('# Write latency of durability replicated (WAIT 1) vs primary');
    out();
    out(
      `Load: wrk, 1 thread, ${CONNECTIONS} connections (closed loop), PUT of ${VALUE_BYTES}-byte values over ${fmt(KEYS)} keys, ` +
        `${SECONDS} s per run, ${ROUNDS} rounds in rotated order. Machine: ${availableParallelism()} cores, load average ` +
        `${loadBefore} before, ${loadAfter} after. Redis primary and replica, PostgreSQL and the sidecars on loopback.`,
    );
    out();
    out(
      '| configuration | PUT/s (median, range) | p50 ms (median, range) | p99 ms (median, range) | CPU ms/PUT (median) | failed |',
    );
    out('|---|---|---|---|---|---|');
    for (const c of CONFIGS) {
      const rs = results.get(c)!;
      out(
        `| ${label(c)} | ${fmt(median(rs.map((r) => r.rate)))} (${range(
          rs.map((r) => r.rate),
          0,
        )}) | ` +
          `${fmt(median(rs.map((r) => r.p50ms)), 2)} (${range(
            rs.map((r) => r.p50ms),
            2,
          )}) | ` +
          `${fmt(median(rs.map((r) => r.p99ms)), 2)} (${range(
            rs.map((r) => r.p99ms),
            2,
          )}) | ` +
          `${fmt(median(rs.map((r) => r.cpuMsPerOp)), 3)} | ${rs.reduce((n, r) => n + r.failed, 0)} |`,
      );
    }
    out();
    out('Ratios replicated / primary, per round (same round, same machine state):');
    out();
    out(
      '| policy | p50 ratio (median, range) | p99 ratio (median, range) | throughput ratio (median, range) | CPU/PUT ratio (median) |',
    );
    out('|---|---|---|---|---|');
    for (const policy of ['write-back', 'write-through'] as const) {
      const rep = results.get(CONFIGS.find((c) => c.policy === policy && c.durability === 'replicated')!)!;
      const pri = results.get(CONFIGS.find((c) => c.policy === policy && c.durability === 'primary')!)!;
      const ratio = (f: (r: RunResult) => number) => rep.map((r, i) => f(r) / f(pri[i] as RunResult));
      const p50 = ratio((r) => r.p50ms);
      const p99 = ratio((r) => r.p99ms);
      const rate = ratio((r) => r.rate);
      const cpu = ratio((r) => r.cpuMsPerOp);
      out(
        `| ${policy} | ${fmt(median(p50), 2)} (${range(p50, 2)}) | ${fmt(median(p99), 2)} (${range(p99, 2)}) | ` +
          `${fmt(median(rate), 2)} (${range(rate, 2)}) | ${fmt(median(cpu), 2)} |`,
      );
    }
  } finally {
    await stopAllSidecars();
    await Promise.all([replica.stop(), primary.stop(), pg.stop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
