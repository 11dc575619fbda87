/**
 * `make demo`: the local walkthrough. Starts a real control plane (etcd, kube-apiserver,
 * kube-controller-manager), the operator, the CacheClusters of examples/standalone.yaml and
 * examples/replication.yaml, one local redis-server per Redis pod (this machine has no kubelet or container runtime, so local processes stand in for the pods), and
 * shows what the operator did: the children, the status, and the eviction settings applied live.
 * With DEMO_KEEP=1 everything keeps running until Ctrl-C, and the kubeconfig path is printed.
 */
import { Redis } from 'ioredis';
import { startControlPlane, type ControlPlane } from '../test/harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../test/harness/operator.js';
import { PodSimulator } from '../test/harness/pod-simulator.js';
import { waitFor } from '../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const NS = 'default';
/** The operator's events only (see the events step). */
const EVENTS_ARGS = [
  'get',
  'events',
  '--field-selector',
  'involvedObject.kind=CacheCluster',
  '--sort-by=.metadata.creationTimestamp',
];
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
function step(title: string): void {
  console.log(`\n${bold(`==> ${title}`)}`);
}

async function show(cp: ControlPlane, args: string[]): Promise<string> {
  console.log(`$ kubectl ${args.join(' ')}`);
  const r = await cp.kubectl(args);
  const out = (r.code === 0 ? r.stdout : r.stderr).trimEnd();
  console.log(out);
  return out;
}

async function configGet(pod: string, port: number): Promise<string> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    const mm = (await r.call('CONFIG', 'GET', 'maxmemory')) as string[];
    const mp = (await r.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
    const role = ((await r.call('ROLE')) as unknown[])[0];
    return `  ${pod.padEnd(12)} role=${String(role).padEnd(7)} maxmemory=${mm[1]!.padEnd(10)} maxmemory-policy=${mp[1]}`;
  } finally {
    r.disconnect();
  }
}

