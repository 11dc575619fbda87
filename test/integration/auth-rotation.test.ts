/**
 * Rotation of the auth Secret's password on a Ready `replication` CacheCluster, with real processes: a control
 * plane (its StatefulSet controller, OnDelete), the operator, three redis-servers playing the pods (the pod
 * simulator plays kubelet: a re-created pod's redis-server starts with the password its Secret holds then).
 * The README's promise: the rotation rolls the Redis pods, each restarted pod comes up with the new password,
 * and the operator keeps talking to the pods that still run the old one meanwhile (no failover: a primary
 * answering WRONGPASS is alive). Asserted: every pod ends on the update revision, answering the new password
 * only; Ready again; PrimaryAvailable never PrimaryLost / FailoverBlocked (sampled throughout), no failover but
 * the roll's planned switchover; RollingUpdate seen in progress; neither password in status, events, the
 * operator's log or its metrics.
 *
 * And a standalone CacheCluster whose auth Secret does not exist yet: Ready=False / Degraded=True naming the
 * Secret (AuthSecretMissing), then its key (AuthSecretKeyMissing), each with a Warning event, no StatefulSet
 * meanwhile (a pod could not start without its password); Ready once the Secret holds the key.
 */
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withAuth,
  withReplicas,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startReplicationPods } from '../harness/replication.js';

const NS = 'default';
const NAME = 'rep';
const SECRET = 'rep-auth';
const OLD_PASSWORD = 'first-password-7f3a';
const NEW_PASSWORD = 'second-password-9c1e';
const ROLE = 'cache.ripplecache.io/role';

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let redis: RedisProcess[];
let sim: PodSimulator;
let operator: OperatorProcess;
/** The standalone CacheCluster whose Secret is created late, and its pod's redis-server. */
const LONE = 'lone';
const LONE_SECRET = 'lone-auth';
const LONE_PASSWORD = 'lone-password-4b8d';
let loneRedis: RedisProcess;
let loneSim: PodSimulator;

async function getCc(name = NAME): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', name, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

async function pods(): Promise<k8s.V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `cache.ripplecache.io/cluster=${NAME}` })).items;
}

function secretYaml(password: string, name = SECRET, key = 'password'): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: NS },
    stringData: { [key]: password },
  });
}

/** What one pod's Redis answers to PING with `password`: PONG, or the error's first word (WRONGPASS). */
async function pingWith(r: RedisProcess, password: string): Promise<string> {
  const c = new Redis({ host: '127.0.0.1', port: r.port, password, lazyConnect: true, maxRetriesPerRequest: 0 });
  let authError: string | undefined;
  c.on('error', (err: Error) => (authError ??= err.message.split(' ')[0]));
  try {
    await c.connect();
    return String(await c.call('PING'));
  } catch {
    return authError ?? 'unreachable';
  } finally {
    c.disconnect();
  }
}

function condition(cc: any, type: string): { status: string; reason: string; message: string } | undefined {
  return cc?.status?.conditions?.find((c: { type: string }) => c.type === type);
}

beforeAll(async () => {
  cp = await startControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller'] });
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  const local = await startReplicationPods(NS, NAME, 3, { password: OLD_PASSWORD });
  redis = local.redis;
  const containers = Object.fromEntries(redis.map((r, i) => [`${NAME}-${i}`, r]));
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(Object.keys(local.addresses)), local.addresses, {
    node: 'sim-node',
    containers,
  });
  sim.start(200);
  // lone-0: its redis-server runs with the password the Secret will hold (the simulator starts no container).
  loneRedis = await startRedis({ password: LONE_PASSWORD });
  const loneAddress = { host: '127.0.0.1', port: loneRedis.port };
  loneSim = new PodSimulator(cp.kubeconfigPath, NS, new Set([`${LONE}-0`]), { [`${LONE}-0`]: loneAddress });
  loneSim.start(200);
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'auth-rotation',
    podAddresses: { ...local.overrides, [`${NS}/${LONE}-0`]: `127.0.0.1:${loneRedis.port}` },
    // Secrets are not watched: the periodic resync notices a rotation.
    extraArgs: ['--resync-seconds', '2'],
  });
  const s = await cp.kubectl(['apply', '-f', '-'], secretYaml(OLD_PASSWORD));
  expect(s.code, s.stderr).toBe(0);
  const r = await cp.kubectl(
    ['apply', '-f', '-'],
    cacheClusterYaml(
      cacheCluster(
        NAME,
        inNamespace(NS),
        withTopology('replication'),
        withReplicas(2),
        withAuth({ name: SECRET, key: 'password' }),
      ),
    ),
  );
  expect(r.code, r.stderr).toBe(0);
  await waitFor(
    'Ready, pod 0 primary, pods 1 and 2 replicas',
    async () => {
      const labels = Object.fromEntries((await pods()).map((p) => [p.metadata!.name!, p.metadata?.labels?.[ROLE]]));
      return (
        JSON.stringify(labels) ===
          JSON.stringify({ [`${NAME}-0`]: 'primary', [`${NAME}-1`]: 'replica', [`${NAME}-2`]: 'replica' }) &&
        (await getCc())?.status?.phase === 'Ready'
      );
    },
    120_000,
    250,
  );
}, 240_000);

