/**
 * Persistence and placement against a real control plane (API server, StatefulSet controller), the real
 * operator and real redis-server processes standing in for the pods:
 * - mode aof: the operator turns the append-only file on live, and a pod whose redis-server is killed and
 *   restarted on the same data dir (the pod simulator, reading the pod's redis.conf) keeps every write;
 * - none → aof → rdb is applied live with CONFIG SET (CONFIG GET shows it), without a restart or a restart
 *   hash change, and the StatefulSet gets one volume claim per pod;
 * - the retention policy reaches the StatefulSet controller: whenDeleted Delete removes a deleted
 *   CacheCluster's claims, Retain keeps them;
 * - podTemplate reaches the real StatefulSet and the pods its controller creates (in a namespace enforcing Pod
 *   Security restricted), the default anti-affinity is there, and `kubectl scale cc` changes the StatefulSet.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheClusterSpec } from '../../operator/src/api/v1alpha1/types.js';
import { cacheCluster, cacheClusterYaml, inNamespace, withSpec } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const NS = 'placement';
let cp: ControlPlane;
let operator: OperatorProcess;
let sim: PodSimulator;
const redis: Record<string, RedisProcess> = {};

async function getJson(kind: string, name: string): Promise<any> {
  const r = await cp.kubectl(['get', kind, name, '-n', NS, '-o', 'json']);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout);
}

async function apply(name: string, spec: CacheClusterSpec): Promise<void> {
  const r = await cp.kubectl(
    ['apply', '-f', '-'],
    cacheClusterYaml(cacheCluster(name, inNamespace(NS), withSpec(spec))),
  );
  expect(r.code, r.stderr).toBe(0);
}

/** Waits until the operator reports the CacheCluster's current generation with ConfigApplied=True. */
async function configApplied(name: string): Promise<any> {
  let cc: any;
  await waitFor(
    `${name}: ConfigApplied=True for its generation`,
    async () => {
      cc = await getJson('cachecluster', name);
      const c = (cc?.status?.conditions ?? []).find((x: any) => x.type === 'ConfigApplied');
      return c?.status === 'True' && c.observedGeneration === cc.metadata.generation;
    },
    60_000,
    250,
  );
  return cc;
}

async function withClient<T>(r: RedisProcess, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ host: '127.0.0.1', port: r.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

const configGet = (r: RedisProcess, name: string) =>
  withClient(r, async (c) => ((await c.call('CONFIG', 'GET', name)) as string[])[1]);
const runId = (r: RedisProcess) =>
  withClient(r, async (c) => /run_id:(\w+)/.exec(await c.info('server'))?.[1] ?? 'none');

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  const ns = await cp.kubectl(
    ['apply', '-f', '-'],
    `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels: { pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: latest }
`,
  );
  expect(ns.code, ns.stderr).toBe(0);
  // The harness's redis-server starts with persistence off (--appendonly no --save ""), as a pod of mode none.
  redis.durable = await startRedis();
  redis.switch = await startRedis();
  const closed = await freePort();
  // The placement cluster's pods are marked Ready too (the StatefulSet controller creates them in order, each
  // after the one before is Ready), though no Redis answers for them.
  sim = new PodSimulator(
    cp.kubeconfigPath,
    NS,
    new Set(['durable-0', 'switch-0', ...[0, 1, 2, 3].map((i) => `placed-${i}`)]),
  );
  sim.start();
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'persistence-placement',
    podAddresses: {
      [`${NS}/durable-0`]: `127.0.0.1:${redis.durable.port}`,
      [`${NS}/switch-0`]: `127.0.0.1:${redis.switch.port}`,
      // Nothing listens there: the operator cannot configure them (ConfigApplied=False), placement is unaffected.
      ...Object.fromEntries([0, 1, 2, 3].map((i) => [`${NS}/placed-${i}`, `127.0.0.1:${closed}`])),
    },
    extraArgs: ['--resync-seconds', '2'],
  });
});

afterAll(async () => {
  sim?.stop();
  await operator?.stop().catch(() => undefined);
  for (const r of Object.values(redis)) await r.stop().catch(() => undefined);
  await cp?.stop();
});