async function ccStatus(cp: ControlPlane, name: string): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', name, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(0)));
  try {
    step('Starting a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)');
    const cp = await startControlPlane();
    cleanup.push(() => cp.stop());
    await cp.applyCrds();
    await show(cp, ['get', 'crd', 'cacheclusters.cache.ripplecache.io']);

    step('Starting one redis-server per Redis pod (standing in for the pods a kubelet would run)');
    const sessions0 = await startRedis();
    const catalog0 = await startRedis();
    const catalog1 = await startRedis({ args: ['--replicaof', '127.0.0.1', String(catalog0.port)] });
    const catalog2 = await startRedis({ args: ['--replicaof', '127.0.0.1', String(catalog0.port)] });
    const pods: Record<string, RedisProcess> = {
      'sessions-0': sessions0,
      'catalog-0': catalog0,
      'catalog-1': catalog1,
      'catalog-2': catalog2,
    };
    for (const r of Object.values(pods)) cleanup.push(() => r.stop());
    for (const [pod, r] of Object.entries(pods)) console.log(`  ${pod.padEnd(12)} redis-server on 127.0.0.1:${r.port}`);
    const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(Object.keys(pods)));
    sim.start();
    cleanup.push(() => sim.stop());

    step('Starting the operator (leader election on)');
    const op: OperatorProcess = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'demo-operator',
      podAddresses: Object.fromEntries(Object.entries(pods).map(([pod, r]) => [`${NS}/${pod}`, `127.0.0.1:${r.port}`])),
    });
    cleanup.push(() => op.stop());
    console.log(`  metrics: ${op.metricsUrl}`);

    // Not the whole of examples/: its Redis Cluster (examples/cluster.yaml) needs pods this demo does not run.
    step(
      'Applying examples/standalone.yaml and examples/replication.yaml (a standalone and a replicated CacheCluster)',
    );
    await show(cp, ['apply', '-f', 'examples/standalone.yaml', '-f', 'examples/replication.yaml']);
    await waitFor(
      'both CacheClusters to be Ready',
      async () => {
        const all = await Promise.all(['sessions', 'catalog'].map((n) => ccStatus(cp, n)));
        return all.every(
          (cc) =>
            cc?.status?.phase === 'Ready' &&
            cc.status.conditions?.some((c: any) => c.type === 'ConfigApplied' && c.status === 'True'),
        );
      },
      90_000,
      500,
    );
    await show(cp, ['get', 'cc', '-o', 'wide']);
    await show(cp, [
      'get',
      'statefulsets,services,configmaps,poddisruptionbudgets,cronjobs',
      '-l',
      'app.kubernetes.io/managed-by=ripplecache-operator',
    ]);
    await show(cp, [
      'get',
      'cc',
      'sessions',
      '-o',
      'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\\n"}{end}',
    ]);

    step('What each Redis pod runs (CONFIG GET)');
    for (const [pod, r] of Object.entries(pods)) console.log(await configGet(pod, r.port));

    step('Changing sessions to allkeys-lfu / 32Mi: applied live with CONFIG SET, no restart');
    const restartHash = async () =>
      (
        await cp.kubectl([
          'get',
          'sts',
          'sessions',
          '-o',
          'jsonpath={.spec.template.metadata.annotations.cache\\.ripplecache\\.io/restart-hash}',
        ])
      ).stdout;
    const hashBefore = await restartHash();
    await show(cp, [
      'patch',
      'cc',
      'sessions',
      '--type=merge',
      '-p',
      '{"spec":{"eviction":{"policy":"allkeys-lfu","maxMemory":"32Mi"}}}',
    ]);
    await waitFor(
      'the new settings on sessions-0',
      async () => (await configGet('sessions-0', sessions0.port)).includes('maxmemory=33554432'),
      30_000,
      200,
    );
    console.log(await configGet('sessions-0', sessions0.port));
    await waitFor(
      'status to follow',
      async () => (await ccStatus(cp, 'sessions'))?.status?.appliedConfig?.maxmemoryPolicy === 'allkeys-lfu',
      30_000,
      200,
    );
    await show(cp, ['get', 'cc', 'sessions', '-o', 'jsonpath={.status.appliedConfig}{"\\n"}']);
    const hashAfter = await restartHash();
    console.log(
      `  pod template restart-hash before=${hashBefore} after=${hashAfter} (${hashBefore === hashAfter ? 'unchanged: no restart' : 'CHANGED'})`,
    );

    step("Two application pods' sidecars, configured from the sidecar.yaml the operator rendered");
    const cm = JSON.parse((await cp.kubectl(['get', 'configmap', 'sessions-config', '-o', 'json'])).stdout);
    const rendered = parse(cm.data['sidecar.yaml']) as Record<string, unknown>;
    console.log(
      `  sidecar.yaml from ConfigMap sessions-config:\n${stringify(rendered)
        .trimEnd()
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}`,
    );
    // In a cluster the sidecar reaches redis://sessions.default.svc:6379; here that is the local process.
    const dir = mkdtempSync(join(tmpdir(), 'ripplecache-demo-'));
    const configPath = join(dir, 'sidecar.yaml');
    writeFileSync(configPath, stringify({ ...rendered, redis: sessions0.url }));
    cleanup.push(() => stopAllSidecars());
    const [a, b]: SidecarProcess[] = [
      await startSidecar({ name: 'app-a', args: ['--config', configPath] }),
      await startSidecar({ name: 'app-b', args: ['--config', configPath] }),
    ];
    console.log(`  sidecar of app-a on ${a!.url}, sidecar of app-b on ${b!.url}`);
    const say = async (who: string, sc: SidecarProcess, method: 'GET' | 'PUT', value?: string) => {
      const r =
        method === 'PUT'
          ? await sc.put('user:42', value!, { contentType: 'application/json' })
          : await sc.get('user:42');
      console.log(
        `  ${who}: ${method} /v1/cache/user:42${value ? ` ${value}` : ''} -> ${r.status}${r.tier ? ` X-Cache: ${r.tier}` : ''}${method === 'GET' && r.status === 200 ? ` ${r.body}` : ''}`,
      );
      return r;
    };
    await say('app-a', a!, 'PUT', '{"name":"Ada"}');
    await say('app-b', b!, 'GET');
    await say('app-b', b!, 'GET');
    const received = await b!.metric('ripplecache_sidecar_invalidations_received_total', { kind: 'keys' });
    await say('app-a', a!, 'PUT', '{"name":"Ada Lovelace"}');
    await waitFor(
      'the invalidation to reach app-b',
      async () => (await b!.metric('ripplecache_sidecar_invalidations_received_total', { kind: 'keys' })) > received,
      5_000,
      5,
    );
    const after = await say('app-b', b!, 'GET');
    console.log(
      `  app-a's write invalidated app-b's L1 copy over pub/sub: app-b read the new value from ${after.tier}`,
    );

    step('What the operator recorded: the events of the CacheClusters');
    // Only the product's own events: a bare control plane has no kubelet, so Kubernetes' endpoint controllers
    // keep warning about the stand-in pods (loopback IPs, no node), which says nothing about ripplecache.
    await show(cp, EVENTS_ARGS);

    step('An invalid CacheCluster is rejected by the API server');
    // Only a CEL rule is broken here: with a schema error too (say an unknown policy) the API server adds a
    // "<nil>: some validation rules were not checked" line, which is noise for a first look.
    const bad = await cp.kubectl(
      ['apply', '-f', '-'],
      `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: broken, namespace: ${NS} }
spec:
  eviction: { policy: allkeys-lru, maxMemory: 64Mi, maxMemoryPercent: 50 }
  resources: { limits: { memory: 512Mi } }
`,
    );
    console.log('$ kubectl apply -f -   # a CacheCluster whose eviction sets both maxMemory and maxMemoryPercent');
    console.log(bad.stderr.trimEnd());

    if (process.env.DEMO_KEEP === '1') {
      step('Everything keeps running; press Ctrl-C to stop');
      console.log(`  export KUBECONFIG=${cp.kubeconfigPath}`);
      console.log(`  ${cp.binDir}/kubectl get cc -o wide`);
      console.log(`  ${cp.binDir}/kubectl ${EVENTS_ARGS.join(' ')}`);
      await new Promise(() => undefined);
    }
    step('Done: stopping everything');
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
