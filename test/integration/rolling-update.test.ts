/**
 * Rolling update of a `replication` CacheCluster without downtime (issue 14 item 7), with real processes: a
 * control plane (its real StatefulSet controller, OnDelete), the operator, three redis-servers playing the pods
 * (the pod simulator plays kubelet: a deleted pod's redis-server is stopped, its re-created pod's started
 * again), the Service stand-in over the real EndpointSlices, and a sidecar writing through it. A
 * restart-requiring change (the Redis container's resources) is applied while the sidecar writes: the operator
 * restarts the replicas one at a time, switches the primary over to an up-to-date replica (status, event),
 * then restarts the old primary. Asserted: every pod ends on the StatefulSet's update revision, the primary
 * moved, never two pods labelled primary (sampled throughout), writes kept being acknowledged during the roll
 * (each write retried until acknowledged, within a bound), and every key holds its last acknowledged value on
 * the new primary (the switchover paused writes until its target caught up: nothing acknowledged was lost).
 */
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheCluster, cacheClusterYaml, inNamespace, withReplicas, withTopology } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import type { RedisProcess } from '../harness/redis.js';
import { samplePrimaries, startReplicationPods } from '../harness/replication.js';
import { startServiceProxy, type ServiceProxy } from '../harness/service-proxy.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

const NS = 'default';
const NAME = 'roll';
const ROLE = 'cache.ripplecache.io/role';
const KEYS = 200;
const WORKERS = 4;
/** A write not acknowledged after this long (retrying) fails the test: the blip is bounded. */
const WRITE_BOUND_MS = 15_000;

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let redis: RedisProcess[];
let sim: PodSimulator;
let operator: OperatorProcess;
let service: ServiceProxy;
let sidecar: SidecarProcess;
const clients: Redis[] = [];

async function getCc(): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

async function pods(): Promise<k8s.V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `cache.ripplecache.io/cluster=${NAME}` })).items;
}

async function labels(): Promise<Record<string, string | undefined>> {
  return Object.fromEntries((await pods()).map((p) => [p.metadata!.name!, p.metadata?.labels?.[ROLE]]));
}

beforeAll(async () => {
  cp = await startControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller'] });
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  const local = await startReplicationPods(NS, NAME, 3);
  redis = local.redis;
  const addresses = local.addresses;
  const containers = Object.fromEntries(redis.map((r, i) => [`${NAME}-${i}`, r]));
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(Object.keys(addresses)), addresses, {
    node: 'sim-node',
    containers,
  });
  sim.start(200);
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'rolling-update',
    podAddresses: local.overrides,
  });
  const r = await cp.kubectl(
    ['apply', '-f', '-'],
    cacheClusterYaml(cacheCluster(NAME, inNamespace(NS), withTopology('replication'), withReplicas(2))),
  );
  expect(r.code, r.stderr).toBe(0);
  await waitFor(
    'pod 0 primary, pods 1 and 2 replicas',
    async () =>
      JSON.stringify(await labels()) ===
      JSON.stringify({ [`${NAME}-0`]: 'primary', [`${NAME}-1`]: 'replica', [`${NAME}-2`]: 'replica' }),
    90_000,
    250,
  );
  service = await startServiceProxy({
    kubeconfigPath: cp.kubeconfigPath,
    namespace: NS,
    service: NAME,
    podAddresses: addresses,
  });
  sidecar = await startSidecar({
    args: [
      '--redis',
      `redis://127.0.0.1:${service.port}`,
      '--channel',
      'ripplecache:it-rolling',
      '--redis-timeout-ms',
      '1000',
    ],
  });
  await sidecar.waitReady();
}, 180_000);

afterAll(async () => {
  await stopAllSidecars();
  for (const c of clients) c.disconnect();
  await service?.close();
  sim?.stop();
  await operator?.stop().catch(() => undefined);
  await Promise.all((redis ?? []).map((r) => r.stop()));
  await cp?.stop();
});

