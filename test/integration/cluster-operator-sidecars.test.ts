/**
 * Sidecars on a Redis Cluster that the operator runs (topology `cluster`, simulated pods as in
 * cluster-operator.test.ts: a real control plane, a real operator process, redis-servers in cluster mode), over
 * a real PostgreSQL origin in write-back:
 * - resharding 3 → 4 → 3 while two sidecars write and read: 0 acknowledged writes lost (every key reaches the
 *   database with its last acknowledged value), 0 reads older than the last acknowledged write once the
 *   invalidation window has passed, every key readable afterwards;
 * - a shard primary SIGKILLed under the same load with `--durability replicated`: Redis Cluster promotes its
 *   replica, the sidecars go on, 0 acknowledged writes lost.
 * The sidecars' seed is the redis-server of pod cc-shard-0-0 (standing in for the client Service, which selects
 * every node); they discover the rest from CLUSTER SLOTS. Keys are partitioned among the load workers, so each
 * key's writes are sequential and "its last acknowledged value" is well defined.
 */
import pg from 'pg';
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
import { freeClusterPort, waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

const NS = 'default';
const NAME = 'cc';
/** How long after an acknowledged write a read on the other sidecar may still answer the older value. */
const INVALIDATION_WINDOW_MS = 200;
let cp: ControlPlane;
let pgServer: PostgresServer;
let admin: pg.Pool;
const cleanups: Array<() => Promise<unknown>> = [];
const operators: OperatorProcess[] = [];
const nodes = new Map<string, RedisProcess>();
const overrides: Record<string, string> = {};
const podName = (shard: number, ordinal: number) => `${NAME}-shard-${shard}-${ordinal}`;

async function getCc(): Promise<any> {
  const r = await cp.kubectl(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

async function applyCc(shards: number): Promise<void> {
  const cc = cacheCluster(
    NAME,
    inNamespace(NS),
    withSpec({ shards, eviction: { policy: 'volatile-lru', maxMemory: '64Mi' } }),
    withTopology('cluster'),
    withReplicas(1),
  );
  const r = await cp.kubectl(['apply', '-f', '-'], cacheClusterYaml(cc));
  expect(r.code, r.stderr).toBe(0);
}

/** Slot moves share the machine with two sidecars, PostgreSQL and the control plane: up to 10 minutes. */
async function waitSettled(shards: number, what: string): Promise<any> {
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
    600_000,
    500,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last status: ${JSON.stringify(last?.status)}\n${operatorLogs()}`);
  });
  return last;
}

/** The last lines of every operator's log, for a failure message. */
function operatorLogs(lines = 60): string {
  return operators.map((op) => `--- ${op.identity}:\n${op.log().split('\n').slice(-lines).join('\n')}`).join('\n');
}

async function dbValues(table: string): Promise<Map<string, string | null>> {
  const r = await admin.query<{ key: string; value: Buffer | null }>(`SELECT key, value FROM ${table}`);
  return new Map(r.rows.map((x) => [x.key, x.value?.toString() ?? null]));
}

interface LoadResult {
  last: Map<string, string>;
  acknowledged: number;
  refused: Map<string, number>;
  /** The first refusals' answers (for a failure message). */
  refusalSamples: string[];
  /** Per key, the values of writes refused since its last acknowledged one (not acknowledged: may have landed). */
  unacknowledged: Map<string, string[]>;
  staleReads: number;
  reads: number;
}

/**
 * `workers` loops, worker w owning keys k ≡ w (mod workers); each write on the sidecars in turn, then (after
 * the invalidation window) a read of the key on the other sidecar. Bounded by `total` writes and `stop()`.
 */
function startLoad(sidecars: SidecarProcess[], keys: number, workers: number, total: number, tag: string) {
  const res: LoadResult = {
    last: new Map(),
    acknowledged: 0,
    refused: new Map(),
    refusalSamples: [],
    unacknowledged: new Map(),
    staleReads: 0,
    reads: 0,
  };
  let sent = 0;
  let running = true;
  const worker = async (w: number) => {
    const own = Array.from({ length: Math.ceil(keys / workers) }, (_, j) => w + j * workers).filter((k) => k < keys);
    for (let j = 0; running && sent < total; j++) {
      sent++;
      const key = `key-${own[j % own.length]}`;
      const value = `${tag}-${w}-${j}`;
      const s = sidecars[j % sidecars.length]!;
      const r = await s.put(key, value).catch(() => ({ status: 0, code: 'network' }));
      if (r.status === 204) {
        res.last.set(key, value);
        res.unacknowledged.delete(key);
        res.acknowledged++;
      } else {
        const code = (r as { code?: string }).code ?? String(r.status);
        res.refused.set(code, (res.refused.get(code) ?? 0) + 1);
        if (res.refusalSamples.length < 10)
          res.refusalSamples.push(
            `${new Date().toISOString()} ${key} ${r.status} ${(r as { body?: string }).body ?? ''}`,
          );
        res.unacknowledged.set(key, [...(res.unacknowledged.get(key) ?? []), value]);
      }
      if (res.last.has(key)) {
        await new Promise((resolve) => setTimeout(resolve, INVALIDATION_WINDOW_MS));
        const g = await sidecars[(j + 1) % sidecars.length]!.get(key).catch(() => undefined);
        if (g?.status === 200) {
          res.reads++;
          if (g.body !== res.last.get(key)) res.staleReads++;
        }
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    res,
    stop: async () => {
      running = false;
      await done;
      return res;
    },
  };
}

beforeAll(async () => {
  [cp, pgServer] = await Promise.all([startControlPlane(), startPostgres()]);
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => undefined);
  await cp.applyCrds();
  for (let s = 0; s < 4; s++)
    for (let o = 0; o < 2; o++) {
      const port = await freeClusterPort();
      const r = await startRedis({
        port,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          // The operator renders 5000: 2000 made a loaded CI machine fail over healthy primaries now and then
          // (cluster-operator.test.ts), which a zero-refusal resharding check cannot afford.
          '5000',
          '--cluster-require-full-coverage',
          'no',
          '--cluster-allow-replica-migration',
          'no',
        ],
      });
      nodes.set(podName(s, o), r);
      overrides[`${NS}/${podName(s, o)}`] = `127.0.0.1:${port}`;
    }
  const probes = Object.fromEntries([...nodes].map(([pod, r]) => [pod, { host: '127.0.0.1', port: r.port }]));
  const sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(nodes.keys()), probes);
  sim.start(300);
  cleanups.push(async () => sim.stop());
  // Two operators, as the chart runs two replicas, with the default 15 s Lease: an operator that misses its
  // renew deadline exits by design (so that only one leader writes), and with one operator and a 4 s Lease,
  // which a loaded machine missed, nothing reconciled after that — the resharding never moved a slot and the
  // promoted replica never reached status (the failures this file had in CI).
  for (const identity of ['cluster-sidecars-a', 'cluster-sidecars-b'])
    operators.push(await startOperator({ kubeconfigPath: cp.kubeconfigPath, identity, podAddresses: overrides }));
  await applyCc(3);
  await waitSettled(3, 'cc: 3 shards formed');
}, 600_000);

afterEach(async () => {
  await stopAllSidecars();
});

afterAll(async () => {
  await stopAllSidecars();
  for (const op of operators) await op.stop('SIGKILL').catch(() => undefined);
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const r of nodes.values()) await r.stop().catch(() => undefined);
  await admin?.end();
  await pgServer?.stop();
  await cp?.stop();
});

function sidecarArgs(table: string, channel: string, extra: string[] = []): string[] {
  return [
    '--redis',
    `redis://127.0.0.1:${nodes.get(podName(0, 0))!.port}`,
    '--redis-cluster',
    '--channel',
    channel,
    '--redis-timeout-ms',
    '2000',
    '--origin',
    pgServer.url,
    '--origin-table',
    table,
    '--write-policy',
    'write-back',
    '--write-back-flush-interval-ms',
    '200',
    ...extra,
  ];
}

describe('sidecars on an operator-run Redis Cluster', () => {
  it('reshards 3 → 4 → 3 under two write-back sidecars: nothing lost, no stale read, every key readable', async () => {
    const table = 'wb_op_reshard';
    const args = sidecarArgs(table, 'ripplecache:it-op-reshard');
    const [A, B] = await Promise.all([startSidecar({ name: 'rs-A', args }), startSidecar({ name: 'rs-B', args })]);
    if (!A || !B) throw new Error('no sidecars');
    const load = startLoad([A, B], 300, 12, 200_000, 'r');
    await waitFor('some writes acknowledged', async () => load.res.acknowledged > 200, 60_000, 200);
    await applyCc(4);
    await waitSettled(4, 'cc: 4 shards');
    const atFour = load.res.acknowledged;
    await applyCc(3);
    await waitSettled(3, 'cc: back to 3 shards');
    await waitFor('more writes after the scale-in', async () => load.res.acknowledged > atFour + 200, 60_000, 200);
    const res = await load.stop();
    expect(Object.fromEntries(res.refused), res.refusalSamples.join('\n')).toEqual({});
    expect(res.staleReads).toBe(0);
    expect(res.reads).toBeGreaterThan(0);
    expect(res.last.size).toBe(300);
    await waitFor(
      'every key at its last acknowledged value in PostgreSQL',
      async () => {
        const db = await dbValues(table);
        return [...res.last].every(([k, v]) => db.get(k) === v);
      },
      120_000,
      250,
    );
    for (const [k, v] of res.last) expect((await B.get(k)).body).toBe(v);
  }, 1_800_000);

  // Skipped until 2026-12-02 (issue 15): its earlier failures ("promotion not in status within 120 s") were the
  // single operator of this file exiting on a missed 4 s Lease under load (fixed above: two operators, 15 s).
  // With that fixed it was run twice: promotion seen both times; once one key was never acknowledged (now
  // waited for), once 108 keys were "behind" in PostgreSQL with a value NEWER than their last acknowledged
  // one (e.g. db k-2-50, acked k-2-25): writes refused with ReplicationTimeout (not acknowledged, may or may
  // not land) that landed. The check below wanted exactly the last acknowledged value; it now also accepts a
  // value of a write refused after it. Run twice more on 2026-12-02 (load 10–15, resharding fix in): passed
  // once; once 2 of the 300 keys were never acknowledged within 120 s of the promotion (674 writes refused with
  // ReplicationTimeout): the killed pod never came back, so the promoted primary had no replica to WAIT for
  // and a key of that shard not acknowledged before the kill never could be. The pod now comes back empty and
  // rejoins as the shard's replica; so changed, it passed twice alone (load 10–13). Un-skipped.
  it('a shard primary SIGKILLed under write-back load (durability replicated): promoted, 0 acknowledged writes lost', async () => {
    const table = 'wb_op_kill';
    const args = sidecarArgs(table, 'ripplecache:it-op-kill', [
      '--durability',
      'replicated',
      '--write-back-claim-timeout-ms',
      '3000',
    ]);
    const [A, B] = await Promise.all([startSidecar({ name: 'k-A', args }), startSidecar({ name: 'k-B', args })]);
    if (!A || !B) throw new Error('no sidecars');
    const cc = await getCc();
    const victim: string = cc.status.shards[1].primary;
    const survivor: string = cc.status.shards[1].replicas[0];
    const load = startLoad([A, B], 300, 12, 200_000, 'k');
    await waitFor('some writes acknowledged', async () => load.res.acknowledged > 300, 60_000, 200);
    await nodes.get(victim)!.kill();
    await waitFor(
      `status: shard 1's primary is ${survivor}`,
      async () => (await getCc())?.status?.shards?.[1]?.primary === survivor,
      120_000,
      500,
    );
    // The killed pod back empty (a fresh nodes.conf: a new node id): the operator makes it the shard's replica
    // again. Until then the promoted primary has no replica, so `durability: replicated` refuses every write
    // of the shard (ReplicationTimeout, as documented), and a key of it never acknowledged before the kill
    // could not be acknowledged at all.
    await nodes.get(victim)!.start(['--cluster-config-file', `nodes-${Date.now()}.conf`]);
    const atPromotion = load.res.acknowledged;
    // Every key acknowledged at least once (a key whose only writes fell in the failover window was never
    // acknowledged: nothing to lose, but nothing checked either), and 300 writes after the promotion.
    await waitFor(
      'writes acknowledged after the promotion, every key at least once',
      async () => load.res.acknowledged > atPromotion + 300 && load.res.last.size === 300,
      120_000,
      200,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}: ${load.res.last.size} keys acknowledged; refused ${JSON.stringify(Object.fromEntries(load.res.refused))}\n${operatorLogs()}`,
      );
    });
    const res = await load.stop();
    expect(res.last.size).toBe(300);
    let behind: string[] = [];
    await waitFor(
      'every key at its last acknowledged value in PostgreSQL',
      async () => {
        const db = await dbValues(table);
        // The last acknowledged value, or a later write that was refused (ReplicationTimeout: made on the
        // primary, not confirmed on a replica) and landed all the same; anything else lost an acknowledged write.
        behind = [...res.last]
          .filter(([k, v]) => db.get(k) !== v && !(res.unacknowledged.get(k) ?? []).includes(db.get(k) ?? ''))
          .map(([k, v]) => `${k}: db ${db.get(k)} acked ${v}`);
        return behind.length === 0;
      },
      120_000,
      250,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}: ${behind.length} keys behind, e.g. ${behind.slice(0, 5).join('; ')}; ` +
          `refused ${JSON.stringify(Object.fromEntries(res.refused))}\n${A.output().slice(-1500)}\n${B.output().slice(-1500)}`,
      );
    });
    // Refusals while the shard had no primary are allowed (never acknowledged, so nothing to lose); report them.
    process.stderr.write(`refused during the failover: ${JSON.stringify(Object.fromEntries(res.refused))}\n`);
  }, 900_000);
});
