/**
 * Role labels of topology `cluster` (issue 15): the operator labels each shard pod `cache.ripplecache.io/role:
 * primary|replica` from what Redis Cluster reports. A real control plane, a real operator process and 6 real
 * redis-servers in cluster mode (3 shards × 1 replica) on simulated pods (the pod simulator plays the kubelet;
 * each pod's redis-server is reached through `--pod-address-override`), as in cluster-operator.test.ts.
 *
 * - After bootstrap: `kubectl get pods -l cache.ripplecache.io/role=primary` lists exactly the shards' primaries
 *   (status.shards[].primary, each reporting ROLE master), the other pods are labelled replica (ROLE slave).
 * - A replica whose link to its primary is down (a wrong masterauth): status.shards[].unsyncedReplicas names it
 *   and the shard is degraded, until it has synced again; `ok` shards' replicas report master_link_status:up.
 * - A shard primary SIGKILLed: its label goes (not reachable: role not known), Redis Cluster promotes its replica,
 *   which gets the primary label; the killed node restarted with its nodes.conf rejoins as a replica and is
 *   labelled so. Sampled throughout: never two pods of one shard labelled primary.
 */
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL_ROLE, LABEL_SHARD } from '../../operator/src/api/v1alpha1/constants.js';
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
import { freeClusterPort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { progressLog } from '../harness/tools.js';

const NS = 'default';
const NAME = 'rl';
const SHARDS = 3;
let cp: ControlPlane;
let core: k8s.CoreV1Api;
let op: OperatorProcess | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
/** Pod name → its redis-server. */
const nodes = new Map<string, RedisProcess>();
const overrides: Record<string, string> = {};

const podName = (shard: number, ordinal: number) => `${NAME}-shard-${shard}-${ordinal}`;
const log = progressLog('cluster-role-labels');

/** The rendered redis.conf's cluster settings (as in cluster-operator.test.ts). */
const clusterArgs = [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  'nodes.conf',
  '--cluster-node-timeout',
  '5000',
  '--cluster-require-full-coverage',
  'no',
  '--cluster-allow-replica-migration',
  'no',
];

async function getCc(): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

/** Pod name → its role label (undefined: none), for every pod of the CacheCluster. */
async function roleLabels(): Promise<Record<string, string | undefined>> {
  const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `cache.ripplecache.io/cluster=${NAME}` });
  return Object.fromEntries(list.items.map((p) => [p.metadata!.name!, p.metadata?.labels?.[LABEL_ROLE]]));
}

/** Runs `fn` on a short-lived connection to a pod's redis-server. */
async function onPod<T>(pod: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ port: nodes.get(pod)!.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** `ROLE`'s first field on a pod's redis-server: master or slave. */
const redisRole = (pod: string): Promise<string> =>
  onPod(pod, async (r) => String(((await r.call('ROLE')) as unknown[])[0]));

/** `INFO replication` of a pod's redis-server (or why it could not be read). */
const replicationInfo = (pod: string): Promise<string> =>
  onPod(pod, (r) => r.info('replication')).catch((err: unknown) => String(err));

/** `CLUSTER NODES` as a pod's redis-server sees it (or why it could not be read). */
const clusterNodes = (pod: string): Promise<string> =>
  onPod(pod, async (r) => String(await r.call('CLUSTER', 'NODES'))).catch((err: unknown) => String(err));

/** Status settled with 3 shards, each ok with a primary and one replica. */
async function waitSettled(what: string): Promise<any> {
  let last: any;
  await waitFor(
    what,
    async () => {
      last = await getCc();
      const s = last?.status;
      return (
        s?.clusterState === 'ok' &&
        s.slotsAssigned === 16384 &&
        s.shards?.length === SHARDS &&
        s.shards.every((x: any) => x.state === 'ok' && x.primary && x.replicas.length === 1)
      );
    },
    240_000,
    500,
  ).catch((err: unknown) => {
    throw new Error(
      `${String(err)}; last status: ${JSON.stringify(last?.status)}\n${op?.log().split('\n').slice(-40).join('\n')}`,
    );
  });
  return last;
}

/** Labels as status.shards says: its primary `primary`, its replicas `replica`, nothing else labelled. */
function labelsOfStatus(shards: any[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of shards) {
    out[s.primary] = 'primary';
    for (const r of s.replicas) out[r] = 'replica';
  }
  return out;
}

const defined = (labels: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== undefined));