describe('persistence', () => {
  it('aof: a pod whose redis-server restarts on the same data dir keeps its data', async () => {
    await apply('durable', {
      eviction: { policy: 'noeviction', maxMemory: '64Mi' },
      persistence: { mode: 'aof', storage: { size: '1Gi' } },
    });
    await configApplied('durable');
    expect(await configGet(redis.durable!, 'appendonly')).toBe('yes');
    // The StatefulSet controller created the pod's claim from the template.
    const pvc = await getJson('persistentvolumeclaim', 'data-durable-0');
    expect(pvc?.spec?.resources?.requests?.storage).toBe('1Gi');
    expect(pvc?.spec?.accessModes).toEqual(['ReadWriteOnce']);
    // The append-only file exists once the rewrite that `CONFIG SET appendonly yes` started is done.
    await waitFor(
      'the first AOF rewrite to finish',
      async () =>
        withClient(redis.durable!, async (c) => {
          const info = await c.info('persistence');
          return /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info);
        }),
      30_000,
      100,
    );

    await withClient(redis.durable!, async (c) => {
      for (let i = 0; i < 200; i++) await c.set(`k${i}`, `v${i}`);
      await c.incrby('counter', 42);
    });
    const before = await runId(redis.durable!);
    await sim.restartRedisContainer('durable-0', redis.durable!);
    expect(await runId(redis.durable!)).not.toBe(before);

    await withClient(redis.durable!, async (c) => {
      expect(await c.dbsize()).toBe(201);
      expect(await c.get('k0')).toBe('v0');
      expect(await c.get('k199')).toBe('v199');
      expect(await c.get('counter')).toBe('42');
    });
    expect(await configGet(redis.durable!, 'appendonly')).toBe('yes');
  });

  it('without aof the same restart loses the data (the check above can fail)', async () => {
    const scratch = await startRedis();
    try {
      await withClient(scratch, (c) => c.set('k', 'v'));
      await scratch.kill();
      await scratch.start();
      expect(await withClient(scratch, (c) => c.dbsize())).toBe(0);
    } finally {
      await scratch.stop();
    }
  });

  it('switches none → aof → rdb live: CONFIG GET shows it, no restart, the restart hash stays', async () => {
    const storage = { size: '1Gi', className: 'standard' };
    await apply('switch', { eviction: { maxMemory: '64Mi' }, persistence: { mode: 'none', storage } });
    await configApplied('switch');
    expect(await configGet(redis.switch!, 'appendonly')).toBe('no');
    expect(await configGet(redis.switch!, 'save')).toBe('');
    const sts = await getJson('statefulset', 'switch');
    expect(sts.spec.volumeClaimTemplates.map((t: any) => [t.metadata.name, t.spec.storageClassName])).toEqual([
      ['data', 'standard'],
    ]);
    expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Delete', whenScaled: 'Retain' });
    const hash = sts.spec.template.metadata.annotations['cache.ripplecache.io/restart-hash'];
    const pid = redis.switch!.pid;
    const run = await runId(redis.switch!);

    await apply('switch', { eviction: { maxMemory: '64Mi' }, persistence: { mode: 'aof', storage } });
    await configApplied('switch');
    expect(await configGet(redis.switch!, 'appendonly')).toBe('yes');
    expect((await getJson('configmap', 'switch-config')).data['redis.conf']).toMatch(/^appendonly yes$/m);

    await apply('switch', { eviction: { maxMemory: '64Mi' }, persistence: { mode: 'rdb', storage } });
    await configApplied('switch');
    expect(await configGet(redis.switch!, 'appendonly')).toBe('no');
    expect(await configGet(redis.switch!, 'save')).toBe('3600 1 300 100 60 10000');

    // The same process all along, and a pod template the StatefulSet controller would not roll.
    expect(redis.switch!.pid).toBe(pid);
    expect(await runId(redis.switch!)).toBe(run);
    const after = await getJson('statefulset', 'switch');
    expect(after.spec.template.metadata.annotations['cache.ripplecache.io/restart-hash']).toBe(hash);
    expect(after.metadata.generation).toBe(sts.metadata.generation);

    // The StatefulSet as stored (claim templates and affinity with the API server's defaults) is recognised as
    // desired: later reconciles of the unchanged CacheCluster write no child.
    const updates = () =>
      operator
        .log()
        .split('\n')
        .filter((l) => l.includes('"Updated child"') && l.includes('"name":"switch'));
    const before = updates().length;
    expect(before).toBeGreaterThan(0); // the ConfigMap's updates for the switches: the filter finds lines
    const start = await operator.metric('ripplecache_operator_reconcile_total');
    await waitFor(
      '4 more reconciles',
      async () => (await operator.metric('ripplecache_operator_reconcile_total')) >= start + 4,
      30_000,
      250,
    );
    expect(updates()).toHaveLength(before);
  });
});

describe('the volumes when the CacheCluster is deleted', () => {
  it('whenDeleted Delete removes the PVC, Retain keeps it (the StatefulSet controller acts on the policy)', async () => {
    // The retention policy may change after creation (storage may not): switch keeps its volume.
    await apply('switch', {
      eviction: { maxMemory: '64Mi' },
      persistence: {
        mode: 'rdb',
        storage: { size: '1Gi', className: 'standard' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain' },
      },
    });
    await waitFor(
      'the StatefulSet switch to retain its volumes',
      async () =>
        (await getJson('statefulset', 'switch'))?.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Retain',
      30_000,
      250,
    );
    expect(await getJson('persistentvolumeclaim', 'data-switch-0')).toBeDefined();
    // With Delete, the StatefulSet controller makes the StatefulSet an owner of the claim.
    await waitFor(
      'data-durable-0 to be owned by its StatefulSet',
      async () =>
        ((await getJson('persistentvolumeclaim', 'data-durable-0'))?.metadata?.ownerReferences ?? []).some(
          (o: any) => o.kind === 'StatefulSet' && o.name === 'durable',
        ),
      30_000,
      250,
    );
    const del = await cp.kubectl(['delete', 'cachecluster', 'durable', 'switch', '-n', NS, '--wait=false']);
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'both StatefulSets and the claim data-durable-0 to be gone',
      async () =>
        (await getJson('statefulset', 'durable')) === undefined &&
        (await getJson('statefulset', 'switch')) === undefined &&
        (await getJson('persistentvolumeclaim', 'data-durable-0')) === undefined,
      60_000,
      250,
    );
    const kept = await getJson('persistentvolumeclaim', 'data-switch-0');
    expect(kept).toBeDefined();
    expect(kept.metadata.deletionTimestamp).toBeUndefined();
  });
});