afterAll(async () => {
  sim?.stop();
  loneSim?.stop();
  await operator?.stop().catch(() => undefined);
  await Promise.all([...(redis ?? []), ...(loneRedis ? [loneRedis] : [])].map((r) => r.stop()));
  await cp?.stop();
});

describe('rotating the auth password of a replication CacheCluster', () => {
  it('rolls the pods onto the new password, talking to the old ones meanwhile, without a failover', async () => {
    const sts0 = await apps.readNamespacedStatefulSet({ name: NAME, namespace: NS });
    const oldRevision = sts0.status?.updateRevision;
    expect(oldRevision).toBeTruthy();
    const primaryBefore = (await getCc()).status.primary;
    expect(primaryBefore).toBe(`${NAME}-0`);

    // Sample the status throughout: PrimaryAvailable reasons, RollingUpdate reasons, phases.
    const availability = new Set<string>();
    const rolling = new Set<string>();
    const messages = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const cc = await getCc().catch(() => undefined);
        const pa = condition(cc, 'PrimaryAvailable');
        if (pa) availability.add(pa.reason);
        if (pa?.status === 'False') messages.add(pa.message);
        const ru = condition(cc, 'RollingUpdate');
        if (ru) rolling.add(ru.reason);
        await new Promise((res) => setTimeout(res, 200));
      }
    })();

    let newRevision: string | undefined;
    try {
      const rotated = await cp.kubectl(['apply', '-f', '-'], secretYaml(NEW_PASSWORD));
      expect(rotated.code, rotated.stderr).toBe(0);
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
      await waitFor(
        'every pod on the new revision, answering the new password, Ready',
        async () => {
          const list = await pods();
          if (list.length !== 3) return false;
          if (!list.every((p) => p.metadata?.labels?.['controller-revision-hash'] === newRevision)) return false;
          for (const r of redis) if ((await pingWith(r, NEW_PASSWORD)) !== 'PONG') return false;
          const cc = await getCc();
          return cc?.status?.phase === 'Ready' && cc.status.failover === undefined;
        },
        240_000,
        250,
      );
    } catch (err) {
      const cc = await getCc();
      const state = {
        phase: cc?.status?.phase,
        conditions: cc?.status?.conditions?.map((c: any) => `${c.type}=${c.status} ${c.reason}: ${c.message}`),
        pods: (await pods()).map((p) => `${p.metadata?.name} ${p.metadata?.labels?.['controller-revision-hash']}`),
        newRevision,
        ping: await Promise.all(redis.map((r) => pingWith(r, NEW_PASSWORD))),
      };
      console.log(JSON.stringify(state, null, 1), operator.log().split('\n').slice(-30).join('\n'));
      throw err;
    } finally {
      sampling = false;
      await sampler;
    }
    console.log(
      `PrimaryAvailable reasons seen: ${[...availability].join(', ')}; RollingUpdate: ${[...rolling].join(', ')}; ` +
        `messages: ${[...messages].join(' | ')}`,
    );

    // Every pod restarted with the new password only.
    for (const r of redis) {
      expect(await pingWith(r, NEW_PASSWORD)).toBe('PONG');
      expect(await pingWith(r, OLD_PASSWORD)).toBe('WRONGPASS');
    }
    expect(sim.containerStarts()).toBe(3);
    // No failover: never lost, never blocked; the only primary change is the roll's planned switchover.
    expect(availability.has('PrimaryLost')).toBe(false);
    expect(availability.has('FailoverBlocked')).toBe(false);
    // The roll is over once its last restarted pod is back, Ready and in sync: UpToDate may follow a moment later.
    await waitFor(
      'RollingUpdate UpToDate',
      async () => condition(await getCc(), 'RollingUpdate')?.reason === 'UpToDate',
      30_000,
      250,
    );
    const cc = await getCc();
    if (cc.status.lastFailover !== undefined) expect(cc.status.lastFailover.reason).toBe('Planned');
    expect(rolling.has('InProgress')).toBe(true);
    expect(condition(cc, 'RollingUpdate')?.reason).toBe('UpToDate');
    expect(condition(cc, 'PrimaryAvailable')?.status).toBe('True');
    expect(condition(cc, 'ConfigApplied')?.status).toBe('True');
    const failoverEvents = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.kind=CacheCluster,involvedObject.name=${NAME},reason=FailoverCompleted`,
      '-o',
      'json',
    ]);
    expect(JSON.parse(failoverEvents.stdout).items).toHaveLength(0);

    // Neither password anywhere the operator writes or says something.
    const events = await cp.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    const sts = await apps.readNamespacedStatefulSet({ name: NAME, namespace: NS });
    const metrics = await (await fetch(operator.metricsUrl)).text();
    for (const text of [JSON.stringify(cc), events.stdout, JSON.stringify(sts), operator.log(), metrics]) {
      expect(text).not.toContain(OLD_PASSWORD);
      expect(text).not.toContain(NEW_PASSWORD);
    }
  }, 420_000);
});

describe('an auth Secret that does not exist yet', () => {
  /** The Warning events of `lone` with `reason`. */
  async function warnings(reason: string): Promise<Array<{ type: string; message: string }>> {
    const r = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.kind=CacheCluster,involvedObject.name=${LONE},reason=${reason}`,
      '-o',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).items;
  }

  async function statefulSetExists(): Promise<boolean> {
    return (await cp.kubectl(['get', 'statefulset', LONE, '-n', NS])).code === 0;
  }

  it('names the missing Secret, then its missing key, with Warnings and no pod; Ready once the key exists', async () => {
    const applied = await cp.kubectl(
      ['apply', '-f', '-'],
      cacheClusterYaml(cacheCluster(LONE, inNamespace(NS), withAuth({ name: LONE_SECRET, key: 'password' }))),
    );
    expect(applied.code, applied.stderr).toBe(0);

    const missing =
      `Secret ${NS}/${LONE_SECRET} (spec.auth.secretRef) not found: the Redis pods take their password from its ` +
      'key "password"; no child is created or updated until it exists';
    await waitFor(
      'Ready=False AuthSecretMissing',
      async () => condition(await getCc(LONE), 'Ready')?.reason === 'AuthSecretMissing',
      30_000,
      200,
    );
    let cc = await getCc(LONE);
    expect(cc.status.phase).toBe('Failed');
    expect(condition(cc, 'Ready')).toMatchObject({ status: 'False', message: missing });
    expect(condition(cc, 'Degraded')).toMatchObject({ status: 'True', reason: 'AuthSecretMissing', message: missing });
    await waitFor('a Warning AuthSecretMissing', async () => (await warnings('AuthSecretMissing')).length > 0, 10_000);
    expect(await warnings('AuthSecretMissing')).toEqual([
      expect.objectContaining({ type: 'Warning', message: missing }),
    ]);
    expect(await statefulSetExists()).toBe(false);

    // The Secret, without the key.
    const wrongKey = await cp.kubectl(['apply', '-f', '-'], secretYaml(LONE_PASSWORD, LONE_SECRET, 'pass'));
    expect(wrongKey.code, wrongKey.stderr).toBe(0);
    const noKey =
      `Secret ${NS}/${LONE_SECRET} (spec.auth.secretRef) has no key "password": the Redis pods take their ` +
      'password from it; no child is created or updated until it does';
    await waitFor(
      'Ready=False AuthSecretKeyMissing',
      async () => condition(await getCc(LONE), 'Ready')?.reason === 'AuthSecretKeyMissing',
      30_000,
      200,
    );
    cc = await getCc(LONE);
    expect(condition(cc, 'Ready')).toMatchObject({ status: 'False', message: noKey });
    expect(condition(cc, 'Degraded')).toMatchObject({ status: 'True', reason: 'AuthSecretKeyMissing' });
    await waitFor('a Warning AuthSecretKeyMissing', async () => (await warnings('AuthSecretKeyMissing')).length > 0);
    expect(await warnings('AuthSecretKeyMissing')).toEqual([
      expect.objectContaining({ type: 'Warning', message: noKey }),
    ]);
    expect(await statefulSetExists()).toBe(false);

    // The key: the StatefulSet, its pod (the simulator), Ready. Secrets are not watched: a resync (2 s here) or
    // the operator's own retry notices it.
    const fixed = await cp.kubectl(['delete', 'secret', LONE_SECRET, '-n', NS]);
    expect(fixed.code, fixed.stderr).toBe(0);
    const created = await cp.kubectl(['apply', '-f', '-'], secretYaml(LONE_PASSWORD, LONE_SECRET));
    expect(created.code, created.stderr).toBe(0);
    await waitFor('Ready', async () => (await getCc(LONE))?.status?.phase === 'Ready', 60_000, 200);
    cc = await getCc(LONE);
    expect(condition(cc, 'Ready')).toMatchObject({ status: 'True', reason: 'ClusterReady' });
    expect(condition(cc, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(condition(cc, 'ConfigApplied')?.status).toBe('True');
    expect(await statefulSetExists()).toBe(true);

    // The password nowhere the operator writes or says something.
    const events = await cp.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    const sts = await apps.readNamespacedStatefulSet({ name: LONE, namespace: NS });
    for (const text of [JSON.stringify(cc), events.stdout, JSON.stringify(sts), operator.log()])
      expect(text).not.toContain(LONE_PASSWORD);
  }, 120_000);
});
