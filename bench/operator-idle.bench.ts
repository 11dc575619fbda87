/**
 * `npm run bench:operator-idle`: the compiled operator's idle RSS (no CacheCluster) under several sets of
 * node flags, on one real control plane, in alternated rounds (variant A, B, C, A, B, C, ...). Each start
 * waits for /readyz (informers synced), then `BENCH_IDLE_SETTLE_MS` (default 6000), then reads VmRSS and
 * the CPU used so far from /proc. Reports median and range per variant, and the 1-minute load average.
 *
 *   BENCH_IDLE_VARIANTS='|--max-semi-space-size=1|--max-semi-space-size=2'  (variants separated by |;
 *   each a space-separated list of node flags; the empty one is node's defaults; a word ending in .js is
 *   the compiled main.js (or a bundle's main.mjs) to run instead of BENCH_OPERATOR_MAIN, e.g. another build for an A/B; a word
 *   NAME=value is set in the operator's environment, e.g. MALLOC_ARENA_MAX=2)
 *   BENCH_IDLE_ROUNDS=3   BENCH_OPERATOR_MAIN=/path/to/dist/operator/src/main.js (default: this tree's bundle,
 *   dist/operator/bundle/main.mjs, built first)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/harness/control-plane.js';
import { startOperator } from '../test/harness/operator.js';

const VARIANTS = (process.env.BENCH_IDLE_VARIANTS ?? '|--max-semi-space-size=1').split('|');
const ROUNDS = Number(process.env.BENCH_IDLE_ROUNDS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_IDLE_SETTLE_MS ?? 6000);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  // By default the operator as the image runs it: its bundle (scripts/bundle-operator.ts).
  let compiledMain = process.env.BENCH_OPERATOR_MAIN;
  if (!compiledMain) {
    execFileSync('npm', ['run', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] });
    compiledMain = join(process.cwd(), 'dist/operator/bundle/main.mjs');
  }
  const cp = await startControlPlane();
  const rss = VARIANTS.map(() => [] as number[]);
  const cpu = VARIANTS.map(() => [] as number[]);
  const loads: number[] = [];
  try {
    await cp.applyCrds();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, flags] of VARIANTS.entries()) {
        loads.push(loadavg()[0]!);
        const words = flags.split(' ').filter(Boolean);
        const isEnv = (w: string) => /^[A-Z_][A-Z0-9_]*=/.test(w);
        const isMain = (w: string) => /\.m?js$/.test(w);
        const entry = words.find(isMain) ?? compiledMain;
        const op = await startOperator({
          compiled: true,
          ...(entry ? { compiledMain: entry } : {}),
          kubeconfigPath: cp.kubeconfigPath,
          identity: `idle-${round}-${i}`,
          nodeArgs: words.filter((w) => !isMain(w) && !isEnv(w)),
          env: Object.fromEntries(
            words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
          ),
          extraArgs: ['--leader-elect=false', '--log-level', 'warn'],
        });
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const pid = op.proc.child.pid!;
        rss[i]!.push(rssMiB(pid));
        cpu[i]!.push(cpuSeconds(pid));
        await op.stop();
        process.stderr.write(
          `[idle] round ${round + 1} '${flags}': ${rss[i]!.at(-1)!.toFixed(1)} MiB, ${cpu[i]!.at(-1)!.toFixed(2)} s CPU\n`,
        );
      }
    }
  } finally {
    await cp.stop();
  }
  console.log(`\nripplecache operator idle RSS (${ROUNDS} alternated rounds, ${SETTLE_MS} ms after /readyz)`);
  console.log(
    `  load average (1 min) at the starts: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}`,
  );
  for (const [i, flags] of VARIANTS.entries()) {
    const r = rss[i]!;
    const c = cpu[i]!;
    console.log(
      `  ${(flags || '(node defaults)').padEnd(40)} RSS ${median(r).toFixed(1)} MiB (${Math.min(...r).toFixed(1)}-${Math.max(...r).toFixed(1)}), ` +
        `CPU at start ${median(c).toFixed(2)} s (${Math.min(...c).toFixed(2)}-${Math.max(...c).toFixed(2)})`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
