/**
 * `npm run bench:operator`: N CacheClusters (`BENCH_CACHECLUSTERS`, default 200) applied at once to a real
 * control plane, against the operator as the image runs it (its bundle, `npm run build`). Reports the time until all their StatefulSets exist and
 * until every CacheCluster has a status, the operator's CPU seconds (utime + stime from /proc), its RSS
 * when idle (before any CacheCluster) and at its peak (VmHWM), and the API requests it made (counted in the
 * API server's audit log by the operator's user agent). The baseline, measured in the same run on the same
 * control plane, is kubectl server-side-applying N equivalent StatefulSets directly. Progress is followed
 * with watches, so the bench itself costs the 2-core machine almost nothing while it measures.
 *
 * `BENCH_OPERATOR_MAIN=/path/to/dist/operator/src/main.js` runs another build (e.g. an older commit's)
 * instead of compiling this tree, for A/B comparisons; `BENCH_OPERATOR_ARGS` adds operator flags
 * (space-separated), `BENCH_NODE_FLAGS` flags of node itself (e.g. `--optimize-for-size`), `BENCH_OPERATOR_ENV`
 * variables of the operator's environment only (space-separated NAME=value, e.g. `MALLOC_ARENA_MAX=2`). Redis pods do not exist here (no kubelet), so live config fails fast per pod and is
 * retried, as it would be while pods start.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/harness/control-plane.js';
import { startOperator } from '../test/harness/operator.js';

const N = Number(process.env.BENCH_CACHECLUSTERS ?? 200);
/** How long to watch the operator after everything is done, for its steady-state cost. */
const STEADY_MS = Number(process.env.BENCH_STEADY_MS ?? 20_000);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

interface AuditEvent {
  userAgent?: string;
  verb?: string;
  objectRef?: { namespace?: string; resource?: string; subresource?: string };
}

