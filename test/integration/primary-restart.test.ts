/**
 * A primary whose container restarts within `spec.failover.afterSeconds` and comes back EMPTY (persistence
 * none), against a real control plane, real redis-servers and a real operator process (simulated pods: the pod
 * simulator plays kubelet and readiness probe and restarts a container's redis-server with its ConfigMap's
 * redis.conf, as the entrypoint would; `startServiceProxy` plays kube-proxy from the real EndpointSlices).
 *
 * Every Redis pod of topology replication starts as a replica of a placeholder primary (redis.conf), with no
 * master link: the restarted primary refuses its replicas' SYNC/PSYNC (`-NOMASTERLINK`), so they keep their
 * data, and the operator, seeing the recorded primary restarted, fails over to the most advanced replica.
 * Before, the primary came back as an empty master and its replicas full-synced from it: every acknowledged
 * write was lost.
 *
 * - Cold start: the pods all start without a role; the operator makes pod 0 the primary.
 * - The primary restarted empty under writes acknowledged with `WAIT 1` (what a sidecar with durability
 *   replicated acknowledges): no acknowledged write lost or older, one pod labelled primary at most (sampled),
 *   the old primary rejoins as a replica holding the data.
 * - Without replicas, with persistence aof: the restarted primary comes back as the primary at once, with its data.
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
import { samplePrimaries, startReplicationPods, type LocalReplicationPods } from '../harness/replication.js';
import { startServiceProxy, type ServiceProxy } from '../harness/service-proxy.js';

const NS = 'default';
const ROLE = 'cache.ripplecache.io/role';
let cp: ControlPlane;
let core: k8s.CoreV1Api;
const cleanups: Array<() => Promise<unknown>> = [];
const operators: OperatorProcess[] = [];

interface SimCluster extends LocalReplicationPods {
  name: string;
  sim: PodSimulator;
  /** The pods the simulator marks Running and Ready (take one out to keep it Pending). */
  marked: Set<string>;
}

async function simCluster(name: string, pods: number, opts: { pending?: string[] } = {}): Promise<SimCluster> {
  // As real pods: every redis-server starts as a replica of the placeholder, no primary until the operator.
  const local = await startReplicationPods(NS, name, pods, { asPods: true });
  const marked = new Set(Object.keys(local.addresses).filter((p) => !opts.pending?.includes(p)));
  const sim = new PodSimulator(cp.kubeconfigPath, NS, marked, local.addresses, {
    node: 'sim-node',
  });
  sim.start(200);
  cleanups.push(async () => {
    sim.stop();
    for (const r of local.redis) await r.stop().catch(() => undefined);
  });
  return { name, ...local, sim, marked };
}

async function operatorFor(c: SimCluster, identity: string): Promise<OperatorProcess> {
  const op = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity,
    podAddresses: c.overrides,
  });
  operators.push(op);
  return op;
}

async function getCc(name: string): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', name, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
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

function client(port: number): Redis {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  r.on('error', () => undefined);
  cleanups.push(async () => r.disconnect());
  return r;
}

