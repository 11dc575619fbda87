/**
 * The operator against a real control plane (etcd, kube-apiserver, kube-controller-manager) and real
 * redis-server processes standing in for the Redis pods (the test has no kubelet: PodSimulator marks
 * the pods Ready, and --pod-address-override points the operator at the local processes).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvictionPolicy } from '../../operator/src/api/v1alpha1/types.js';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withAuth,
  withDefaultTTLSeconds,
  withEviction,
  withFlush,
  withImage,
  withMetrics,
  withReplicas,
  withResources,
  withTopology,
  type CacheClusterModifier,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const NS = 'default';
let cp: ControlPlane;
let redis: RedisProcess[] = [];
let mid: RedisProcess;
let operatorA: OperatorProcess | undefined;
let operatorB: OperatorProcess | undefined;
let sim: PodSimulator;
let podAddresses: Record<string, string>;

async function getJson(kind: string, name: string): Promise<any> {
  const r = await cp.kubectl(['get', kind, name, '-n', NS, '-o', 'json']);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout);
}

async function apply(yamlText: string) {
  return cp.kubectl(['apply', '-f', '-'], yamlText);
}

async function configGet(port: number): Promise<{ maxmemory: number; policy: string }> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    const mm = (await r.call('CONFIG', 'GET', 'maxmemory')) as string[];
    const mp = (await r.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
    return { maxmemory: Number(mm[1]), policy: String(mp[1]) };
  } finally {
    r.disconnect();
  }
}

function condition(cc: any, type: string): any {
  return (cc?.status?.conditions ?? []).find((c: any) => c.type === type);
}

const sessionsYaml = (policy: EvictionPolicy, maxMemory: string, flush = true) => {
  const modifiers: CacheClusterModifier[] = [
    inNamespace(NS),
    withTopology('replication'),
    withReplicas(2),
    withImage('redis:7.2-alpine'),
    withEviction({ policy, maxMemory }),
    withDefaultTTLSeconds(120),
  ];
  if (flush) modifiers.push(withFlush({ schedule: '0 2 * * *', timeZone: 'Europe/Berlin' }));
  modifiers.push(withResources({ limits: { memory: '512Mi' } }), withMetrics({ exporter: true }));
  return cacheClusterYaml(cacheCluster('sessions', ...modifiers));
};

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  const primary = await startRedis();
  redis = [
    primary,
    await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }),
    await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }),
  ];
  mid = await startRedis();
  podAddresses = {
    [`${NS}/sessions-0`]: `127.0.0.1:${redis[0]!.port}`,
    [`${NS}/sessions-1`]: `127.0.0.1:${redis[1]!.port}`,
    [`${NS}/sessions-2`]: `127.0.0.1:${redis[2]!.port}`,
    [`${NS}/mid-0`]: `127.0.0.1:${mid.port}`,
  };
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(['sessions-0', 'sessions-1', 'sessions-2', 'mid-0']));
  sim.start();
  operatorA = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'operator-a',
    podAddresses,
    extraArgs: ['--lease-duration-seconds', '4', '--resync-seconds', '2'],
  });
});

afterAll(async () => {
  sim?.stop();
  await operatorA?.stop().catch(() => undefined);
  await operatorB?.stop().catch(() => undefined);
  for (const r of [...redis, mid]) await r?.stop().catch(() => undefined);
  await cp?.stop();
});

describe('operator on a real control plane', () => {
  it('creates every child with the right content and owner references, and reports Ready', async () => {
    const res = await apply(sessionsYaml('allkeys-lru', '64Mi'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'sessions to be Ready with ConfigApplied',
      async () => {
        const cc = await getJson('cachecluster', 'sessions');
        return (
          cc?.status?.phase === 'Ready' &&
          condition(cc, 'ConfigApplied')?.status === 'True' &&
          cc.status.observedGeneration === cc.metadata.generation
        );
      },
      60_000,
      300,
    );
    const cc = await getJson('cachecluster', 'sessions');
    expect(cc.status.readyReplicas).toBe(3);
    expect(cc.status.appliedConfig).toMatchObject({ maxmemory: 64 * 1024 * 1024, maxmemoryPolicy: 'allkeys-lru' });
    expect(cc.status.endpoints.service).toBe('sessions.default.svc:6379');

    const children = {
      cm: await getJson('configmap', 'sessions-config'),
      headless: await getJson('service', 'sessions-headless'),
      client: await getJson('service', 'sessions'),
      sts: await getJson('statefulset', 'sessions'),
      pdb: await getJson('pdb', 'sessions'),
      cron: await getJson('cronjob', 'sessions-flush'),
    };
    for (const [what, obj] of Object.entries(children)) {
      expect(obj, what).toBeDefined();
      expect(obj.metadata.ownerReferences, what).toEqual([
        expect.objectContaining({ kind: 'CacheCluster', name: 'sessions', uid: cc.metadata.uid, controller: true }),
      ]);
    }
    expect(children.cm.data['redis.conf']).toMatch(/^maxmemory 67108864$/m);
    expect(children.cm.data['redis.conf']).toMatch(/^maxmemory-policy allkeys-lru$/m);
    expect(children.cm.data['sidecar.yaml']).toMatch(/defaultTTLSeconds: 120/);
    expect(children.headless.spec.clusterIP).toBe('None');
    expect(children.sts.spec.replicas).toBe(3);
    expect(children.sts.spec.serviceName).toBe('sessions-headless');
    const containers = children.sts.spec.template.spec.containers.map((c: any) => c.name);
    expect(containers).toEqual(expect.arrayContaining(['redis', 'redis-exporter']));
    // Every pod starts as a replica of the placeholder (redis.conf); the operator names the primary, not the template.
    expect(JSON.stringify(children.sts.spec.template)).not.toContain('replicaof');
    expect(children.cm.data['redis.conf']).toMatch(/^replicaof 127\.0\.0\.1 1$/m);
    expect(children.cron.spec.schedule).toBe('0 2 * * *');
    expect(children.cron.spec.timeZone).toBe('Europe/Berlin');
    expect(JSON.stringify(children.cron.spec.jobTemplate)).toContain('UNLINK');
    for (const r of redis)
      expect(await configGet(r.port)).toEqual({ maxmemory: 64 * 1024 * 1024, policy: 'allkeys-lru' });
    expect(
      await operatorA!.metric('ripplecache_operator_cachecluster_condition', {
        cachecluster_namespace: 'default',
        cachecluster: 'sessions',
        type: 'ConfigApplied',
        status: 'True',
      }),
    ).toBe(1);
    expect(
      await operatorA!.metric('ripplecache_operator_cachecluster_condition', {
        cachecluster: 'sessions',
        type: 'ConfigApplied',
        status: 'False',
      }),
    ).toBe(0);
  });

  it('writes nothing when it reconciles an unchanged CacheCluster again', async () => {
    const kinds = [
      ['cachecluster', 'sessions'],
      ['configmap', 'sessions-config'],
      ['service', 'sessions-headless'],
      ['service', 'sessions'],
      ['statefulset', 'sessions'],
      ['pdb', 'sessions'],
      ['cronjob', 'sessions-flush'],
    ] as const;
    const before = await Promise.all(kinds.map(async ([k, n]) => (await getJson(k, n)).metadata.resourceVersion));
    const reconciles = await operatorA!.metric('ripplecache_operator_reconcile_total');
    // --resync-seconds 2: wait until at least three more reconciles of the unchanged object have run.
    await waitFor(
      'three more reconciles',
      async () => (await operatorA!.metric('ripplecache_operator_reconcile_total')) >= reconciles + 3,
      20_000,
      250,
    );
    const after = await Promise.all(kinds.map(async ([k, n]) => (await getJson(k, n)).metadata.resourceVersion));
    expect(after).toEqual(before);
  });

  it('applies eviction changes live with CONFIG SET on primary and replicas, without touching the pod template', async () => {
    const stsBefore = await getJson('statefulset', 'sessions');
    const res = await apply(sessionsYaml('allkeys-lfu', '128Mi'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'CONFIG GET to show the new settings on all three',
      async () => {
        const got = await Promise.all(redis.map((r) => configGet(r.port)));
        return got.every((g) => g.maxmemory === 128 * 1024 * 1024 && g.policy === 'allkeys-lfu');
      },
      30_000,
      200,
    );
    await waitFor(
      'status and redis.conf to follow',
      async () => {
        const cc = await getJson('cachecluster', 'sessions');
        const cm = await getJson('configmap', 'sessions-config');
        return (
          cc.status.appliedConfig?.maxmemoryPolicy === 'allkeys-lfu' &&
          condition(cc, 'ConfigApplied')?.status === 'True' &&
          /^maxmemory-policy allkeys-lfu$/m.test(cm.data['redis.conf'])
        );
      },
      30_000,
      250,
    );
    const cc = await getJson('cachecluster', 'sessions');
    expect(cc.status.appliedConfig.pods).toHaveLength(3);
    expect(cc.status.appliedConfig.pods.every((p: any) => p.applied && p.maxmemory === 128 * 1024 * 1024)).toBe(true);
    const stsAfter = await getJson('statefulset', 'sessions');
    expect(stsAfter.metadata.generation).toBe(stsBefore.metadata.generation);
    expect(stsAfter.spec.template).toEqual(stsBefore.spec.template);
  });

  it('reports ConfigApplied=False for an unreachable pod, keeps redis.conf, and converges when the pod is back', async () => {
    await redis[2]!.kill();
    const res = await apply(sessionsYaml('allkeys-lfu', '96Mi'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'ConfigApplied=False naming sessions-2',
      async () => {
        const c = condition(await getJson('cachecluster', 'sessions'), 'ConfigApplied');
        return c?.status === 'False' && /sessions-2/.test(c.message);
      },
      30_000,
      250,
    );
    const c = condition(await getJson('cachecluster', 'sessions'), 'ConfigApplied');
    expect(c.reason).toMatch(/^[A-Z][A-Za-z]+$/);
    expect(
      await operatorA!.metric('ripplecache_operator_cachecluster_condition', {
        cachecluster: 'sessions',
        type: 'ConfigApplied',
        status: 'False',
      }),
    ).toBe(1);
    expect((await configGet(redis[0]!.port)).maxmemory).toBe(96 * 1024 * 1024);
    expect((await getJson('configmap', 'sessions-config')).data['redis.conf']).toMatch(/^maxmemory 134217728$/m);
    const events = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'involvedObject.name=sessions',
      '-o',
      'json',
    ]);
    expect(JSON.parse(events.stdout).items.some((e: any) => e.type === 'Warning')).toBe(true);

    await redis[2]!.start(); // comes back with Redis defaults (maxmemory 0), as a restarted pod would without the new redis.conf
    await waitFor(
      'convergence after the pod is back',
      async () => {
        const cc = await getJson('cachecluster', 'sessions');
        const cm = await getJson('configmap', 'sessions-config');
        return (
          condition(cc, 'ConfigApplied')?.status === 'True' && /^maxmemory 100663296$/m.test(cm.data['redis.conf'])
        );
      },
      30_000,
      250,
    );
    expect(await configGet(redis[2]!.port)).toEqual({ maxmemory: 96 * 1024 * 1024, policy: 'allkeys-lfu' });
  });

  it('reports the primary on record and makes a second primary a replica of it again (no split brain left)', async () => {
    expect((await getJson('cachecluster', 'sessions')).status.primary).toBe('sessions-0');
    const r2 = new Redis({ port: redis[2]!.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    await r2.connect();
    try {
      // Someone promotes a replica by hand: the operator (issue 14) repoints it to the primary on record.
      await r2.call('REPLICAOF', 'NO', 'ONE');
      await waitFor(
        'sessions-2 a replica of sessions-0 again',
        async () => {
          const role = (await r2.call('ROLE')) as unknown[];
          return role[0] === 'slave' && role[2] === redis[0]!.port;
        },
        30_000,
        250,
      );
      expect(operatorA!.log()).toMatch(
        /"pod":"sessions-2","primary":"sessions-0".*Made Redis pod a replica of the primary/,
      );
      await waitFor(
        'Ready with sessions-0 the primary',
        async () => {
          const cc = await getJson('cachecluster', 'sessions');
          return cc.status.phase === 'Ready' && cc.status.primary === 'sessions-0';
        },
        30_000,
        250,
      );
    } finally {
      r2.disconnect();
    }
  });

  it("rolls the Redis pods when the auth Secret's password is rotated (a digest in the restart hash, never the password)", async () => {
    const hashOf = async () =>
      (await getJson('statefulset', 'secure'))?.spec.template.metadata.annotations['cache.ripplecache.io/restart-hash'];
    expect(
      (
        await cp.kubectl([
          'create',
          'secret',
          'generic',
          'secure-auth',
          '-n',
          NS,
          '--from-literal=password=first-password',
        ])
      ).code,
    ).toBe(0);
    const res = await apply(
      cacheClusterYaml(
        cacheCluster(
          'secure',
          inNamespace(NS),
          withEviction({ policy: 'allkeys-lru', maxMemory: '16Mi' }),
          withAuth({ name: 'secure-auth', key: 'password' }),
        ),
      ),
    );
    expect(res.code, res.stderr).toBe(0);
    await waitFor('the StatefulSet secure', async () => (await hashOf()) !== undefined, 30_000, 250);
    const first = await hashOf();
    const sts = JSON.stringify(await getJson('statefulset', 'secure'));
    expect(sts).not.toContain('first-password');
    const rotated = await cp.kubectl([
      'patch',
      'secret',
      'secure-auth',
      '-n',
      NS,
      '-p',
      JSON.stringify({ stringData: { password: 'second-password' } }),
    ]);
    expect(rotated.code, rotated.stderr).toBe(0);
    // Secrets are not watched: the periodic resync (2 s here) notices the rotation.
    await waitFor('a new restart hash', async () => (await hashOf()) !== first, 30_000, 250);
    expect(JSON.stringify(await getJson('statefulset', 'secure'))).not.toContain('second-password');
    expect((await cp.kubectl(['delete', 'cachecluster', 'secure', '-n', NS])).code).toBe(0);
  });

  it('removes the flush CronJob when spec.flush is removed', async () => {
    const res = await apply(sessionsYaml('allkeys-lfu', '96Mi', false));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'CronJob sessions-flush to be deleted',
      async () => (await getJson('cronjob', 'sessions-flush')) === undefined,
      30_000,
      250,
    );
  });

  it('a topology change deletes the StatefulSets of the old topology (cluster ↔ standalone)', async () => {
    // No pods run for this CacheCluster (the simulator does not know them): only its children matter here.
    const topo = (spec: string) => `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: topo, namespace: ${NS} }
spec: { ${spec}, eviction: { policy: allkeys-lru, maxMemory: 16Mi } }
`;
    const shardSets = async () => {
      const r = await cp.kubectl(['get', 'statefulsets', '-n', NS, '-o', 'jsonpath={.items[*].metadata.name}']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout
        .split(' ')
        .filter((n) => n === 'topo' || n.startsWith('topo-shard-'))
        .sort();
    };
    const cluster = ['topo-shard-0', 'topo-shard-1', 'topo-shard-2'];

    let res = await apply(topo('topology: cluster, shards: 3, replicas: 1'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor('the shard StatefulSets', async () => (await shardSets()).join() === cluster.join(), 30_000, 250);

    res = await apply(topo('topology: standalone, replicas: 0'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'the standalone StatefulSet, and no shard StatefulSet left',
      async () => (await shardSets()).join() === 'topo',
      30_000,
      250,
    );

    res = await apply(topo('topology: cluster, shards: 3, replicas: 1'));
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'the shard StatefulSets, and no standalone StatefulSet left',
      async () => (await shardSets()).join() === cluster.join(),
      30_000,
      250,
    );
    expect((await cp.kubectl(['delete', 'cc', 'topo', '-n', NS])).code).toBe(0);
  });

  it('with two operators only the leader writes; killed mid-reconcile, the other takes over and converges', async () => {
    operatorB = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'operator-b',
      podAddresses,
      extraArgs: ['--lease-duration-seconds', '4', '--resync-seconds', '2'],
    });
    // B has synced and is ready, but waits for the Lease: it reconciles nothing.
    await new Promise((r) => setTimeout(r, 5_000));
    const lease = await getJson('lease', 'ripplecache-operator-leader');
    expect(lease.spec.holderIdentity).toBe('operator-a');
    expect(await operatorB.metric('ripplecache_operator_reconcile_total')).toBe(0);
    expect(await operatorB.metric('ripplecache_operator_leader')).toBe(0);
    expect(await operatorA!.metric('ripplecache_operator_leader')).toBe(1);

    // Kill A in the middle of creating a new CacheCluster's children.
    const res = await apply(
      cacheClusterYaml(
        cacheCluster(
          'mid',
          inNamespace(NS),
          withTopology('standalone'),
          withEviction({ policy: 'volatile-ttl', maxMemory: '32Mi' }),
        ),
      ),
    );
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      'A to start on mid',
      async () => (await getJson('configmap', 'mid-config')) !== undefined,
      20_000,
      20,
    );
    await operatorA!.stop('SIGKILL');
    operatorA = undefined;

    // A may have finished mid before the kill landed (its children and status are quick): so wait for B to
    // hold the Lease and to have reconciled, not only for mid's status.
    await waitFor(
      'B to lead and converge mid',
      async () => {
        const cc = await getJson('cachecluster', 'mid');
        const holder = (await getJson('lease', 'ripplecache-operator-leader'))?.spec?.holderIdentity;
        return (
          holder === 'operator-b' &&
          (await operatorB!.metric('ripplecache_operator_reconcile_total')) > 0 &&
          cc?.status?.phase === 'Ready' &&
          condition(cc, 'ConfigApplied')?.status === 'True'
        );
      },
      60_000,
      300,
    );
    expect((await getJson('lease', 'ripplecache-operator-leader')).spec.holderIdentity).toBe('operator-b');
    expect(await configGet(mid.port)).toEqual({ maxmemory: 32 * 1024 * 1024, policy: 'volatile-ttl' });
    for (const [k, n] of [
      ['statefulset', 'mid'],
      ['service', 'mid'],
      ['service', 'mid-headless'],
    ])
      expect((await getJson(k!, n!))?.metadata?.ownerReferences?.[0]?.name, `${k} ${n}`).toBe('mid');
    // Standalone (one pod): no PodDisruptionBudget, which would protect nothing and could block drains.
    expect(await getJson('pdb', 'mid')).toBeUndefined();

    // A restarted operator becomes a standby and writes nothing.
    operatorA = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'operator-a2',
      podAddresses,
      extraArgs: ['--lease-duration-seconds', '4', '--resync-seconds', '2'],
    });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await operatorA.metric('ripplecache_operator_reconcile_total')).toBe(0);

    // SIGTERM: the leader finishes, releases the Lease and exits 0; the standby takes over at once.
    await operatorB.stop('SIGTERM');
    expect(operatorB.proc.child.exitCode).toBe(0);
    operatorB = undefined;
    await waitFor(
      'the standby to take the released Lease',
      async () => (await getJson('lease', 'ripplecache-operator-leader')).spec.holderIdentity === 'operator-a2',
      10_000,
      200,
    );
    expect(await operatorA.metric('ripplecache_operator_leader')).toBe(1);
  });

  it('deleting the CacheCluster removes its children (garbage collection by the controller manager)', async () => {
    const del = await cp.kubectl(['delete', 'cachecluster', 'sessions', '-n', NS, '--wait=true']);
    expect(del.code, del.stderr).toBe(0);
    await waitFor(
      'children to be garbage-collected',
      async () => {
        const left = await Promise.all(
          [
            ['configmap', 'sessions-config'],
            ['service', 'sessions-headless'],
            ['service', 'sessions'],
            ['statefulset', 'sessions'],
            ['pdb', 'sessions'],
          ].map(([k, n]) => getJson(k!, n!)),
        );
        return left.every((o) => o === undefined);
      },
      60_000,
      500,
    );
  });
});
