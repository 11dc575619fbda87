/**
 * Topology `cluster` against a real control plane, a real operator process and real redis-servers in cluster
 * mode (simulated pods: the pod simulator plays the kubelet and the readiness probe; each pod's redis-server
 * is reached through `--pod-address-override`, which the operator also sets as the node's announce address).
 * The tests run in order on one CacheCluster `cc`:
 *
 * - 3 shards × 1 replica bootstrapped by the operator: CLUSTER INFO ok on every node, status shows every shard
 *   with its primary and replica and all 16,384 slots assigned; a live eviction change reaches every node; the
 *   flush job's script empties every primary's cache records.
 * - Resharding 3 → 4 → 3 while an ioredis Cluster client writes and reads: the operator paused after a slot
 *   move's keys moved, SIGKILLed, and the next leader finishes; 0 client errors, 0 keys lost or stale; the
 *   drained shard's StatefulSet is deleted and its nodes forgotten.
 * - A shard primary SIGKILLed: Redis Cluster promotes its replica, status reports it; the pod coming back empty
 *   (new node id) rejoins as the replica, its old id forgotten everywhere.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_PORT } from '../../operator/src/api/v1alpha1/constants.js';
import { clusterFlushScript } from '../../operator/src/desired/flush-cron-job.js';
import { serviceHost } from '../../operator/src/desired/names.js';
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

const NS = 'default';
const NAME = 'cc';
/** Shards 0-2 from the start, shard 3 for the scale-out; 2 pods each. */
const SHARDS = 4;
let cp: ControlPlane;
const cleanups: Array<() => Promise<unknown>> = [];
const operators: OperatorProcess[] = [];
/** Pod name → its redis-server. */
const nodes = new Map<string, RedisProcess>();
const overrides: Record<string, string> = {};
const clientsToClose: Array<Redis | Cluster> = [];

const podName = (shard: number, ordinal: number) => `${NAME}-shard-${shard}-${ordinal}`;

/** The arguments of a Redis Cluster node (the rendered redis.conf's, with a shorter node timeout for the test). */
const clusterArgs = (configFile = 'nodes.conf') => [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  configFile,
  '--cluster-node-timeout',
  // The operator renders 5000: 2000 made a loaded CI machine fail over healthy primaries now and then.
  '5000',
  '--cluster-require-full-coverage',
  'no',
  '--cluster-allow-replica-migration',
  'no',
];

async function operator(identity: string, env?: NodeJS.ProcessEnv): Promise<OperatorProcess> {
  const op = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity,
    podAddresses: overrides,
    // The default 15 s Lease: with 4 s a loaded machine missed the renew deadline and the operator exited by
    // design with no other operator running, so nothing reconciled (a run failed all three cases that way).
    ...(env ? { env } : {}),
  });
  operators.push(op);
  return op;
}

async function getCc(): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

function redisOf(pod: string): Redis {
  const r = new Redis({ port: nodes.get(pod)!.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  clientsToClose.push(r);
  return r;
}

async function info(pod: string, section: string): Promise<string> {
  const r = redisOf(pod);
  try {
    return String(await r.call('CLUSTER', section));
  } finally {
    r.disconnect();
  }
}

async function applyCc(shards: number, eviction = { policy: 'allkeys-lru' as const, maxMemory: '64Mi' }) {
  const cc = cacheCluster(
    NAME,
    inNamespace(NS),
    withSpec({ shards, eviction, flush: { schedule: '0 3 * * *' } }),
    withTopology('cluster'),
    withReplicas(1),
  );
  const r = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
  expect(r.code, r.stderr).toBe(0);
}

/** Status shows `shards` shards, each ok with a primary and a replica, every slot assigned, no resharding. */
async function waitSettled(shards: number, what: string, timeoutMs = 240_000): Promise<any> {
  let last: any;
  await waitFor(
    what,
    async () => {
      last = await getCc();
      const s = last?.status;
      return (
        s?.clusterState === 'ok' &&
        s.slotsAssigned === 16384 &&
        s.resharding === undefined &&
        s.shards?.length === shards &&
        s.shards.every((x: any) => x.state === 'ok' && x.primary && x.replicas.length === 1)
      );
    },
    timeoutMs,
    500,
  ).catch((err: unknown) => {
    const logs = operators.map((op) => `--- ${op.identity}:\n${op.log().split('\n').slice(-40).join('\n')}`).join('\n');
    throw new Error(`${String(err)}; last status: ${JSON.stringify(last?.status)}\n${logs}`);
  });
  return last;
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  for (let s = 0; s < SHARDS; s++)
    for (let o = 0; o < 2; o++) {
      const port = await freeClusterPort();
      const r = await startRedis({ port, args: clusterArgs() });
      nodes.set(podName(s, o), r);
      overrides[`${NS}/${podName(s, o)}`] = `127.0.0.1:${port}`;
    }
  const probes = Object.fromEntries([...nodes].map(([pod, r]) => [pod, { host: '127.0.0.1', port: r.port }]));
  const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(nodes.keys()), probes);
  sim.start(300);
  cleanups.push(async () => sim.stop());
}, 180_000);

