/**
 * Failover of a `replication` CacheCluster against a real control plane, real redis-servers and a real operator
 * process (simulated pods: the pod simulator plays kubelet and the readiness probe; `startServiceProxy` plays
 * kube-proxy from the real EndpointSlices, which the control plane's endpointslice controller builds from the
 * role labels the operator writes). Clients reach Redis only through those Service ports, as in a cluster.
 *
 * - The primary's redis-server SIGKILLed: the operator promotes the replica with the highest offset, moves the
 *   label (never two pods labelled primary, sampled throughout), records status, condition and event; a write
 *   through the client Service lands on the new primary; the old primary comes back empty and rejoins as a
 *   replica holding the new data.
 * - The primary's redis-server frozen (SIGSTOP): failed over within a bound close to afterSeconds, the offset it
 *   was last seen up with recorded as `fromOffset`; thawed, it rejoins as a replica.
 * - An operator stopped right after it recorded a failover step, then SIGKILLed: the next leader finishes it.
 * - No replica healthy enough: nothing is promoted, and status says why.
 */
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withReplicas,
  withSpec,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startReplicationPods, samplePrimaries, type LocalReplicationPods } from '../harness/replication.js';
import { startServiceProxy, type ServiceProxy } from '../harness/service-proxy.js';

const NS = 'default';
const ROLE = 'cache.ripplecache.io/role';
let cp: ControlPlane;
let core: k8s.CoreV1Api;
const cleanups: Array<() => Promise<unknown>> = [];
/** Operators of the running test, stopped after it (pass or fail) so that the next test's operator can lead. */
const operators: OperatorProcess[] = [];

async function operatorFor(c: SimCluster, identity: string, env?: NodeJS.ProcessEnv): Promise<OperatorProcess> {
  const op = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity,
    podAddresses: c.overrides,
    extraArgs: ['--lease-duration-seconds', '4'],
    ...(env ? { env } : {}),
  });
  operators.push(op);
  return op;
}

/** One simulated replication CacheCluster: a redis-server per pod, pod 0 the primary, the others its replicas. */
interface SimCluster extends LocalReplicationPods {
  name: string;
  sim: PodSimulator;
}

async function simCluster(name: string, pods: number): Promise<SimCluster> {
  const local = await startReplicationPods(NS, name, pods);
  const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(Object.keys(local.addresses)), local.addresses, {
    node: 'sim-node',
  });
  sim.start(200);
  cleanups.push(async () => {
    sim.stop();
    for (const r of local.redis) await r.stop().catch(() => undefined);
  });
  return { name, ...local, sim };
}

async function getCc(name: string): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', name, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

function condition(cc: any, type: string): any {
  return (cc?.status?.conditions ?? []).find((c: any) => c.type === type);
}

async function roleLabels(name: string): Promise<Record<string, string | undefined>> {
  const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `cache.ripplecache.io/cluster=${name}` });
  return Object.fromEntries(list.items.map((p) => [p.metadata!.name!, p.metadata?.labels?.[ROLE]]));
}

