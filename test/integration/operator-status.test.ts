/**
 * What a CacheCluster shows while the operator realises it, against a real control plane and real
 * redis-server processes: a child the API server refuses (Failed, ReconcileError, a Warning event), a new
 * cluster waiting for its pods (Progressing, no warning), a live eviction change (a Normal event naming old
 * and new settings), and the READY / MAXMEMORY columns of `kubectl get cc`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvictionPolicy } from '../../operator/src/api/v1alpha1/types.js';
import { cacheCluster, cacheClusterYaml, inNamespace, withEviction } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const NS = 'default';
let cp: ControlPlane;
let redis: RedisProcess;
let operator: OperatorProcess;
let sim: PodSimulator;

interface KubeEvent {
  type: string;
  reason: string;
  message: string;
}

async function getJson(kind: string, name: string): Promise<any> {
  const r = await cp.kubectl(['get', kind, name, '-n', NS, '-o', 'json']);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout);
}

function condition(cc: any, type: string): any {
  return (cc?.status?.conditions ?? []).find((c: any) => c.type === type);
}

async function eventsOf(name: string): Promise<KubeEvent[]> {
  const r = await cp.kubectl([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.kind=CacheCluster,involvedObject.name=${name}`,
    '-o',
    'json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { items: KubeEvent[] }).items;
}

async function apply(yamlText: string): Promise<void> {
  const r = await cp.kubectl(['apply', '-f', '-'], yamlText);
  expect(r.code, r.stderr).toBe(0);
}

/** Waits until the operator has run `n` more reconciles (of anything) than now. */
async function moreReconciles(n: number): Promise<void> {
  const start = await operator.metric('ripplecache_operator_reconcile_total');
  await waitFor(
    `${n} more reconciles`,
    async () => (await operator.metric('ripplecache_operator_reconcile_total')) >= start + n,
    30_000,
    250,
  );
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  redis = await startRedis();
  // waiting-0 never becomes Ready (the simulator leaves it Pending) and nothing listens where it points.
  const closed = await freePort();
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(['evict-0']));
  sim.start();
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'operator-status',
    podAddresses: {
      [`${NS}/evict-0`]: `127.0.0.1:${redis.port}`,
      [`${NS}/waiting-0`]: `127.0.0.1:${closed}`,
    },
    extraArgs: ['--resync-seconds', '2'],
  });
});

afterAll(async () => {
  sim?.stop();
  await operator?.stop().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
  await cp?.stop();
});