async function role(port: number): Promise<unknown[]> {
  const r = client(port);
  try {
    return (await r.call('ROLE')) as unknown[];
  } finally {
    r.disconnect();
  }
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

/**
 * One writer through the client Service, as a sidecar with durability replicated: `SET` then `WAIT 1`; a write
 * counts as acknowledged only when a replica has it. Keys `k0`…`k(keys-1)` in turn, value = the write's sequence
 * number. Stops after `total` acknowledged writes (at most 2 minutes). Errors (READONLY on a restarted primary,
 * NOREPLICAS from the fence, cut connections) are not acknowledged; it reconnects and goes on.
 */
function writer(port: number, keys: number, total: number) {
  const lastAcked = new Map<string, number>();
  let acked = 0;
  let failed = 0;
  const deadline = Date.now() + 120_000;
  const done = (async () => {
    let r = client(port);
    for (let seq = 1; acked < total && Date.now() < deadline; seq++) {
      const key = `k${seq % keys}`;
      try {
        if (r.status === 'wait' || r.status === 'end') {
          r = client(port);
          await r.connect();
        }
        await r.set(key, String(seq));
        const n = Number(await r.call('WAIT', '1', '1000'));
        if (n >= 1) {
          lastAcked.set(key, seq);
          acked++;
        } else failed++;
      } catch {
        failed++;
        r.disconnect();
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    r.disconnect();
  })();
  return {
    acked: () => acked,
    /** Waits until it has `total` acknowledged writes (or gave up after 2 minutes). */
    finished: async () => {
      await done;
      return { lastAcked, acked, failed };
    },
  };
}

beforeAll(async () => {
  cp = await startControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller'] });
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
});

afterEach(async () => {
  // SIGTERM: a stopping operator releases its Lease, so the next case's operator leads at once (with the
  // default 15 s Lease, which a loaded machine does not miss as it could a 4 s one).
  for (const op of operators.splice(0)) await op.stop().catch(() => undefined);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await cp?.stop();
});

describe('a primary that restarts empty', () => {
  it('fails over within afterSeconds to the most advanced replica: no acknowledged write lost, old primary rejoins', async () => {
    const c = await simCluster('pr', 3);
    // Cold start: no pod is a master before the operator.
    for (const r of c.redis) expect((await role(r.port))[0]).toBe('slave');
    await operatorFor(c, 'primary-restart');
    const cc = cacheCluster(
      'pr',
      inNamespace(NS),
      withSpec({ failover: { afterSeconds: 5 } }),
      withTopology('replication'),
      withReplicas(2),
    );
    const applied = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor(
      'pr-0 made the primary, pr-1 and pr-2 its replicas',
      async () => {
        const labels = await roleLabels('pr');
        return labels['pr-0'] === 'primary' && labels['pr-1'] === 'replica' && labels['pr-2'] === 'replica';
      },
      90_000,
      250,
    );
    expect((await role(c.redis[0]!.port))[0]).toBe('master');
    expect(await eventsOf('pr', 'PrimaryRestarted')).toEqual([]);

    const primarySvc = await proxy(c, 'pr');
    await waitFor('the client Service to name pr-0', async () => primarySvc.endpoints().join() === 'pr-0');
    const sampler = samplePrimaries(core, NS, 'pr');
    const w = writer(primarySvc.port, 100, 600);
    await waitFor('200 acknowledged writes', async () => w.acked() >= 200, 60_000, 20);

    // The primary's container restarts (SIGKILL, then redis-server again on its data dir: empty, mode none).
    await c.sim.restartRedisContainer('pr-0', c.redis[0]!);
    const restartedRole = await role(c.redis[0]!.port);
    expect(restartedRole.slice(0, 3)).toEqual(['slave', '127.0.0.1', 1]);
    // It came back before the failover (within afterSeconds): the gap this closes.
    expect((await getCc('pr'))?.status?.lastFailover).toBeUndefined();

    await waitFor(
      'a completed failover',
      async () => (await getCc('pr'))?.status?.lastFailover !== undefined,
      60_000,
      200,
    );
    const status = (await getCc('pr')).status;
    expect(status.lastFailover.from).toBe('pr-0');
    expect(['pr-1', 'pr-2']).toContain(status.primary);
    expect((await eventsOf('pr', 'FailoverCompleted')).length).toBe(1);
    await waitFor(
      `the client Service to name ${status.primary}`,
      async () => primarySvc.endpoints().join() === status.primary,
      30_000,
    );
    const { lastAcked, acked, failed } = await w.finished();
    // The writer goes on until 600 acknowledged writes: some after the failover.
    expect(acked).toBe(600);
    expect(failed).toBeGreaterThan(0);

    const newPrimary = client(c.addresses[status.primary as string]!.port);
    let lost = 0;
    let older = 0;
    for (const [key, seq] of lastAcked) {
      const v = await newPrimary.get(key);
      if (v === null) lost++;
      else if (Number(v) < seq) older++;
    }
    expect(lastAcked.size).toBe(100);
    expect({ lost, older }).toEqual({ lost: 0, older: 0 });

    // The old primary rejoins as a replica of the new one, holding the data.
    await waitFor(
      'pr-0 labelled replica, following the new primary',
      async () => (await roleLabels('pr'))['pr-0'] === 'replica',
      60_000,
      200,
    );
    const r0 = await role(c.redis[0]!.port);
    expect(r0[0]).toBe('slave');
    expect(r0[2]).toBe(c.addresses[status.primary as string]!.port);
    const old = client(c.redis[0]!.port);
    const [someKey, someSeq] = [...lastAcked.entries()][0]!;
    await waitFor('pr-0 to hold the data', async () => Number(await old.get(someKey)) >= someSeq, 30_000);
    const sampled = await sampler.stop();
    expect(sampled.samples).toBeGreaterThan(10);
    expect(sampled.max).toBe(1);
  });

  it('without replicas, with persistence aof: comes back as the primary at once with its data', async () => {
    const c = await simCluster('lone', 1);
    await operatorFor(c, 'primary-restart-lone');
    const cc = cacheCluster(
      'lone',
      inNamespace(NS),
      withSpec({ failover: { afterSeconds: 30 }, persistence: { mode: 'aof', storage: { size: '1Gi' } } }),
      withTopology('replication'),
      withReplicas(0),
    );
    const applied = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor('lone-0 the primary', async () => (await roleLabels('lone'))['lone-0'] === 'primary', 90_000, 250);
    const r = client(c.redis[0]!.port);
    await waitFor(
      'appendonly yes (live)',
      async () => ((await r.call('CONFIG', 'GET', 'appendonly')) as string[])[1] === 'yes',
    );
    await waitFor(
      'the first AOF rewrite to finish',
      async () =>
        /aof_rewrite_in_progress:0/.test(await r.info('persistence')) &&
        /aof_rewrite_scheduled:0/.test(await r.info('persistence')),
      30_000,
    );
    for (let i = 0; i < 50; i++) await r.set(`k${i}`, `v${i}`);
    r.disconnect();

    await c.sim.restartRedisContainer('lone-0', c.redis[0]!);
    // afterSeconds is 30: brought back before that, since there is no replica to wait for.
    await waitFor('lone-0 a master again', async () => (await role(c.redis[0]!.port))[0] === 'master', 20_000, 100);
    const again = client(c.redis[0]!.port);
    expect(await again.dbsize()).toBe(50);
    expect(await again.get('k49')).toBe('v49');
    await waitFor(
      'a PrimaryRestarted event',
      async () => (await eventsOf('lone', 'PrimaryRestarted')).length >= 1,
    ).catch((err: unknown) => {
      // Seen once in CI (2026-12-03): the pod came back as the primary with its data, but no event. Say
      // which path the operator took (a promotion taken for a first start records no event).
      const lines = operators
        .flatMap((op) => op.log().split('\n'))
        .filter((l) => l.includes('default/lone') && /primary|Promot|First start|failover/i.test(l));
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}\noperator log:\n${lines.slice(-30).join('\n')}`,
      );
    });
    expect((await eventsOf('lone', 'PrimaryRestarted'))[0]!.message).toMatch(/lone-0 is the primary again/);
    expect((await getCc('lone')).status.lastFailover).toBeUndefined();
  });
  it('a lone primary that restarts before it is first seen Ready: a restart, not a first start', async () => {
    // Seen in CI (2026-12-03): under load the container restarted after the operator's first-start promotion
    // and before any step saw the pod up, and the second promotion was taken for a first start (no event).
    // Here the pod stays Pending (not Ready) until after the restart, so no step can see it up in between.
    const c = await simCluster('early', 1, { pending: ['early-0'] });
    await operatorFor(c, 'primary-restart-early');
    const cc = cacheCluster(
      'early',
      inNamespace(NS),
      withSpec({ failover: { afterSeconds: 30 } }),
      withTopology('replication'),
      withReplicas(0),
    );
    const applied = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor(
      'early-0 promoted at first start',
      async () => (await role(c.redis[0]!.port))[0] === 'master',
      90_000,
    );
    expect(await eventsOf('early', 'PrimaryRestarted')).toEqual([]);

    await c.sim.restartRedisContainer('early-0', c.redis[0]!);
    expect((await role(c.redis[0]!.port)).slice(0, 3)).toEqual(['slave', '127.0.0.1', 1]);
    await waitFor('early-0 a master again', async () => (await role(c.redis[0]!.port))[0] === 'master', 20_000, 100);
    await waitFor('a PrimaryRestarted event', async () => (await eventsOf('early', 'PrimaryRestarted')).length >= 1);
    expect((await eventsOf('early', 'PrimaryRestarted'))[0]!.message).toMatch(
      /early-0 is the primary again with the data it restarted with: early-0 restarted before it was seen up/,
    );
    // Ready at last: the cluster settles with early-0 as its primary.
    c.marked.add('early-0');
    await waitFor(
      'PrimaryAvailable True',
      async () =>
        ((await getCc('early')).status?.conditions ?? []).some(
          (x: { type: string; status: string }) => x.type === 'PrimaryAvailable' && x.status === 'True',
        ),
      60_000,
    );
    expect((await getCc('early')).status.primary ?? 'early-0').toBe('early-0');
  });
});
