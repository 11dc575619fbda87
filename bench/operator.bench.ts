/**
 * `npm run bench:operator`: 200 CacheClusters applied at once to a real control plane; prints the time
 * until all their StatefulSets exist, reconciles per second, and the operator's peak RSS. The baseline,
 * measured in the same run on the same control plane, is kubectl server-side-applying 200 equivalent
 * StatefulSets directly: the ratio says what the operator adds over the API server's own write speed.
 * Redis pods do not exist here (no kubelet), so live config fails fast per pod and is retried, as it
 * would be while pods start.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startControlPlane } from '../test/harness/control-plane.js';
import { startOperator } from '../test/harness/operator.js';

const N = Number(process.env.BENCH_CACHECLUSTERS ?? 200);

function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function countStatefulSets(kubectl: (a: string[]) => Promise<{ stdout: string }>, ns: string): Promise<number> {
  const r = await kubectl(['get', 'statefulsets', '-n', ns, '-o', 'name']);
  return r.stdout.split('\n').filter(Boolean).length;
}

async function main(): Promise<void> {
  const cp = await startControlPlane();
  try {
    await cp.applyCrds();
    for (const ns of ['baseline', 'bench']) await cp.kubectl(['create', 'namespace', ns]);

    // Baseline: the API server writing 200 StatefulSets applied directly.
    const stsDocs = Array.from(
      { length: N },
      (_, i) => `apiVersion: apps/v1
kind: StatefulSet
metadata: { name: c${i}, namespace: baseline }
spec:
  serviceName: c${i}-headless
  replicas: 1
  selector: { matchLabels: { app: c${i} } }
  template:
    metadata: { labels: { app: c${i} } }
    spec: { containers: [ { name: redis, image: redis:7.2-alpine } ] }
`,
    ).join('---\n');
    let t0 = performance.now();
    const base = await cp.kubectl(['apply', '--server-side', '-f', '-'], stsDocs);
    if (base.code !== 0) throw new Error(base.stderr);
    while ((await countStatefulSets(cp.kubectl, 'baseline')) < N) await new Promise((r) => setTimeout(r, 100));
    const baselineMs = performance.now() - t0;
    process.stderr.write(
      `[bench] baseline: ${N} StatefulSets applied directly in ${(baselineMs / 1000).toFixed(2)} s\n`,
    );

    // Measure the operator as it ships: compiled JavaScript, no TypeScript loader.
    process.stderr.write('[bench] compiling (npm run build)\n');
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
    const op = await startOperator({
      compiled: true,
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'bench',
      extraArgs: ['--leader-elect=false', '--log-level', 'warn', '--redis-timeout-ms', '500'],
    });
    const ccDocs = Array.from(
      { length: N },
      (_, i) => `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: c${i}, namespace: bench }
spec: { topology: standalone, eviction: { policy: allkeys-lru, maxMemory: 64Mi } }
`,
    ).join('---\n');
    const r0 = await op.metric('ripplecache_operator_reconcile_total');
    t0 = performance.now();
    const applied = await cp.kubectl(['apply', '--server-side', '-f', '-'], ccDocs);
    if (applied.code !== 0) throw new Error(applied.stderr);
    let last = -1;
    for (;;) {
      const n = await countStatefulSets(cp.kubectl, 'bench');
      if (n !== last) {
        process.stderr.write(
          `[bench] ${n}/${N} StatefulSets after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
        );
        last = n;
      }
      if (n >= N) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const operatorMs = performance.now() - t0;
    const reconciles = (await op.metric('ripplecache_operator_reconcile_total')) - r0;
    const rss = peakRssBytes(op.proc.child.pid!);
    await op.stop();

    const rows = [
      ['CacheClusters applied at once', String(N)],
      ['time until all StatefulSets exist', `${(operatorMs / 1000).toFixed(2)} s`],
      ['baseline: StatefulSets applied directly', `${(baselineMs / 1000).toFixed(2)} s`],
      ['ratio operator / baseline', `${(operatorMs / baselineMs).toFixed(2)}x`],
      ['reconciles in that time', String(reconciles)],
      ['reconciles per second', (reconciles / (operatorMs / 1000)).toFixed(1)],
      ['operator peak RSS', `${(rss / 1024 / 1024).toFixed(1)} MiB`],
    ];
    console.log('\nripplecache operator benchmark');
    for (const [k, v] of rows) console.log(`  ${k!.padEnd(42)} ${v}`);
  } finally {
    await cp.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