describe('CacheCluster status and events', () => {
  it('shows a child the API server refuses: Failed, Ready=False ReconcileError with its message, a Warning', async () => {
    // A real admission denial: a ValidatingAdmissionPolicy refusing StatefulSets named "denied".
    await apply(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: deny-statefulset }
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - { apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [statefulsets] }
  validations:
    - expression: "object.metadata.name != 'denied'"
      message: StatefulSets named denied are refused by this cluster's policy
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: { name: deny-statefulset }
spec: { policyName: deny-statefulset, validationActions: [Deny] }
`);
    const probe = `
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: denied, namespace: ${NS} }
spec:
  serviceName: denied
  selector: { matchLabels: { app: denied } }
  template:
    metadata: { labels: { app: denied } }
    spec: { containers: [{ name: c, image: redis:7.2-alpine }] }
`;
    await waitFor(
      'the policy to be in force',
      async () => {
        const r = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], probe);
        return r.code !== 0 && /refused by this cluster's policy/.test(r.stderr);
      },
      30_000,
      250,
    );

    await apply(
      cacheClusterYaml(
        cacheCluster('denied', inNamespace(NS), withEviction({ policy: 'allkeys-lru', maxMemory: '32Mi' })),
      ),
    );
    await waitFor(
      'status Failed with ReconcileError',
      async () => (await getJson('cachecluster', 'denied'))?.status?.phase === 'Failed',
      30_000,
      250,
    );
    const cc = await getJson('cachecluster', 'denied');
    expect(condition(cc, 'Ready')).toMatchObject({ status: 'False', reason: 'ReconcileError' });
    expect(condition(cc, 'Ready').message).toMatch(/StatefulSet default\/denied/);
    expect(condition(cc, 'Ready').message).toMatch(/refused by this cluster's policy/);
    expect(condition(cc, 'Degraded')).toMatchObject({ status: 'True', reason: 'ReconcileError' });
    expect(cc.status.observedGeneration).toBe(cc.metadata.generation);
    await waitFor(
      'a Warning event',
      async () =>
        (await eventsOf('denied')).some(
          (e) =>
            e.type === 'Warning' && e.reason === 'ReconcileError' && /refused by this cluster's policy/.test(e.message),
        ),
      30_000,
      250,
    );
    // The other children were still written; only the StatefulSet is missing.
    expect((await getJson('configmap', 'denied-config'))?.metadata?.ownerReferences?.[0]?.name).toBe('denied');
    expect(await getJson('statefulset', 'denied')).toBeUndefined();
  });

  it('a new CacheCluster whose pods do not run yet is Progressing (WaitingForPods), with no Warning', async () => {
    await apply(
      cacheClusterYaml(
        cacheCluster('waiting', inNamespace(NS), withEviction({ policy: 'allkeys-lru', maxMemory: '32Mi' })),
      ),
    );
    await waitFor(
      'the StatefulSet and its pending pod',
      async () => (await getJson('statefulset', 'waiting'))?.status?.replicas === 1,
      30_000,
      250,
    );
    // Reconciles that tried (and failed) to configure the pod that does not run.
    await moreReconciles(4);
    const cc = await getJson('cachecluster', 'waiting');
    expect(condition(cc, 'ConfigApplied')).toMatchObject({ status: 'Unknown', reason: 'WaitingForPods' });
    const events = await eventsOf('waiting');
    expect(events.filter((e) => e.type === 'Warning')).toEqual([]);
    // Starting up is no news: the first not-Ready / waiting states are in the status, not in Events.
    expect(events.map((e) => `${e.type} ${e.reason}`)).toEqual([]);
    expect(cc.status.phase).toBe('Provisioning');
    expect(condition(cc, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForPods' });
    expect(condition(cc, 'Degraded')?.status).toBe('False');
    expect(cc.status.ready).toBe('0/1');
    expect(
      await operator.metric('ripplecache_operator_cachecluster_condition', {
        name: 'waiting',
        type: 'ConfigApplied',
        status: 'False',
      }),
    ).toBe(0);
  });

  it('shows READY as ready/desired and MAXMEMORY as a quantity, and records a live eviction change', async () => {
    const evict = (policy: EvictionPolicy, maxMemory: string) =>
      cacheClusterYaml(cacheCluster('evict', inNamespace(NS), withEviction({ policy, maxMemory })));
    await apply(evict('allkeys-lru', '64Mi'));
    await waitFor(
      'evict to be Ready',
      async () => (await getJson('cachecluster', 'evict'))?.status?.phase === 'Ready',
      60_000,
      250,
    );
    const wide = await cp.kubectl(['get', 'cc', 'evict', '-n', NS, '-o', 'wide']);
    expect(wide.code, wide.stderr).toBe(0);
    const [header, row] = wide.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+TOPOLOGY\s+POLICY\s+READY\s+PHASE\s+MAXMEMORY\s+PRIMARY\s+AGE$/);
    expect(row).toMatch(/^evict\s+standalone\s+allkeys-lru\s+1\/1\s+Ready\s+64Mi\s+evict-0\s+\S+$/);
    // Creating the cluster is not a change of live settings.
    expect((await eventsOf('evict')).filter((e) => e.reason === 'EvictionSettingsApplied')).toEqual([]);

    await apply(evict('allkeys-lfu', '128Mi'));
    await waitFor(
      'the EvictionSettingsApplied event',
      async () => (await eventsOf('evict')).some((e) => e.reason === 'EvictionSettingsApplied'),
      30_000,
      250,
    );
    const [event, ...more] = (await eventsOf('evict')).filter((e) => e.reason === 'EvictionSettingsApplied');
    expect(event!.type).toBe('Normal');
    expect(event!.message).toBe(
      'maxmemory 64Mi -> 128Mi, maxmemory-policy allkeys-lru -> allkeys-lfu, applied live on 1/1 pods',
    );
    expect(more).toEqual([]);
    const r = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      expect(await r.call('CONFIG', 'GET', 'maxmemory')).toEqual(['maxmemory', String(128 * 1024 * 1024)]);
      expect(await r.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lfu']);
    } finally {
      r.disconnect();
    }
    // Recorded once: later reconciles of the unchanged cluster add none.
    await moreReconciles(3);
    expect((await eventsOf('evict')).filter((e) => e.reason === 'EvictionSettingsApplied')).toHaveLength(1);
    const wideAfter = await cp.kubectl(['get', 'cc', 'evict', '-n', NS, '-o', 'wide']);
    expect(wideAfter.stdout).toMatch(/evict\s+standalone\s+allkeys-lfu\s+1\/1\s+Ready\s+128Mi\s+evict-0/);
  });
});