describe('placement', () => {
  const spec: CacheClusterSpec = {
    topology: 'replication',
    replicas: 1,
    eviction: { maxMemory: '64Mi' },
    podTemplate: {
      metadata: { labels: { team: 'checkout' }, annotations: { 'example.com/owner': 'shop' } },
      spec: {
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cache', effect: 'NoSchedule' }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] },
              ],
            },
          },
        },
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
        ],
        priorityClassName: 'cache-critical',
        imagePullSecrets: [{ name: 'registry' }],
      },
    },
  };
  const selector = { 'cache.ripplecache.io/cluster': 'placed', 'app.kubernetes.io/component': 'server' };

  it('puts podTemplate into the real StatefulSet and its pods, next to the default anti-affinity', async () => {
    const pc = await cp.kubectl(
      ['apply', '-f', '-'],
      'apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: { name: cache-critical }\nvalue: 100000\n',
    );
    expect(pc.code, pc.stderr).toBe(0);
    await apply('placed', spec);
    await waitFor(
      'the StatefulSet placed',
      async () => (await getJson('statefulset', 'placed')) !== undefined,
      30_000,
      250,
    );
    const template = (await getJson('statefulset', 'placed')).spec.template;
    expect(template.metadata.labels).toMatchObject({ team: 'checkout', ...selector });
    expect(template.metadata.annotations['example.com/owner']).toBe('shop');
    const pod = template.spec;
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.tolerations).toEqual(spec.podTemplate!.spec!.tolerations);
    expect(pod.affinity.nodeAffinity).toEqual(spec.podTemplate!.spec!.affinity!.nodeAffinity);
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      {
        weight: 100,
        podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' },
      },
    ]);
    expect(pod.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selector },
      },
    ]);
    expect(pod.priorityClassName).toBe('cache-critical');
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry' }]);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });

    // The StatefulSet controller's pods were admitted under Pod Security restricted, with the placement.
    let pods: any[] = [];
    await waitFor(
      'the two Redis pods',
      async () => {
        const r = await cp.kubectl([
          'get',
          'pods',
          '-n',
          NS,
          '-l',
          'cache.ripplecache.io/cluster=placed',
          '-o',
          'json',
        ]);
        pods = r.code === 0 ? JSON.parse(r.stdout).items : [];
        return pods.length === 2;
      },
      30_000,
      250,
    );
    for (const p of pods) {
      expect(p.metadata.labels.team).toBe('checkout');
      expect(p.spec.priorityClassName).toBe('cache-critical');
      expect(p.spec.priority).toBe(100000);
      expect(p.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(p.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    }
  });

  it('kubectl scale cc changes the read replicas, the StatefulSet, and the scale status', async () => {
    const scaled = await cp.kubectl(['scale', 'cc/placed', '-n', NS, '--replicas=3']);
    expect(scaled.code, scaled.stderr).toBe(0);
    expect((await getJson('cachecluster', 'placed')).spec.replicas).toBe(3);
    await waitFor(
      'the StatefulSet to have 1 + 3 pods',
      async () => (await getJson('statefulset', 'placed'))?.spec?.replicas === 4,
      30_000,
      250,
    );
    let scale: any;
    await waitFor(
      'the scale subresource to report 3 read replicas',
      async () => {
        const r = await cp.kubectl(['get', 'cc', 'placed', '-n', NS, '--subresource=scale', '-o', 'json']);
        scale = r.code === 0 ? JSON.parse(r.stdout) : undefined;
        return scale?.status?.replicas === 3;
      },
      60_000,
      250,
    );
    expect(scale.spec.replicas).toBe(3);
    expect(scale.status.selector).toBe('cache.ripplecache.io/cluster=placed,app.kubernetes.io/component=server');

    const down = await cp.kubectl(['scale', 'cc/placed', '-n', NS, '--replicas=1']);
    expect(down.code, down.stderr).toBe(0);
    await waitFor(
      'the StatefulSet to have 1 + 1 pods',
      async () => (await getJson('statefulset', 'placed'))?.spec?.replicas === 2,
      30_000,
      250,
    );
  });
});