/** What a case started that must stop with it, pass or fail (a writer loop). */
const stopAfterEach: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const stop of stopAfterEach.splice(0)) await stop().catch(() => undefined);
  for (const op of operators.splice(0)) await op.stop('SIGKILL').catch(() => undefined);
});

afterAll(async () => {
  for (const c of clientsToClose) c.disconnect();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const r of nodes.values()) await r.stop().catch(() => undefined);
  await cp?.stop();
});

describe('topology cluster', () => {
  it('bootstraps 3 shards × 1 replica; live eviction on every node; the flush walks every primary', async () => {
    await operator('cluster-a');
    await applyCc(3);
    const cc = await waitSettled(3, 'cc: 3 shards formed');
    expect(cc.status.shards.map((s: any) => s.slotCount)).toEqual([5462, 5461, 5461]);
    expect(cc.status.shards.map((s: any) => s.slots)).toEqual(['0-5461', '5462-10922', '10923-16383']);
    const members = [0, 1, 2].flatMap((s) => [podName(s, 0), podName(s, 1)]);
    for (const s of cc.status.shards) {
      expect([s.primary, ...s.replicas].sort()).toEqual([podName(s.index, 0), podName(s.index, 1)]);
    }
    await waitFor('CLUSTER INFO cluster_state:ok on every node', async () => {
      const states = await Promise.all(members.map((p) => info(p, 'INFO')));
      return states.every((t) => t.includes('cluster_state:ok') && t.includes('cluster_slots_assigned:16384'));
    });
    for (const p of members) expect(await info(p, 'INFO')).toContain('cluster_known_nodes:6');
    // Each node announces the address the operator reaches it at.
    const table = await info(members[0]!, 'NODES');
    for (const p of members) expect(table).toContain(`127.0.0.1:${nodes.get(p)!.port}@`);
    expect(cc.status.phase).toBe('Ready');
    expect(cc.status.conditions.find((c: any) => c.type === 'Unsupported').status).toBe('False');

    // Live eviction settings on every node, replicas too.
    await applyCc(3, { policy: 'allkeys-lfu' as never, maxMemory: '32Mi' });
    await waitFor('maxmemory 32Mi allkeys-lfu on all 6 nodes', async () => {
      const got = await Promise.all(
        members.map(async (p) => {
          const r = redisOf(p);
          try {
            return [(await r.config('GET', 'maxmemory'))[1], (await r.config('GET', 'maxmemory-policy'))[1]];
          } finally {
            r.disconnect();
          }
        }),
      );
      return got.every(([mm, pol]) => mm === String(32 * 2 ** 20) && pol === 'allkeys-lfu');
    });
    await waitFor('status.appliedConfig on 6/6 pods', async () => {
      const s = (await getCc())?.status;
      return s?.appliedConfig?.maxmemory === 32 * 2 ** 20 && s.appliedConfig.pods?.length === 6;
    });

    // The flush job's script: every primary's cache records with a TTL go; a record without TTL stays.
    const client = new Cluster([{ host: '127.0.0.1', port: nodes.get(podName(0, 0))!.port }]);
    clientsToClose.push(client);
    for (let i = 0; i < 300; i++) await client.set(`rc:flush-${i}`, 'v', 'EX', 600);
    await client.set('rc:no-ttl', 'kept');
    const perPrimary = async () =>
      Promise.all(
        cc.status.shards.map(async (s: any) => {
          const r = redisOf(s.primary);
          try {
            return Number(await r.dbsize());
          } finally {
            r.disconnect();
          }
        }),
      );
    expect((await perPrimary()).every((n: number) => n > 50)).toBe(true);
    const seed = nodes.get(podName(1, 0))!.port;
    const script = clusterFlushScript(cc).replaceAll(`'${serviceHost(cc)}' -p ${REDIS_PORT}`, `127.0.0.1 -p ${seed}`);
    const { stdout } = await promisify(execFile)('sh', ['-c', script]);
    expect(stdout).toContain('300 cache records deleted on 3 primaries');
    expect((await perPrimary()).reduce((a: number, b: number) => a + b, 0)).toBe(1);
    expect(await client.get('rc:no-ttl')).toBe('kept');
  }, 600_000);

  it('reshards 3 → 4 → 3 under a writing client, resuming a move after the operator is SIGKILLed', async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: nodes.get(podName(0, 0))!.port }], {
      redisOptions: { maxRetriesPerRequest: 2 },
    });
    clientsToClose.push(client);
    // The writer: 500 keys over every slot range, each SET then GET, bounded in count and time; any error
    // is counted. Paced (5 ms every 10 rounds: about 1,000 rounds a second on loopback) so that the count
    // cannot run out before the test stops it: it must still be writing during the move back to 3 shards
    // (at 200,000 unpaced rounds it once ran out on a quiet machine before 4 shards had settled).
    const acked = new Map<string, number>();
    const errors: string[] = [];
    let stale = 0;
    let running = true;
    let ops = 0;
    const writerDeadline = Date.now() + 900_000;
    const writer = (async () => {
      for (let round = 0; running && round < 2_000_000 && Date.now() < writerDeadline; round++) {
        const key = `k:${round % 500}`;
        try {
          await client.set(key, String(round));
          acked.set(key, round);
          const got = await client.get(key);
          if (got !== String(round)) stale++;
          ops++;
        } catch (err) {
          errors.push(err instanceof Error ? err.message : String(err));
          if (errors.length > 50) return;
        }
        if (round % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    stopAfterEach.push(async () => {
      running = false;
      await writer;
    });

    // Out to 4, with an operator that stops right after the first slot's keys moved (SETSLOT NODE not sent).
    const paused = await operator('cluster-b', { RIPPLECACHE_TEST_PAUSE_AFTER_SLOT_STEP: 'keysMoved' });
    await applyCc(4);
    await waitFor(
      'the operator paused in the middle of a slot move',
      async () => paused.log().includes('Paused after a slot move step'),
      240_000,
      500,
    );
    const mid = await getCc();
    expect(mid.status.resharding).toMatchObject({ toShards: 4 });
    expect(mid.status.resharding.current).toMatch(/^slot \d+ from shard \d to shard 3$/);
    const slot = Number(/^slot (\d+)/.exec(mid.status.resharding.current)![1]);
    // Every node of the old shards: Redis Cluster may have moved a shard's primary to its other pod.
    const migrating = await Promise.all(
      [0, 1, 2].flatMap((s) => [0, 1].map((o) => info(podName(s, o), 'NODES').catch(() => ''))),
    );
    expect(migrating.some((t) => t.includes(`[${slot}->-`))).toBe(true);
    await paused.stop('SIGKILL');

    await operator('cluster-c');
    let cc = await waitSettled(4, 'cc: 4 shards after the next leader resumed the move');
    expect(cc.status.shards.map((s: any) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
    const after = await Promise.all([0, 1, 2, 3].map((s) => info(podName(s, 0), 'NODES')));
    expect(after.every((t) => !/\[\d+-[<>]-/.test(t))).toBe(true);
    const opsAtFour = ops;

    // Back in to 3: shard 3 drained, forgotten, its StatefulSet deleted.
    const removed = [await info(podName(3, 0), 'MYID'), await info(podName(3, 1), 'MYID')];
    // The keys shard 3 holds now are the ones the scale-in moves (the writer only overwrites its 500 keys).
    const shard3Keys = Math.max(
      ...(await Promise.all(
        [0, 1].map(async (o) => {
          const r = redisOf(podName(3, o));
          try {
            const role = (await r.call('ROLE')) as [string, ...unknown[]];
            return role[0] === 'master' ? await r.dbsize() : 0;
          } finally {
            r.disconnect();
          }
        }),
      )),
    );
    expect(shard3Keys).toBeGreaterThan(0);
    await applyCc(3);
    cc = await waitSettled(3, 'cc: back to 3 shards');
    expect(cc.status.shards.map((s: any) => s.slotCount)).toEqual([5462, 5461, 5461]);
    await waitFor('StatefulSet cc-shard-3 deleted', async () => {
      const r = await cp.kubectl(['get', 'statefulset', `${NAME}-shard-3`, '-n', NS]);
      return r.code !== 0 && r.stderr.includes('NotFound');
    });
    await waitFor('the drained nodes forgotten by every remaining node', async () => {
      const tables = await Promise.all(
        [0, 1, 2].flatMap((s) => [info(podName(s, 0), 'NODES'), info(podName(s, 1), 'NODES')]),
      );
      return tables.every((t) => removed.every((id) => !t.includes(id)));
    });

    running = false;
    await writer;
    expect(errors).toEqual([]);
    expect(stale).toBe(0);
    expect(ops).toBeGreaterThan(opsAtFour);
    expect(acked.size).toBe(500);
    for (const [key, round] of acked) expect(await client.get(key)).toBe(String(round));
    const events = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.name=${NAME}`,
      '-o',
      'json',
    ]);
    const reasons = (JSON.parse(events.stdout).items as Array<{ reason: string }>).map((e) => e.reason);
    expect(reasons).toContain('ReshardingStarted');
    expect(reasons).toContain('ReshardingCompleted');
    // Scale-in announced too (its first reconcile moves slots at once), and its count of keys moved whole:
    // the reconciles that follow a batch 50 ms later used to start from the cached status of before it.
    const messages = (JSON.parse(events.stdout).items as Array<{ reason: string; message: string }>).map(
      (e) => `${e.reason}: ${e.message}`,
    );
    expect(messages).toContainEqual(expect.stringMatching(/^ReshardingStarted: moving \d+ slots to reach 3 shards$/));
    expect(messages).toContain(`ReshardingCompleted: 3 shards: 4096 slots moved, ${shard3Keys} keys`);
  }, 900_000);

  it('a shard primary SIGKILLed: its replica is promoted, the pod back empty rejoins as replica, old id forgotten', async () => {
    await operator('cluster-d');
    let cc = await waitSettled(3, 'cc: settled before the kill');
    const shard = cc.status.shards[1];
    const victim: string = shard.primary;
    const survivor: string = shard.replicas[0];
    const oldId = await info(victim, 'MYID');
    await nodes.get(victim)!.kill();
    await waitFor(
      `status: shard 1's primary is ${survivor}`,
      async () => (await getCc())?.status?.shards?.[1]?.primary === survivor,
      120_000,
      500,
    );
    // Back empty: a new node id (a fresh nodes.conf), no data.
    await nodes.get(victim)!.start(clusterArgs(`nodes-${Date.now()}.conf`));
    const newId = await info(victim, 'MYID');
    expect(newId).not.toBe(oldId);
    cc = await waitSettled(3, `cc: ${victim} rejoined as replica`);
    expect(cc.status.shards[1]).toMatchObject({ primary: survivor, replicas: [victim], state: 'ok' });
    await waitFor(`old id of ${victim} forgotten everywhere`, async () => {
      const tables = await Promise.all(
        [0, 1, 2].flatMap((s) => [info(podName(s, 0), 'NODES'), info(podName(s, 1), 'NODES')]),
      );
      return tables.every((t) => !t.includes(oldId));
    });
    const events = await cp.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.name=${NAME},reason=ShardFailedOver`,
      '-o',
      'json',
    ]);
    expect((JSON.parse(events.stdout).items as Array<{ message: string }>).map((e) => e.message)).toContain(
      `shard 1: primary ${victim} -> ${survivor}`,
    );
  }, 600_000);
});