describe('rolling update of a replication CacheCluster', () => {
  it('restarts replicas, switches over, restarts the old primary: writes go on, nothing lost, one primary', async () => {
    const sts0 = await apps.readNamespacedStatefulSet({ name: NAME, namespace: NS });
    expect(sts0.spec?.updateStrategy?.type).toBe('OnDelete');
    const oldRevision = sts0.status?.updateRevision;
    expect(oldRevision).toBeTruthy();
    const uidsBefore = Object.fromEntries((await pods()).map((p) => [p.metadata!.name!, p.metadata!.uid!]));

    // Writers: each key written by one worker at a time, each write retried until acknowledged (bounded).
    const last = new Map<string, string>();
    let acknowledged = 0;
    let refusals = 0;
    let stopped = false;
    const worker = async (w: number) => {
      for (let j = 0; !stopped; j++) {
        const key = `key-${w + WORKERS * (j % (KEYS / WORKERS))}`;
        const value = `w${w}-${j}`;
        const started = Date.now();
        for (;;) {
          const r = await sidecar.put(key, value, { timeoutMs: 3000 }).catch(() => undefined);
          if (r?.status === 204) break;
          refusals++;
          if (Date.now() - started > WRITE_BOUND_MS)
            throw new Error(`write of ${key} not acknowledged for ${WRITE_BOUND_MS} ms (last: ${r?.status})`);
          await new Promise((res) => setTimeout(res, 50));
        }
        last.set(key, value);
        acknowledged++;
        await new Promise((res) => setTimeout(res, 5));
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    const sampler = samplePrimaries(core, NS, NAME);
    let sampled: { max: number; samples: number; elapsedMs: number };

    let newRevision: string | undefined;
    const ackAt: number[] = [];
    const order: string[] = [];
    try {
      await waitFor('writes before the change', async () => acknowledged >= 200, 60_000, 20);
      // A restart-requiring change: the Redis container's resources (the pod template's restart hash).
      const patch = await cp.kubectl([
        'patch',
        'cachecluster',
        NAME,
        '-n',
        NS,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { resources: { requests: { cpu: '150m', memory: '96Mi' } } } }),
      ]);
      expect(patch.code, patch.stderr).toBe(0);
      await waitFor(
        'a new StatefulSet revision',
        async () => {
          const sts = await apps.readNamespacedStatefulSet({ name: NAME, namespace: NS });
          newRevision = sts.status?.updateRevision;
          return newRevision !== undefined && newRevision !== oldRevision;
        },
        60_000,
        200,
      );
      // Writes are acknowledged at each stage of the roll: recorded whenever a pod is re-created.
      const seen = new Set<string>();
      await waitFor(
        'every pod re-created on the new revision, the primary switched over',
        async () => {
          const list = await pods();
          for (const p of list)
            if (p.metadata!.uid !== uidsBefore[p.metadata!.name!] && !seen.has(p.metadata!.name!)) {
              seen.add(p.metadata!.name!);
              order.push(p.metadata!.name!);
              ackAt.push(acknowledged);
            }
          const cc = await getCc();
          return (
            list.length === 3 &&
            list.every(
              (p) =>
                p.metadata?.labels?.['controller-revision-hash'] === newRevision &&
                p.metadata!.uid !== uidsBefore[p.metadata!.name!] &&
                p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
            ) &&
            cc?.status?.lastFailover?.reason === 'Planned' &&
            cc?.status?.failover === undefined
          );
        },
        240_000,
        100,
      );
      const before = acknowledged;
      await waitFor('writes after the roll', async () => acknowledged >= before + 100, 60_000, 20);
    } finally {
      stopped = true;
      await load;
      sampled = await sampler.stop();
    }
    console.log(
      `acknowledged ${acknowledged}, refused ${refusals}, re-created ${order.join(', ')} at ${ackAt.join(', ')}`,
    );

    // One at a time, replicas first (highest ordinal first): the old primary pod 0 was re-created last.
    expect(order).toEqual([`${NAME}-2`, `${NAME}-1`, `${NAME}-0`]);
    const cc = await getCc();
    expect(cc.status.lastFailover).toMatchObject({ from: `${NAME}-0`, reason: 'Planned' });
    expect(cc.status.primary).toBe(cc.status.lastFailover.to);
    expect(cc.status.primary).not.toBe(`${NAME}-0`);
    expect(sim.containerStarts()).toBe(3);
    expect(sampled.max).toBe(1);
    // Sampled throughout: one list every 50 ms plus its round trip, so well over one per 200 ms (a fixed 50
    // failed once when the roll took only 3.7 s on a quiet machine).
    expect(sampled.samples).toBeGreaterThan(sampled.elapsedMs / 200);
    // Writes went on while pods restarted (the counter grew between re-creations).
    expect(ackAt).toHaveLength(3);
    expect(ackAt[2]!).toBeGreaterThan(ackAt[0]!);

    const labelsNow = await labels();
    expect(Object.values(labelsNow).filter((l) => l === 'primary')).toHaveLength(1);
    expect(labelsNow[cc.status.primary]).toBe('primary');
    const r = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.kind=CacheCluster,involvedObject.name=${NAME},reason=SwitchoverCompleted`,
      '-o',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).items).toHaveLength(1);

    // Nothing acknowledged was lost: every key at its last acknowledged value on the new primary.
    const primary = new Redis({
      host: '127.0.0.1',
      port: redis[Number(String(cc.status.primary).split('-').at(-1))]!.port,
      maxRetriesPerRequest: 1,
    });
    clients.push(primary);
    const wrong: string[] = [];
    for (const [k, v] of last) {
      const got = await primary.hget(`rc:${k}`, 'v');
      if (got !== v) wrong.push(`${k}: acknowledged ${v}, primary has ${got}`);
    }
    expect(last.size).toBe(KEYS);
    expect(wrong.slice(0, 10)).toEqual([]);
  }, 420_000);
});
