/**
 * `npm run bench:cluster-idle`: the idle cost of one write-back sidecar on a 3-shard Redis Cluster
 * (`--redis-cluster`, 256 bucket streams, flush interval 1 s, claim timeout 30 s: the defaults), this tree
 * against a baseline build (issue 15: before the flusher chose which buckets to read), in the same run.
 *
 * One cluster (3 primaries, no replicas) and one PostgreSQL origin serve both. Rounds
 * (BENCH_IDLE_ROUNDS, default 3) alternate the two builds (order flipped every round): start the sidecar,
 * wait for /readyz and BENCH_IDLE_WARMUP_SECONDS (default 5: its first cycles probe or read every bucket),
 * then count over BENCH_IDLE_SECONDS (default 20):
 *
 *   - Redis commands/s: the sum over the primaries of INFO commandstats `calls` (commands run inside Lua
 *     scripts included, this bench's INFO calls excluded), and of `total_commands_processed` (a cross-check;
 *     redis-server 7.0 counts scripts' inner commands in it too);
 *   - CPU of the sidecar process and of the three redis-servers (/proc utime + stime), % of one core.
 *
 * Then the sidecar is stopped. Median and range per build, and the ratio this / baseline of the medians.
 *
 * Drain (BENCH_DRAIN_WRITES, default 4,000; 0 skips it): with the idle sidecar gone, two sidecars of the
 * build (A and B, defaults) over a fresh table; BENCH_DRAIN_WRITES acknowledged PUTs through A (32 in
 * flight, 1,000 keys, distinct values), then the time until PostgreSQL holds every key's last value
 * (polled every 50 ms): writes per second from the first PUT to that moment, and the lag after the last
 * acknowledgement, and the Redis commands per write. Same alternated rounds.
 *
 * The baseline is `git archive BENCH_IDLE_BASELINE` (default `main`) unpacked into a temporary directory
 * with this tree's node_modules linked in. The load average is printed before and after.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedisCluster } from '../test/harness/redis-cluster.js';
import { startSidecar, stopAllSidecars } from '../test/harness/sidecar.js';
import { cpuSeconds, cpuSecondsOf, fmt, loadAverage, median } from './wrk.js';

const ROUNDS = Number(process.env.BENCH_IDLE_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const WARMUP_SECONDS = Number(process.env.BENCH_IDLE_WARMUP_SECONDS ?? 5);
const BASELINE = process.env.BENCH_IDLE_BASELINE ?? 'main';
const DRAIN_WRITES = Number(process.env.BENCH_DRAIN_WRITES ?? 4000);
const DRAIN_KEYS = 1000;
const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`[bench:cluster-idle] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Drain {
  writesPerSec: number;
  lagAfterLastAckMs: number;
  /** Redis commands (commandstats, all primaries) from the first PUT until all in PostgreSQL, per write. */
  commandsPerWrite: number;
}

interface Sample {
  calls: number;
  processed: number;
  sidecarCpu: number;
  redisCpu: number;
}

/** The baseline's source tree: `git archive <ref>` unpacked, node_modules linked. */
function checkoutBaseline(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-idle-baseline-'));
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: REPO_ROOT }).toString().trim();
  const tar = execFileSync('git', ['archive', '--format=tar', commit], { cwd: REPO_ROOT, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(dir, 'node_modules'));
  log(`baseline ${ref} (${commit}) in ${dir}`);
  return dir;
}