/**
 * Lists the pods labelled primary every 50 ms until `stop()`, which answers the most pods of one shard seen
 * labelled primary at once and the number of samples (failed lists are not samples).
 */
function samplePrimariesPerShard(): { stop(): Promise<{ max: number; samples: number }> } {
  let max = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const list = await core
        .listNamespacedPod({
          namespace: NS,
          labelSelector: `cache.ripplecache.io/cluster=${NAME},${LABEL_ROLE}=primary`,
        })
        .catch(() => undefined);
      if (list) {
        samples++;
        const perShard = new Map<string, number>();
        for (const p of list.items) {
          const shard = p.metadata?.labels?.[LABEL_SHARD] ?? '?';
          perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
        }
        max = Math.max(max, ...perShard.values(), 0);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { max, samples };
    },
  };
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  for (let s = 0; s < SHARDS; s++)
    for (let o = 0; o < 2; o++) {
      const port = await freeClusterPort();
      const r = await startRedis({ port, args: clusterArgs });
      nodes.set(podName(s, o), r);
      overrides[`${NS}/${podName(s, o)}`] = `127.0.0.1:${port}`;
    }
  const probes = Object.fromEntries([...nodes].map(([pod, r]) => [pod, { host: '127.0.0.1', port: r.port }]));
  const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(nodes.keys()), probes);
  sim.start(300);
  cleanups.push(async () => sim.stop());
}, 180_000);

afterAll(async () => {
  await op?.stop('SIGKILL').catch(() => undefined);
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const r of nodes.values()) await r.stop().catch(() => undefined);
  await cp?.stop();
});