async function eventsOf(name: string, reason: string): Promise<Array<{ type: string; message: string }>> {
  const r = await cp.kubectl([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.kind=CacheCluster,involvedObject.name=${name},reason=${reason}`,
    '-o',
    'json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { items: Array<{ type: string; message: string }> }).items;
}

async function applyCc(name: string, replicas: number): Promise<void> {
  const cc = cacheCluster(
    name,
    inNamespace(NS),
    withSpec({ failover: { afterSeconds: 2 } }),
    withTopology('replication'),
    withReplicas(replicas),
  );
  const r = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
  expect(r.code, r.stderr).toBe(0);
}

/** Waits until pod 0 is labelled primary and every other pod replica, and the primary is on record. */
async function waitEstablished(c: SimCluster, pods: number): Promise<void> {
  await waitFor(
    `${c.name}: pod 0 labelled primary, the others replica, PrimaryAvailable=True`,
    async () => {
      const labels = await roleLabels(c.name);
      const cc = await getCc(c.name);
      return (
        labels[`${c.name}-0`] === 'primary' &&
        Array.from({ length: pods - 1 }, (_, i) => labels[`${c.name}-${i + 1}`] === 'replica').every(Boolean) &&
        condition(cc, 'PrimaryAvailable')?.status === 'True'
      );
    },
    90_000,
    250,
  );
}

function client(port: number): Redis {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100,
    lazyConnect: true,
  });
  r.on('error', () => undefined);
  cleanups.push(async () => r.disconnect());
  return r;
}

/**
 * SET until acknowledged: with the durability fence (min-replicas-to-write 1, the default with replicas) a
 * primary refuses writes with NOREPLICAS while no replica has acknowledged recently (just after a failover).
 */
async function setAcked(r: Redis, key: string, value: string): Promise<void> {
  let last: unknown;
  for (const until = Date.now() + 30_000; Date.now() < until;) {
    try {
      await r.set(key, value);
      return;
    } catch (err) {
      last = err;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  throw new Error(`SET ${key} never acknowledged`, { cause: last });
}

async function proxy(c: SimCluster, service: string): Promise<ServiceProxy> {
  const p = await startServiceProxy({
    kubeconfigPath: cp.kubeconfigPath,
    namespace: NS,
    service,
    podAddresses: c.addresses,
  });
  cleanups.push(() => p.close());
  return p;
}

beforeAll(async () => {
  // No kubelet heartbeats the simulator's Node: without this controller nothing marks its pods not Ready.
  cp = await startControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller'] });
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
});

afterEach(async () => {
  for (const op of operators.splice(0)) await op.stop('SIGKILL').catch(() => undefined);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await cp?.stop();
});

describe('failover of a replication CacheCluster', () => {
  it('promotes the most advanced replica when the primary is SIGKILLed; the old primary rejoins as a replica', async () => {
    const c = await simCluster('fo', 3);
    const operator = await operatorFor(c, 'failover-a');
    await applyCc('fo', 2);
    await waitEstablished(c, 3);

    const primarySvc = await proxy(c, 'fo');
    const replicasSvc = await proxy(c, 'fo-replicas');
    await waitFor('the client Service to name fo-0 only', async () => primarySvc.endpoints().join() === 'fo-0');
    await waitFor(
      'the replicas Service to name fo-1 and fo-2',
      async () => replicasSvc.endpoints().join() === 'fo-1,fo-2',
    );
    const before = client(primarySvc.port);
    for (let i = 0; i < 100; i++) await setAcked(before, `k${i}`, `v${i}`);
    // fo-2 ahead of fo-1: stop fo-1 replicating, write more, so that only fo-2 has it (the higher offset).
    const r1 = client(c.redis[1]!.port);
    await r1.call('CLIENT', 'PAUSE', '60000', 'WRITE');
    for (let i = 100; i < 150; i++) await setAcked(before, `k${i}`, `v${i}`);
    const r2 = client(c.redis[2]!.port);
    await waitFor('fo-2 to have every write', async () => (await r2.get('k149')) === 'v149');
    before.disconnect();

    const sampler = samplePrimaries(core, NS, 'fo');
    await c.redis[0]!.kill();
    await waitFor(
      'a completed failover in status',
      async () => (await getCc('fo'))?.status?.lastFailover !== undefined,
      60_000,
      200,
    );
    await r1.call('CLIENT', 'UNPAUSE');
    const cc = await getCc('fo');
    expect(cc.status.primary).toBe('fo-2');
    expect(cc.status.lastFailover).toMatchObject({ from: 'fo-0', to: 'fo-2' });
    expect(cc.status.lastFailover.toOffset).toBeGreaterThan(0);
    expect(cc.status.failover).toBeUndefined();
    expect(condition(cc, 'PrimaryAvailable')).toMatchObject({ status: 'True', reason: 'FailoverCompleted' });
    const events = await eventsOf('fo', 'FailoverCompleted');
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toMatch(/promoted fo-2 \(replication offset \d+\) in place of fo-0/);
    expect(String(await r2.call('ROLE').then((r) => (r as unknown[])[0]))).toBe('master');

    // Writes through the client Service reach the new primary, and it has everything written before.
    await waitFor('the client Service to name fo-2', async () => primarySvc.endpoints().join() === 'fo-2', 30_000);
    const after = client(primarySvc.port);
    expect(await after.get('k149')).toBe('v149');
    expect(await after.get('k0')).toBe('v0');
    await setAcked(after, 'after-failover', 'yes');

    // fo-1 follows fo-2 and gets the replica label back once in sync.
    await waitFor(
      'fo-1 labelled replica again, following fo-2',
      async () => (await roleLabels('fo'))['fo-1'] === 'replica' && (await r1.get('after-failover')) === 'yes',
      30_000,
      200,
    );

    // The old primary comes back empty, as a master: made a replica of fo-2 before it gets a label.
    await c.redis[0]!.start();
    const r0 = client(c.redis[0]!.port);
    await waitFor(
      'fo-0 to rejoin as a replica of fo-2 holding the new data',
      async () => (await r0.get('after-failover')) === 'yes' && (await roleLabels('fo'))['fo-0'] === 'replica',
      60_000,
      200,
    );
    const role = (await r0.call('ROLE')) as unknown[];
    expect(role[0]).toBe('slave');
    expect(role[2]).toBe(c.redis[2]!.port);
    expect(await r0.get('k149')).toBe('v149');
    expect(await roleLabels('fo')).toEqual({ 'fo-0': 'replica', 'fo-1': 'replica', 'fo-2': 'primary' });
    const sampled = await sampler.stop();
    expect(sampled.samples).toBeGreaterThan(10);
    expect(sampled.max).toBe(1);
    await operator.stop();
  });

  it('fails over a frozen primary (SIGSTOP: connections accepted, never answered) within afterSeconds + 4 s', async () => {
    const c = await simCluster('frz', 3);
    const operator = await operatorFor(c, 'failover-frozen');
    await applyCc('frz', 2);
    await waitEstablished(c, 3);
    const primary = client(c.redis[0]!.port);
    for (let i = 0; i < 20; i++) await setAcked(primary, `k${i}`, `v${i}`);
    // Every replica holds every write, and the operator has probed the primary since (its offset as last seen up).
    const offset = async (r: Redis) =>
      Number(/_repl_offset:(\d+)/.exec(String(await r.call('INFO', 'replication')))![1]);
    const primaryOffset = await offset(primary);
    await waitFor('the replicas to catch up', async () => {
      const o = await Promise.all([1, 2].map((i) => offset(client(c.redis[i]!.port))));
      return o.every((x) => x >= primaryOffset);
    });
    await new Promise((res) => setTimeout(res, 1500));
    primary.disconnect();
    // An application's own connections to the primary, established before the freeze (a Service keeps them on
    // the pod): a plain client and a pub/sub subscriber. Neither reconnects by itself here.
    const appClient = new Redis({ host: '127.0.0.1', port: c.redis[0]!.port, retryStrategy: () => null });
    const subscriber = new Redis({ host: '127.0.0.1', port: c.redis[0]!.port, retryStrategy: () => null });
    cleanups.push(async () => {
      appClient.disconnect();
      subscriber.disconnect();
    });
    for (const r of [appClient, subscriber]) r.on('error', () => undefined);
    await appClient.set('app', 'x');
    await subscriber.subscribe('app-channel');
    let appClosedAt: number | undefined;
    let subscriberClosed = false;
    appClient.on('close', () => (appClosedAt ??= performance.now()));
    subscriber.on('close', () => (subscriberClosed = true));

    // Bound: afterSeconds (2 s) from the first probe that finds the primary lost (counted from when that probe
    // was sent), plus detection latency (up to a probe interval before it, and its time box: 500 ms each for
    // afterSeconds 2), plus the failover's API calls, plus slack for a loaded machine: 6 s. A SIGKILLed primary
    // fails over in ~2.5 s, a frozen one now in ~3 s. Before the fix, each call to the frozen Redis took twice
    // --redis-timeout-ms (the ioredis handshake is not covered by connectTimeout) and each reconcile made two in
    // a row (INFO, then live config): PrimaryLost ~8 s after the freeze, the failover completed at ~12.5 s.
    const pid = c.redis[0]!.pid;
    const frozenAt = performance.now();
    process.kill(pid, 'SIGSTOP');
    let tookMs: number;
    try {
      await waitFor(
        'a completed failover in status',
        async () => (await getCc('frz'))?.status?.lastFailover !== undefined,
        30_000,
        100,
      );
      tookMs = performance.now() - frozenAt;
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const thawedAt = performance.now();
    expect(tookMs).toBeLessThanOrEqual(6000);
    const cc = await getCc('frz');
    expect(cc.status.lastFailover).toMatchObject({ from: 'frz-0' });
    expect(['frz-1', 'frz-2']).toContain(cc.status.primary);
    // The offset the lost primary was last seen up with.
    expect(cc.status.lastFailover.fromOffset).toBeGreaterThan(0);
    expect(cc.status.lastFailover.fromOffset).toBeLessThanOrEqual(primaryOffset);
    const events = await eventsOf('frz', 'FailoverCompleted');
    expect(events[0]!.message).toMatch(/in place of frz-0 \(last seen at offset \d+\)/);
    // Thawed, the old primary answers again as a master: made a replica of the new primary.
    await waitFor(
      'frz-0 to rejoin as a replica',
      async () => (await roleLabels('frz'))['frz-0'] === 'replica',
      60_000,
      200,
    );
    // Demoted with its client connections closed (as Sentinel does), so applications reconnect through the
    // Service to the new primary instead of meeting READONLY on a connection that stays on a replica. The
    // subscriber is kept: a replica receives what is published on its primary.
    expect(appClosedAt, 'the application client on the old primary was disconnected').toBeGreaterThan(thawedAt);
    expect(subscriberClosed).toBe(false);
    expect(subscriber.status).toBe('ready');
    const published = new Promise<string>((res) => subscriber.once('message', (_ch, msg: string) => res(msg)));
    const newPrimary = client(c.redis[Number(String(cc.status.primary).split('-')[1])]!.port);
    await newPrimary.publish('app-channel', 'after-demotion');
    expect(await published).toBe('after-demotion');
    await operator.stop();
  });

  it('an operator SIGKILLed in the middle of a failover: the next leader completes it', async () => {
    const c = await simCluster('mid', 3);
    // A stops for good right after it has promoted the target and recorded that step.
    const a = await operatorFor(c, 'failover-mid-a', { RIPPLECACHE_TEST_PAUSE_AFTER_FAILOVER_STEP: 'Promoted' });
    await applyCc('mid', 2);
    await waitEstablished(c, 3);
    const sampler = samplePrimaries(core, NS, 'mid');
    await c.redis[0]!.kill();
    await waitFor(
      'A to record step Promoted',
      async () => (await getCc('mid'))?.status?.failover?.step === 'Promoted',
      60_000,
      100,
    );
    const inProgress = (await getCc('mid')).status.failover;
    expect(inProgress).toMatchObject({ from: 'mid-0', step: 'Promoted' });
    // In the middle: the target is promoted, but no pod is labelled primary and nothing is completed.
    const target = inProgress.to as string;
    const targetRedis = client(c.redis[Number(target.split('-')[1])]!.port);
    expect(((await targetRedis.call('ROLE')) as unknown[])[0]).toBe('master');
    expect(Object.values(await roleLabels('mid'))).not.toContain('primary');
    expect(await eventsOf('mid', 'FailoverCompleted')).toEqual([]);
    await a.stop('SIGKILL');

    const b = await operatorFor(c, 'failover-mid-b');
    await waitFor(
      'B to complete the failover',
      async () => (await getCc('mid'))?.status?.lastFailover !== undefined,
      60_000,
      200,
    );
    const cc = await getCc('mid');
    // The same target as recorded (idempotent: not a second choice), the other replica following it.
    expect(cc.status.primary).toBe(target);
    expect(cc.status.lastFailover).toMatchObject({ from: 'mid-0', to: target, startedAt: inProgress.startedAt });
    expect(cc.status.failover).toBeUndefined();
    expect(b.log()).toMatch(/Failover completed/);
    expect(await eventsOf('mid', 'FailoverCompleted')).toHaveLength(1);
    const other = target === 'mid-1' ? 'mid-2' : 'mid-1';
    await waitFor(
      `${other} to follow ${target} with the replica label`,
      async () => {
        const labels = await roleLabels('mid');
        return labels[target] === 'primary' && labels[other] === 'replica';
      },
      30_000,
      200,
    );
    const otherRole = (await client(c.redis[Number(other.split('-')[1])]!.port).call('ROLE')) as unknown[];
    expect(otherRole[2]).toBe(c.redis[Number(target.split('-')[1])]!.port);
    const sampled = await sampler.stop();
    expect(sampled.max).toBe(1);
    await b.stop();
  });

  it('promotes nothing when no replica is healthy enough, and reports why', async () => {
    const c = await simCluster('nohealthy', 2);
    const operator = await operatorFor(c, 'failover-blocked');
    await applyCc('nohealthy', 1);
    await waitEstablished(c, 2);
    // The replica dies first, then the primary: the replica comes back (with the data of its last full sync, or
    // empty) and cannot sync from the dead primary: it misses whatever was written after.
    await c.redis[1]!.kill();
    await c.redis[0]!.kill();
    await c.redis[1]!.start();
    await waitFor(
      'FailoverBlocked naming the replica and why',
      async () => {
        const cc = await getCc('nohealthy');
        const cond = condition(cc, 'PrimaryAvailable');
        return (
          cond?.reason === 'FailoverBlocked' &&
          /nohealthy-1: (does not hold the primary's history|its link to the primary has not been up)/.test(
            cond.message,
          )
        );
      },
      60_000,
      250,
    );
    // Still blocked a few probes later: nothing was promoted.
    await new Promise((r) => setTimeout(r, 3000));
    const cc = await getCc('nohealthy');
    expect(cc.status.primary).toBe('nohealthy-0');
    expect(cc.status.lastFailover).toBeUndefined();
    expect(cc.status.failover).toBeUndefined();
    expect(cc.status.phase).toBe('Degraded');
    expect(condition(cc, 'Ready')).toMatchObject({ status: 'False', reason: 'FailoverBlocked' });
    const r1 = client(c.redis[1]!.port);
    expect(((await r1.call('ROLE')) as unknown[])[0]).toBe('slave');
    expect((await roleLabels('nohealthy'))['nohealthy-1']).not.toBe('primary');
    expect((await eventsOf('nohealthy', 'FailoverBlocked')).length).toBeGreaterThanOrEqual(1);

    // The primary comes back: no failover happened, it is the primary again.
    await c.redis[0]!.start();
    await waitFor(
      'PrimaryAvailable=True again with nohealthy-0',
      async () => condition(await getCc('nohealthy'), 'PrimaryAvailable')?.status === 'True',
      60_000,
      250,
    );
    expect((await getCc('nohealthy')).status.lastFailover).toBeUndefined();
    await operator.stop();
  });
});