/** `verb resource[/subresource] count` of some audit events, most frequent first. */
function breakdown(events: AuditEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) {
    const r = e.objectRef
      ? `${e.objectRef.resource ?? ''}${e.objectRef.subresource ? `/${e.objectRef.subresource}` : ''}`
      : '';
    const k = `${e.verb ?? '?'} ${r}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

function auditEvents(path: string): AuditEvent[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

interface Kubeconfig {
  clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
  users: Array<{ user: { 'client-certificate-data': string; 'client-key-data': string } }>;
}

/**
 * Counts the objects at `path` (a list URL) for which `done` holds, from a watch: the bench sees each change
 * as the API server sends it, at almost no cost to the machine (polling with kubectl cost a process per poll).
 */
function watchCount(kubeconfigPath: string, path: string, done: (obj: WatchedObject) => boolean) {
  const kc = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as Kubeconfig;
  const b64 = (s: string) => Buffer.from(s, 'base64');
  const names = new Set<string>();
  const url = new URL(`${kc.clusters[0]!.cluster.server}${path}?watch=1`);
  const req = request(url, {
    ca: b64(kc.clusters[0]!.cluster['certificate-authority-data']),
    cert: b64(kc.users[0]!.user['client-certificate-data']),
    key: b64(kc.users[0]!.user['client-key-data']),
  });
  req.on('response', (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: WatchedObject };
        const name = ev.object.metadata?.name;
        if (name && (ev.type === 'ADDED' || ev.type === 'MODIFIED') && done(ev.object)) names.add(name);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { count: () => names.size, close: () => req.destroy() };
}

interface WatchedObject {
  metadata?: { name?: string };
  status?: { phase?: string };
}

/** Requests made by the operator (client-node's fetch user agent). */
const byOperator = (e: AuditEvent) => e.userAgent?.startsWith('node-fetch') ?? false;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-bench-'));
  const policy = join(dir, 'audit-policy.yaml');
  const auditLog = join(dir, 'audit.log');
  // One line per request, when it completes (watches when they end).
  writeFileSync(
    policy,
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived", "ResponseStarted"]\nrules:\n  - level: Metadata\n',
  );
  const cp = await startControlPlane({
    apiserverArgs: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-maxsize=0'],
  });
  try {
    await cp.applyCrds();
    for (const ns of ['baseline', 'bench']) await cp.kubectl(['create', 'namespace', ns]);

    // Baseline: the API server writing N StatefulSets applied directly.
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
    const baseWatch = watchCount(cp.kubeconfigPath, '/apis/apps/v1/namespaces/baseline/statefulsets', () => true);
    let t0 = performance.now();
    const base = await cp.kubectl(['apply', '--server-side', '-f', '-'], stsDocs);
    if (base.code !== 0) throw new Error(base.stderr);
    while (baseWatch.count() < N) await new Promise((r) => setTimeout(r, 20));
    const baselineMs = performance.now() - t0;
    baseWatch.close();
    const baselineRequests = auditEvents(auditLog).filter(
      (e) => e.userAgent?.startsWith('kubectl') && e.verb === 'patch' && e.objectRef?.namespace === 'baseline',
    ).length;
    process.stderr.write(`[bench] baseline: ${N} StatefulSets applied directly in ${secs(baselineMs)}\n`);

    // Measure the operator as it ships: the bundle the image runs (scripts/bundle-operator.ts).
    let compiledMain = process.env.BENCH_OPERATOR_MAIN;
    if (!compiledMain) {
      process.stderr.write('[bench] compiling (npm run build)\n');
      execFileSync('npm', ['run', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] });
      compiledMain = join(process.cwd(), 'dist/operator/bundle/main.mjs');
    }
    const op = await startOperator({
      compiled: true,
      compiledMain,
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'bench',
      nodeArgs: (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      env: Object.fromEntries(
        (process.env.BENCH_OPERATOR_ENV ?? '')
          .split(' ')
          .filter(Boolean)
          .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
      ),
      extraArgs: [
        '--leader-elect=false',
        '--log-level',
        'warn',
        '--redis-timeout-ms',
        '500',
        ...(process.env.BENCH_OPERATOR_ARGS ?? '').split(' ').filter(Boolean),
      ],
    });
    const pid = op.proc.child.pid!;
    await new Promise((r) => setTimeout(r, 3000)); // let start-up settle
    const idleRss = statusKb(pid, 'VmRSS');
    const cpu0 = cpuSeconds(pid);
    const req0 = auditEvents(auditLog).filter(byOperator).length;
    const ccDocs = Array.from(
      { length: N },
      (_, i) => `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: c${i}, namespace: bench }