async function main(): Promise<void> {
  out(`load before: ${loadAverage()}`);
  const baselineDir = checkoutBaseline(BASELINE);
  log('starting a 3-shard Redis Cluster and PostgreSQL');
  const cluster = await startRedisCluster({ shards: 3, replicas: 0 });
  const pgServer = await startPostgres();
  const primaries = cluster.nodes.map((n) => ({ port: n.port, pid: n.process.pid }));
  const builds = [
    { name: 'baseline', root: baselineDir },
    { name: 'this tree', root: REPO_ROOT },
  ];
  const samples: Record<string, Sample[]> = { baseline: [], 'this tree': [] };
  const drains: Record<string, Drain[]> = { baseline: [], 'this tree': [] };
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  const counters = async () => {
    let calls = 0;
    let processed = 0;
    for (const p of primaries) {
      const stats = String(await cluster.client(p.port).info('commandstats'));
      for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
      const info = String(await cluster.client(p.port).info('stats'));
      processed += Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
    }
    return { calls, processed };
  };
  const drain = async (root: string, tag: string): Promise<Drain> => {
    const table = `drain_${tag}`;
    const args = [
      '--redis',
      cluster.seedUrl,
      '--redis-cluster',
      '--origin',
      pgServer.url,
      '--origin-table',
      table,
      '--write-policy',
      'write-back',
      '--log-level',
      'warn',
    ];
    args.push('--redis-timeout-ms', '2000');
    const [A, B] = await Promise.all([
      startSidecar({ name: `drain-a-${tag}`, root, args }),
      startSidecar({ name: `drain-b-${tag}`, root, args }),
    ]);
    const last = new Map<string, string>();
    let next = 0;
    let refused = 0;
    const c0 = await counters();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < DRAIN_WRITES) {
          const i = next++;
          const key = `k${i % DRAIN_KEYS}`;
          const value = `${tag}-${i}`;
          // A write answered 503 (Redis slow to answer on a loaded machine) was not acknowledged: retry it.
          let r = await A.put(key, value);
          for (let tries = 1; r.status === 503 && tries < 5; tries++) {
            refused++;
            r = await A.put(key, value);
          }
          if (r.status !== 204) throw new Error(`drain PUT answered ${r.status} ${r.body}`);
          last.set(key, value);
        }
      }),
    );
    const acked = performance.now();
    for (;;) {
      // The sidecars create the table at their first flush: until then nothing is there.
      const rows = await db
        .query<{ key: string; value: Buffer | null }>(`SELECT key, value FROM ${table}`)
        .catch((err: unknown) => {
          if ((err as { code?: unknown }).code === '42P01') return { rows: [] };
          throw err;
        });
      const got = new Map(rows.rows.map((x) => [x.key, x.value?.toString()]));
      if ([...last].every(([k, v]) => got.get(k) === v)) break;
      if (performance.now() - acked > 120_000) throw new Error('the journal did not drain in 120 s');
      await sleep(50);
    }
    const done = performance.now();
    const c1 = await counters();
    await Promise.all([A.stop(), B.stop()]);
    if (refused > 0) log(`drain ${tag}: ${refused} PUTs answered 503 and were retried`);
    return {
      writesPerSec: DRAIN_WRITES / ((done - t0) / 1000),
      lagAfterLastAckMs: done - acked,
      commandsPerWrite: (c1.calls - c0.calls) / DRAIN_WRITES,
    };
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [...builds].reverse() : builds;
      for (const build of order) {
        const s = await startSidecar({
          name: `idle-${build.name}`,
          root: build.root,
          args: [
            '--redis',
            cluster.seedUrl,
            '--redis-cluster',
            '--origin',
            pgServer.url,
            '--write-policy',
            'write-back',
            '--log-level',
            'warn',
          ],
        });
        await sleep(WARMUP_SECONDS * 1000);
        const redisPids = primaries.map((p) => p.pid);
        const c0 = await counters();
        const cpu0 = cpuSeconds(s.pid);
        const r0 = cpuSecondsOf(redisPids);
        const t0 = performance.now();
        await sleep(SECONDS * 1000);
        // INFO calls between the two readings (2 per primary) are not counted in `calls`, but are in `processed`.
        const c1 = await counters();
        const secs = (performance.now() - t0) / 1000;
        const sample: Sample = {
          calls: (c1.calls - c0.calls) / secs,
          processed: (c1.processed - c0.processed - 2 * primaries.length) / secs,
          sidecarCpu: ((cpuSeconds(s.pid) - cpu0) / secs) * 100,
          redisCpu: ((cpuSecondsOf(redisPids) - r0) / secs) * 100,
        };
        samples[build.name]?.push(sample);
        log(
          `round ${round + 1} ${build.name}: ${fmt(sample.calls)} commands/s (${fmt(sample.processed)} sent), ` +
            `sidecar ${fmt(sample.sidecarCpu, 2)} %, redis ${fmt(sample.redisCpu, 2)} % of a core`,
        );
        await s.stop();
        if (DRAIN_WRITES > 0) {
          const d = await drain(build.root, `${build.name === 'baseline' ? 'base' : 'this'}_${round}`);
          drains[build.name]?.push(d);
          log(
            `round ${round + 1} ${build.name} drain: ${fmt(d.writesPerSec)} writes/s, ${fmt(d.lagAfterLastAckMs)} ms after the last ack, ${fmt(d.commandsPerWrite, 1)} commands/write`,
          );
        }
      }
    }
  } finally {
    await db.end().catch(() => {});
    await stopAllSidecars();
    await pgServer.stop();
    await cluster.stop();
    rmSync(baselineDir, { recursive: true, force: true });
  }
  const show = (xs: number[], d: number) =>
    `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;
  const rows: [string, (x: Sample) => number, number][] = [
    ['Redis commands/s, all primaries (commandstats, scripts’ inner calls included)', (x) => x.calls, 0],
    ['Redis commands/s, all primaries (total_commands_processed)', (x) => x.processed, 0],
    ['sidecar CPU, % of a core', (x) => x.sidecarCpu, 2],
    ['3 redis-servers CPU, % of a core (cluster bus included)', (x) => x.redisCpu, 2],
  ];
  const base = samples.baseline ?? [];
  const mine = samples['this tree'] ?? [];
  out();
  out(`## Idle write-back sidecar on a 3-shard cluster: baseline ${BASELINE} vs this tree`);
  out(`${ROUNDS} alternated rounds, ${SECONDS} s each after ${WARMUP_SECONDS} s of warm-up; median (range)`);
  out();
  out('| measure | baseline | this tree | ratio this / baseline |');
  out('|---|---|---|---|');
  for (const [label, f, d] of rows) {
    const b = base.map(f);
    const m = mine.map(f);
    out(`| ${label} | ${show(b, d)} | ${show(m, d)} | ${fmt(median(m) / median(b), 3)} |`);
  }
  if (DRAIN_WRITES > 0) {
    const b = drains.baseline ?? [];
    const m = drains['this tree'] ?? [];
    out();
    out(
      `Drain: ${fmt(DRAIN_WRITES)} acknowledged PUTs through sidecar A (32 in flight, ${fmt(DRAIN_KEYS)} keys), sidecar B idle, until PostgreSQL holds every last value`,
    );
    out();
    out('| measure | baseline | this tree | ratio this / baseline |');
    out('|---|---|---|---|');
    const rowsD: [string, (x: Drain) => number][] = [
      ['writes/s, first PUT until all in PostgreSQL', (x) => x.writesPerSec],
      ['ms from the last acknowledgement until all in PostgreSQL', (x) => x.lagAfterLastAckMs],
      ['Redis commands per write (all primaries, both sidecars)', (x) => x.commandsPerWrite],
    ];
    for (const [label, f] of rowsD) {
      const d = label.startsWith('Redis') ? 1 : 0;
      out(
        `| ${label} | ${show(b.map(f), d)} | ${show(m.map(f), d)} | ${fmt(median(m.map(f)) / median(b.map(f)), 3)} |`,
      );
    }
  }
  out();
  out(`load after: ${loadAverage()}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