describe('topology cluster: role labels', () => {
  it('labels each shard primary and replica after bootstrap, and the labels follow a failover by Redis Cluster', async () => {
    op = await startOperator({ kubeconfigPath: cp.kubeconfigPath, identity: 'roles-a', podAddresses: overrides });
    const cc = cacheCluster(
      NAME,
      inNamespace(NS),
      withSpec({ shards: SHARDS, eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } }),
      withTopology('cluster'),
      withReplicas(1),
    );
    const applied = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
    expect(applied.code, applied.stderr).toBe(0);

    // ---- After bootstrap -------------------------------------------------------------------------------
    let status = (await waitSettled('rl: 3 shards formed')).status;
    await waitFor(
      'role labels as status.shards says',
      async () => {
        status = (await getCc()).status;
        return JSON.stringify(defined(await roleLabels())) === JSON.stringify(labelsOfStatus(status.shards));
      },
      60_000,
      250,
    );
    expect(defined(await roleLabels())).toEqual(labelsOfStatus(status.shards));
    // The user's query lists the primary of every shard, one each.
    const listed = await cp.kubectl(['get', 'pods', '-n', NS, '-l', `${LABEL_ROLE}=primary`, '-o', 'name']);
    expect(listed.code, listed.stderr).toBe(0);
    const primaries = status.shards.map((s: any) => s.primary as string);
    expect(listed.stdout.trim().split('\n').sort()).toEqual(primaries.map((p: string) => `pod/${p}`).sort());
    expect(new Set(primaries.map((p: string) => p.replace(/-\d+$/, ''))).size).toBe(SHARDS);
    // The labels say what Redis says.
    for (const [pod, role] of Object.entries(defined(await roleLabels())))
      expect(await redisRole(pod), pod).toBe(role === 'primary' ? 'master' : 'slave');

    // ---- A replica that is not synced ------------------------------------------------------------------
    // `ok` means synced: each replica's own INFO says its link is up, and none is listed unsynced.
    for (const sh of status.shards) {
      expect(sh.unsyncedReplicas, `shard ${sh.index}`).toBeUndefined();
      expect(await replicationInfo(sh.replicas[0])).toMatch(/master_link_status:up/);
    }
    // Shard 0's replica loses its link and cannot get it back: a wrong masterauth (its primary has no
    // password, so the AUTH it sends on reconnecting fails) and its link to the primary cut.
    const unsynced: string = status.shards[0].replicas[0];
    await onPod(unsynced, async (r) => {
      await r.call('CONFIG', 'SET', 'masterauth', 'not-the-password');
      await r.call('CLIENT', 'KILL', 'TYPE', 'master');
    });
    let shard0: any;
    await waitFor(
      `${unsynced} reported unsynced, shard 0 degraded`,
      async () => {
        shard0 = (await getCc()).status.shards[0];
        return shard0.state === 'degraded' && JSON.stringify(shard0.unsyncedReplicas) === JSON.stringify([unsynced]);
      },
      60_000,
      250,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; last shard 0: ${JSON.stringify(shard0)}`);
    });
    expect(await replicationInfo(unsynced)).toMatch(/master_link_status:down/);
    // Still a replica of its primary: listed, and labelled, as one.
    expect(shard0.replicas).toEqual([unsynced]);
    expect((await roleLabels())[unsynced]).toBe('replica');
    await onPod(unsynced, (r) => r.call('CONFIG', 'SET', 'masterauth', ''));
    status = (await waitSettled(`${unsynced} synced again`)).status;
    expect(status.shards[0].unsyncedReplicas).toBeUndefined();
    expect(await replicationInfo(unsynced)).toMatch(/master_link_status:up/);
    log(`${unsynced} reported unsynced while its link was down, then synced`);

    // ---- A shard primary SIGKILLed ---------------------------------------------------------------------
    const sampler = samplePrimariesPerShard();
    const victim: string = status.shards[1].primary;
    const survivor: string = status.shards[1].replicas[0];
    const otherShards = labelsOfStatus([status.shards[0], status.shards[2]]);
    // Redis Cluster promotes only a replica whose data is recent: one that never finished its first sync
    // refuses to fail over ("Disconnected from master for longer than allowed"), for good. Status lists a
    // replica as soon as it follows its primary, and in CI (2026-12-03) the kill came 0.9 s after CLUSTER
    // REPLICATE, before the sync: the shard stayed down for the whole 120 s wait.
    await waitFor(
      `${survivor} synced with ${victim}`,
      async () => /master_link_status:up/.test(await replicationInfo(survivor)),
      60_000,
      200,
    );
    await nodes.get(victim)!.kill();
    log(`SIGKILLed ${victim} (shard 1's primary)`);
    await waitFor(
      `${victim} unlabelled, ${survivor} labelled primary after Redis Cluster promoted it`,
      async () => {
        const labels = await roleLabels();
        return labels[victim] === undefined && labels[survivor] === 'primary';
      },
      120_000,
      250,
    ).catch(async (err: unknown) => {
      // Timed out once in CI (2026-12-03) and never alone: say whether Redis Cluster promoted the replica
      // (then the operator lagged) or not (then the machine starved Redis' failure detection).
      throw new Error(
        `${String(err)}\nlabels: ${JSON.stringify(await roleLabels())}\n` +
          `${survivor} ROLE: ${await redisRole(survivor).catch((e: unknown) => String(e))}\n` +
          `${survivor} CLUSTER NODES:\n${await clusterNodes(survivor)}\n` +
          `last status: ${JSON.stringify((await getCc())?.status)}\n` +
          `operator log:\n${op?.log().split('\n').slice(-40).join('\n')}`,
      );
    });
    log(`${victim} unlabelled, ${survivor} labelled primary`);
    expect(await redisRole(survivor)).toBe('master');
    expect((await getCc()).status.shards[1].primary).toBe(survivor);

    // Back with its nodes.conf: Redis Cluster makes the old primary a replica of the new one.
    await nodes.get(victim)!.start();
    await waitFor(`${victim} labelled replica`, async () => (await roleLabels())[victim] === 'replica', 120_000, 250);
    expect(await redisRole(victim)).toBe('slave');
    const final = await roleLabels();
    expect(defined(final)).toEqual({ ...otherShards, [survivor]: 'primary', [victim]: 'replica' });

    log(`${victim} labelled replica`);
    const seen = await sampler.stop();
    log(`primary labels sampled ${seen.samples} times: at most ${seen.max} per shard`);
    expect(seen.samples).toBeGreaterThan(20);
    expect(seen.max).toBe(1);
  }, 600_000);
});