spec: { topology: standalone, eviction: { policy: allkeys-lru, maxMemory: 64Mi } }
`,
    ).join('---\n');
    const r0 = await op.metric('ripplecache_operator_reconcile_total');
    const stsWatch = watchCount(cp.kubeconfigPath, '/apis/apps/v1/namespaces/bench/statefulsets', () => true);
    const statusWatch = watchCount(
      cp.kubeconfigPath,
      '/apis/cache.ripplecache.io/v1alpha1/namespaces/bench/cacheclusters',
      (o) => Boolean(o.status?.phase),
    );
    let lastLog = 0;
    const load0 = loadavg()[0]!;
    t0 = performance.now();
    const applied = await cp.kubectl(['apply', '--server-side', '-f', '-'], ccDocs);
    if (applied.code !== 0) throw new Error(applied.stderr);
    let stsMs: number | undefined;
    let statusMs: number | undefined;
    let cpuAtSts = NaN;
    let last = '';
    while (stsMs === undefined || statusMs === undefined) {
      const sts = stsWatch.count();
      const withStatus = statusWatch.count();
      const now = performance.now();
      if (stsMs === undefined && sts >= N) {
        stsMs = now - t0;
        cpuAtSts = cpuSeconds(pid) - cpu0;
      }
      if (statusMs === undefined && withStatus >= N) statusMs = now - t0;
      const line = `${sts}/${N} StatefulSets, ${withStatus}/${N} statuses`;
      if (line !== last && (now - lastLog > 2000 || (stsMs !== undefined && statusMs !== undefined))) {
        process.stderr.write(`[bench] ${line} after ${secs(now - t0)}\n`);
        last = line;
        lastLog = now;
      }
      if (now - t0 > 600_000) throw new Error(`not done after 600 s: ${line}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    stsWatch.close();
    statusWatch.close();
    const cpuDone = cpuSeconds(pid) - cpu0;
    const opEvents = auditEvents(auditLog).filter(byOperator);
    const reqDone = opEvents.length - req0;
    const reqBreakdown = breakdown(opEvents.slice(req0));
    const reconciles = (await op.metric('ripplecache_operator_reconcile_total')) - r0;
    // Time spent in the client-side rate limit (0 with a build from before the metric existed).
    const throttleWait = await op.metric('ripplecache_operator_kube_api_throttle_wait_seconds_sum');
    const load1 = loadavg()[0]!;
    const peakRss = statusKb(pid, 'VmHWM');
    const rssDone = statusKb(pid, 'VmRSS');
    // Steady state: nothing changes; what does the operator still do?
    const cpuSteady0 = cpuSeconds(pid);
    const reqSteady0 = auditEvents(auditLog).filter(byOperator).length;
    await new Promise((r) => setTimeout(r, STEADY_MS));
    const steadyCpu = cpuSeconds(pid) - cpuSteady0;
    const steadyReq = auditEvents(auditLog).filter(byOperator).length - reqSteady0;
    const rssSteady = statusKb(pid, 'VmRSS');
    await op.stop();

    const rows = [
      ['CacheClusters applied at once', String(N)],
      ['operator build', compiledMain ?? 'this tree (compiled)'],
      ['extra operator flags', process.env.BENCH_OPERATOR_ARGS ?? ''],
      ['node flags', process.env.BENCH_NODE_FLAGS ?? ''],
      ['operator environment', process.env.BENCH_OPERATOR_ENV ?? ''],
      ['load average (1 min) at apply / at done', `${load0.toFixed(2)} / ${load1.toFixed(2)}`],
      ['time until all StatefulSets exist', secs(stsMs)],
      ['time until every CacheCluster has a status', secs(statusMs)],
      ['baseline: StatefulSets applied directly', secs(baselineMs)],
      ['ratio operator (StatefulSets) / baseline', `${(stsMs / baselineMs).toFixed(2)}x`],
      ['operator CPU until all StatefulSets', `${cpuAtSts.toFixed(2)} s`],
      ['operator CPU until every status', `${cpuDone.toFixed(2)} s`],
      ['operator idle RSS (before any CacheCluster)', MiB(idleRss)],
      ['operator peak RSS (VmHWM)', MiB(peakRss)],
      ['operator RSS when done / after steady window', `${MiB(rssDone)} / ${MiB(rssSteady)}`],
      ['RSS per CacheCluster (steady - idle) / N', `${((rssSteady - idleRss) / N / 1024).toFixed(1)} KiB`],
      ['API requests by the operator until every status', String(reqDone)],
      ['  per CacheCluster', (reqDone / N).toFixed(1)],
      ['  by verb and resource', reqBreakdown],
      ['baseline: API requests (kubectl patches)', String(baselineRequests)],
      ['reconciles until every status', String(reconciles)],
      ['time requests waited in the rate limit (sum)', `${throttleWait.toFixed(2)} s`],
      [`steady state: requests / CPU in ${STEADY_MS / 1000} s`, `${steadyReq} / ${steadyCpu.toFixed(2)} s`],
    ];
    console.log('\nripplecache operator benchmark');
    for (const [k, v] of rows) console.log(`  ${k!.padEnd(50)} ${v}`);
  } finally {
    await cp.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
