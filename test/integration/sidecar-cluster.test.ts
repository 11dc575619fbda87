/**
 * Sidecars on a real Redis Cluster (3 shards × 1 replica of redis-server in cluster mode, bootstrapped by
 * test/harness/redis-cluster.ts) over a real PostgreSQL:
 *   - the cache API, invalidation between sidecars and `consistency=all` on a cluster;
 *   - write-back: 10,000 acknowledged writes over 1,000 keys spread over every shard, one sidecar
 *     SIGKILLed: every key reaches the database with its last acknowledged value;
 *   - a shard primary SIGKILLed under write-back load with `--durability replicated`: its replica is
 *     promoted, the sidecars go on, no acknowledged write is lost;
 *   - slots moved (SETSLOT/MIGRATE by the harness) under load: no acknowledged write lost, no read older
 *     than the last acknowledged write;
 *   - first writes of new keys into buckets whose slots move slowly (a loaded operator): Redis Cluster
 *     answers their appends TRYAGAIN while the slot is half-moved, and the sidecar retries within its time
 *     box instead of answering 503;
 *   - write-back writes the database superseded (rows the application wrote with a larger version) on
 *     every shard: no sidecar keeps answering them; a clean stop removes the consumer from every bucket.
 * Keys are partitioned among the load workers so that each key's writes are sequential and "the last
 * acknowledged value" of a key is well defined.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketedLayout, keySlot } from '../../sidecar/src/write/key-layout.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis-cluster.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

const layout = bucketedLayout();
let cluster: RedisCluster;
let pgServer: PostgresServer;
let admin: pg.Pool;

beforeAll(async () => {
  [cluster, pgServer] = await Promise.all([
    startRedisCluster({ shards: 3, replicas: 1, nodeTimeoutMs: 2000 }),
    startPostgres(),
  ]);
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => {});
}, 180_000);

afterAll(async () => {
  await stopAllSidecars();
  await admin?.end();
  await Promise.all([cluster?.stop(), pgServer?.stop()]);
});

function sidecarArgs(channel: string, extra: string[] = []): string[] {
  return ['--redis', cluster.seedUrl, '--redis-cluster', '--channel', channel, '--redis-timeout-ms', '2000', ...extra];
}

function originArgs(table: string, extra: string[] = []): string[] {
  return ['--origin', pgServer.url, '--origin-table', table, '--write-policy', 'write-back', ...extra];
}

async function dbValues(table: string): Promise<Map<string, string | null>> {
  const r = await admin.query<{ key: string; value: Buffer | null }>(`SELECT key, value FROM ${table}`);
  return new Map(r.rows.map((x) => [x.key, x.value?.toString() ?? null]));
}

/** Resolves once every key holds its last acknowledged value in PostgreSQL. */
function converged(table: string, last: Map<string, string>, timeoutMs: number): Promise<void> {
  return waitFor(
    'every key at its last acknowledged value in PostgreSQL',
    async () => {
      const db = await dbValues(table);
      return [...last].every(([k, v]) => db.get(k) === v);
    },
    timeoutMs,
    250,
  );
}

/** Which shard (primary port) holds each key's bucket now. */
async function shardsOf(keys: readonly string[]): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const slot of new Set(keys.map((k) => layout.bucketOf(k).slot))) ports.add(await cluster.ownerOf(slot));
  return ports;
}

interface LoadResult {
  last: Map<string, string>;
  acknowledged: number;
  refused: Map<string, number>;
  /** Reads that answered a value older than the key's last acknowledged write before the read began. */
  staleReads: number;
  reads: number;
}

/**
 * `workers` loops; worker w owns the keys k ≡ w (mod workers) and writes them in turn, on the sidecars in
 * turn; with `readBack`, each write is followed by a read of the key on the other sidecar (after
 * `readAfterMs`, the invalidation window). Bounded by `total` writes and `untilMs`.
 */
async function writeLoad(opts: {
  sidecars: SidecarProcess[];
  keys: number;
  workers: number;
  total: number;
  untilMs: number;
  tag: string;
  last?: Map<string, string>;
  readBack?: boolean;
  readAfterMs?: number;
  stopWhen?: (sofar: LoadResult) => boolean;
}): Promise<LoadResult> {
  const last = opts.last ?? new Map<string, string>();
  const res: LoadResult = { last, acknowledged: 0, refused: new Map(), staleReads: 0, reads: 0 };
  let sent = 0;
  const worker = async (w: number) => {
    const own = Array.from({ length: Math.ceil(opts.keys / opts.workers) }, (_, j) => w + j * opts.workers).filter(
      (k) => k < opts.keys,
    );
    for (let j = 0; sent < opts.total && Date.now() < opts.untilMs && !(opts.stopWhen?.(res) ?? false); j++) {
      sent++;
      const key = `key-${own[j % own.length]}`;
      const value = `${opts.tag}-${w}-${j}`;
      const s = opts.sidecars[j % opts.sidecars.length] as SidecarProcess;
      const r = await s.put(key, value).catch(() => ({ status: 0, code: 'network' }));
      if (r.status === 204) {
        last.set(key, value);
        res.acknowledged++;
      } else {
        const code = r.code ?? String(r.status);
        res.refused.set(code, (res.refused.get(code) ?? 0) + 1);
      }
      if (opts.readBack && last.has(key)) {
        if (opts.readAfterMs) await new Promise((resolve) => setTimeout(resolve, opts.readAfterMs));
        const expected = last.get(key);
        const other = opts.sidecars[(j + 1) % opts.sidecars.length] as SidecarProcess;
        const g = await other.get(key).catch(() => undefined);
        if (g?.status === 200) {
          res.reads++;
          if (g.body !== expected) res.staleReads++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
  return res;
}

describe('sidecar on a Redis Cluster', () => {
  it('serves the cache API, invalidates across sidecars, reads every copy of a shard', async () => {
    const args = sidecarArgs('ripplecache:it-cluster-api');
    const [A, B] = await Promise.all([startSidecar({ name: 'api-A', args }), startSidecar({ name: 'api-B', args })]);
    if (!A || !B) throw new Error('no sidecars');
    const keys = Array.from({ length: 60 }, (_, i) => `api-${i}`);
    expect((await shardsOf(keys)).size).toBe(3);
    for (const k of keys) expect((await A.put(k, `one-${k}`)).status).toBe(204);
    // A's messages come from the primaries of three shards and may reach B in another order: they are
    // numbered per bucket (issue 15), so that is no gap, and B fills its L1 at once.
    for (const k of keys) expect((await B.get(k)).body).toBe(`one-${k}`);
    // B holds them in L1 now; A's overwrite must reach B's L1 through the invalidation channel.
    const tiers = await Promise.all(keys.map(async (k) => (await B.get(k)).tier));
    expect(
      tiers.filter((t) => t !== 'L1'),
      B.output(),
    ).toEqual([]);
    for (const k of keys) expect((await A.put(k, `two-${k}`)).status).toBe(204);
    await waitFor(
      'B to see every overwrite',
      async () => (await Promise.all(keys.map((k) => B.get(k)))).every((r, i) => r.body === `two-${keys[i]}`),
      10_000,
      100,
    );
    // The record sits under its bucket's hash tag, on the primary that owns the bucket's slot.
    const key = keys[0] as string;
    const owner = await cluster.ownerOf(layout.bucketOf(key).slot);
    expect(await cluster.client(owner).hget(layout.recordKey(key), 'v')).toBe(`two-${key}`);
    expect(keySlot(layout.recordKey(key))).toBe(layout.bucketOf(key).slot);
    // consistency=all: the primary and the replica of that shard (once the sidecar's cluster client has
    // learnt the replica: under load its first slot map may list only the primaries).
    let report: { nodes?: { node: string; role: string; status: string }[] } = {};
    await waitFor(
      'consistency=all to report the primary and the replica',
      async () => {
        report = (await (await fetch(`${A.url}/v1/cache/${key}?consistency=all`)).json()) as typeof report;
        return (report.nodes ?? []).length === 2;
      },
      20_000,
      200,
    );
    const nodes = report.nodes ?? [];
    expect(nodes.map((n) => n.role).sort()).toEqual(['primary', 'replica']);
    expect(nodes.find((n) => n.role === 'primary')?.node).toBe(`127.0.0.1:${owner}`);
    await waitFor(
      'the replica to hold the value',
      async () => {
        const r = (await (await fetch(`${A.url}/v1/cache/${key}?consistency=all`)).json()) as typeof report;
        return (r.nodes ?? []).every((n) => n.status === 'value');
      },
      10_000,
      100,
    );
    // DELETE of several keys across buckets (one DEL per bucket, then one message).
    const inv = await A.invalidate({ keys: keys.slice(0, 10), tier: 'all' });
    expect(inv.status).toBeLessThan(300);
    // B drops its L1 copies when A's message arrives (asynchronous, as for the overwrites above: failed
    // once in CI, 2026-12-03, reading at once under load).
    await waitFor(
      'B to see every delete',
      async () => (await Promise.all(keys.slice(0, 10).map((k) => B.get(k)))).every((r) => r.status === 404),
      10_000,
      100,
    );
    await Promise.all([A.stop(), B.stop()]);
  }, 120_000);

  it('invalidations of concurrent writes on every shard: no L1 drop for reordering, a real gap still drops', async () => {
    const table = 'cluster_order';
    const args = sidecarArgs('ripplecache:it-cluster-order', originArgs(table));
    const [A, B] = await Promise.all([startSidecar({ name: 'ord-A', args }), startSidecar({ name: 'ord-B', args })]);
    if (!A || !B) throw new Error('no sidecars');
    const keys = Array.from({ length: 240 }, (_, i) => `ord-${i}`);
    expect((await shardsOf(keys)).size).toBe(3);
    const gapDrops = async (s: SidecarProcess) =>
      s.metric('ripplecache_sidecar_l1_drops_total', { reason: 'sequence-gap' });
    // Eight writers on each sidecar, each over its own keys (all shards), while both read every key (L1
    // fills and hits): every write of A is announced to B and the other way round.
    const last = new Map<string, string>();
    const writer = async (s: SidecarProcess, w: number) => {
      const mine = keys.filter((_, i) => i % 16 === w);
      for (let round = 0; round < 4; round++) {
        for (const k of mine) {
          const value = `${s.name}-${round}-${k}`;
          expect((await s.put(k, value)).status).toBe(204);
          last.set(k, value);
          await (w % 2 === 0 ? A : B).get(k);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w < 8 ? A : B, w)));
    expect(last.size).toBe(keys.length);
    // Every sidecar reads every key's last write (nothing lost), and none took the reordering for a loss.
    for (const s of [A, B]) {
      await waitFor(
        `${s.name} reading every last write`,
        async () =>
          (await Promise.all(keys.map((k) => s.get(k)))).every((r, i) => r.body === last.get(keys[i] as string)),
        20_000,
        100,
      );
      expect(await gapDrops(s), s.output()).toBe(0);
      expect(await s.metric('ripplecache_sidecar_invalidation_gaps_total')).toBe(0);
    }
    const l1Hits = await Promise.all(keys.slice(0, 20).map(async (k) => (await B.get(k)).tier));
    expect(l1Hits.filter((t) => t === 'L1').length).toBeGreaterThan(0);
    // A real gap in one (sender, bucket) sequence still drops L1 on every sidecar.
    const node = cluster.client(await cluster.ownerOf(layout.buckets[5]?.slot ?? 0));
    const lost = (seq: number) => JSON.stringify({ v: 1, sender: 'it-gap', seq, b: 5, keys: ['ord-gap'] });
    await node.publish('ripplecache:it-cluster-order', lost(1));
    await node.publish('ripplecache:it-cluster-order', lost(3));
    for (const s of [A, B])
      await waitFor(`${s.name} dropping L1 for the gap`, async () => (await gapDrops(s)) === 1, 10_000, 50);

    // Write-back DELETE on a cluster (issue 16): the row is still in the database, every sidecar answers 404.
    await admin.query(
      `INSERT INTO ${table} (key, value, content_type, version) VALUES ('ord-deleted', 'in-db', 'text/plain', 1)
       ON CONFLICT (key) DO NOTHING`,
    );
    for (const s of [A, B]) expect((await s.get('ord-deleted')).body).toBe('in-db');
    expect((await A.del('ord-deleted')).status).toBe(204);
    for (const s of [A, B]) expect((await s.get('ord-deleted')).status).toBe(404);
    await waitFor('the delete flushed', async () => (await dbValues(table)).get('ord-deleted') === null, 20_000, 100);
    for (const s of [A, B]) expect((await s.get('ord-deleted')).status).toBe(404);
    await Promise.all([A.stop(), B.stop()]);
  }, 300_000);

  it('write-back: 10,000 acknowledged writes over 1,000 keys on every shard, SIGKILL of one sidecar: nothing lost', async () => {
    const table = 'wb_cluster_kill';
    const args = sidecarArgs(
      'ripplecache:it-cluster-wb',
      originArgs(table, ['--write-back-flush-interval-ms', '200', '--write-back-claim-timeout-ms', '3000']),
    );
    const [W1, W2] = await Promise.all([startSidecar({ name: 'W1', args }), startSidecar({ name: 'W2', args })]);
    if (!W1 || !W2) throw new Error('no sidecars');
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
    expect((await shardsOf(keys)).size).toBe(3);
    const first = await writeLoad({
      sidecars: [W1, W2],
      keys: 1000,
      workers: 20,
      total: 9000,
      untilMs: Date.now() + 120_000,
      tag: 'a',
    });
    expect(Object.fromEntries(first.refused)).toEqual({});
    expect(first.acknowledged).toBe(9000);
    // The last 1,000 on W1 with the database down, so that W1 is caught holding entries it cannot write.
    await pgServer.stopServer();
    let pgUp = false;
    try {
      const second = await writeLoad({
        sidecars: [W1],
        keys: 1000,
        workers: 20,
        total: 1000,
        untilMs: Date.now() + 60_000,
        tag: 'b',
        last: first.last,
      });
      expect(Object.fromEntries(second.refused)).toEqual({});
      expect(second.acknowledged).toBe(1000);
      await waitFor(
        'W1 failing to flush',
        async () => (await W1.metric('ripplecache_sidecar_writeback_failures_total', { kind: 'origin' })) > 0,
        10_000,
        50,
      );
      expect(await W1.signal('SIGKILL')).toBeNull();
      await pgServer.startServer();
      pgUp = true;
    } finally {
      if (!pgUp) await pgServer.startServer();
    }
    await converged(table, first.last, 120_000);
    const db = await dbValues(table);
    expect([...first.last.keys()].filter((k) => db.get(k) !== first.last.get(k))).toEqual([]);
    expect(first.last.size).toBe(1000);
    expect(W2.output()).toContain('Claimed write-back entries left pending by another sidecar');
    // Every bucket stream, on whichever shard holds it, drained.
    await waitFor(
      'every bucket stream empty',
      async () => {
        for (const b of layout.buckets) {
          const owner = await cluster.ownerOf(b.slot);
          if ((await cluster.client(owner).xlen(b.streamKey)) !== 0) return false;
        }
        return true;
      },
      30_000,
      500,
    );
    await W2.stop();
  }, 300_000);

  it('a shard primary SIGKILLed under write-back load (durability replicated): promoted replica, nothing lost', async () => {
    const table = 'wb_cluster_failover';
    const args = sidecarArgs(
      'ripplecache:it-cluster-failover',
      originArgs(table, [
        '--durability',
        'replicated',
        '--durability-timeout-ms',
        '2000',
        '--write-back-flush-interval-ms',
        '200',
        '--write-back-claim-timeout-ms',
        '3000',
      ]),
    );
    const [F1, F2] = await Promise.all([startSidecar({ name: 'F1', args }), startSidecar({ name: 'F2', args })]);
    if (!F1 || !F2) throw new Error('no sidecars');
    // The primary of the shard that holds key-0's bucket.
    const victimSlot = layout.bucketOf('key-0').slot;
    const victim = await cluster.ownerOf(victimSlot);
    const before = await cluster.topology();
    const victimId = before.find((n) => n.port === victim)?.id;
    const replica = before.find((n) => n.masterId === victimId);
    if (!replica) throw new Error('the victim has no replica');
    let killedAt = 0;
    let restarted = false;
    const load = writeLoad({
      sidecars: [F1, F2],
      keys: 300,
      workers: 12,
      total: 1_000_000,
      untilMs: Date.now() + 60_000,
      tag: 'f',
      stopWhen: () => killedAt > 0 && Date.now() > killedAt + 15_000,
    });
    await new Promise((r) => setTimeout(r, 4000));
    await cluster.kill(victim);
    killedAt = Date.now();
    try {
      await waitFor(
        'the replica promoted',
        async () => (await cluster.topology()).find((n) => n.port === replica.port)?.role === 'master',
        30_000,
        200,
      );
      const result = await load;
      // Writes refused during the failover were not acknowledged; the acknowledged ones must all land.
      expect(result.acknowledged).toBeGreaterThan(100);
      expect(await cluster.ownerOf(victimSlot)).toBe(replica.port);
      // The old primary comes back as a replica of the promoted one (durability replicated needs one).
      await cluster.restart(victim);
      restarted = true;
      await cluster.waitHealthy();
      await waitFor(
        'the old primary to replicate the promoted one',
        async () => String(await cluster.client(victim).info('replication')).includes('master_link_status:up'),
        30_000,
        200,
      );
      // Writes go on, on every shard.
      const after = await writeLoad({
        sidecars: [F1, F2],
        keys: 300,
        workers: 12,
        total: 600,
        untilMs: Date.now() + 60_000,
        tag: 'g',
        last: result.last,
      });
      expect(Object.fromEntries(after.refused)).toEqual({});
      await converged(table, result.last, 120_000);
      const db = await dbValues(table);
      expect([...result.last.keys()].filter((k) => db.get(k) !== result.last.get(k))).toEqual([]);
    } finally {
      if (!restarted) {
        await cluster.restart(victim);
        await cluster.waitHealthy();
      }
    }
    await Promise.all([F1.stop(), F2.stop()]);
  }, 300_000);

  it('slots moved under load: no acknowledged write lost, no read older than the last acknowledged write', async () => {
    const table = 'wb_cluster_reshard';
    const args = sidecarArgs(
      'ripplecache:it-cluster-reshard',
      originArgs(table, ['--write-back-flush-interval-ms', '200']),
    );
    const [R1, R2] = await Promise.all([startSidecar({ name: 'R1', args }), startSidecar({ name: 'R2', args })]);
    if (!R1 || !R2) throw new Error('no sidecars');
    // Move every bucket slot that shard A owns to shard B, then back, while the load runs.
    const topo = await cluster.topology();
    const primaries = topo.filter((n) => n.role === 'master' && !n.failed).map((n) => n.port);
    const [a, b] = primaries as [number, number];
    const owned: number[] = [];
    for (const bucket of layout.buckets) if ((await cluster.ownerOf(bucket.slot)) === a) owned.push(bucket.slot);
    expect(owned.length).toBeGreaterThan(50);
    let moving = true;
    const load = writeLoad({
      sidecars: [R1, R2],
      keys: 400,
      workers: 10,
      total: 1_000_000,
      untilMs: Date.now() + 120_000,
      tag: 'r',
      readBack: true,
      readAfterMs: 250,
      // The move may be quick: the load goes on until it has made a few hundred writes.
      stopWhen: (sofar) => !moving && sofar.acknowledged >= 300,
    });
    await new Promise((r) => setTimeout(r, 2000));
    let movedOut: number;
    let movedBack: number;
    try {
      // A few keys per MIGRATE, so that the move lasts and writes land on slots mid-move (ASK, TRYAGAIN).
      movedOut = await cluster.moveSlots(owned, b, 3);
      for (const slot of owned) expect(await cluster.ownerOf(slot)).toBe(b);
      movedBack = await cluster.moveSlots(owned, a, 3);
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      moving = false;
    }
    const result = await load;
    expect(movedOut).toBeGreaterThan(0);
    expect(movedBack).toBeGreaterThan(0);
    expect(Object.fromEntries(result.refused)).toEqual({});
    expect(result.acknowledged).toBeGreaterThan(200);
    expect(result.reads).toBeGreaterThan(100);
    expect(result.staleReads).toBe(0);
    await converged(table, result.last, 120_000);
    const db = await dbValues(table);
    expect([...result.last.keys()].filter((k) => db.get(k) !== result.last.get(k))).toEqual([]);
    // Every key readable afterwards, at its last acknowledged value.
    for (const [k, v] of result.last) expect((await R1.get(k)).body).toBe(v);
    await Promise.all([R1.stop(), R2.stop()]);
  }, 300_000);

  it('first writes of new keys into buckets whose slots are mid-move (slow moves): none refused, none lost', async () => {
    // Each write is the first of its key, into one of a few buckets whose slots the harness moves with a pause
    // after each step, as a loaded operator would: for the length of each move the append (bucket stream,
    // counter and a record key that exists on neither node) is answered TRYAGAIN. Before the sidecar retried
    // TRYAGAIN within its time box this refused ~30 of ~11,000 writes (CI: 5 refusals in the operator's
    // 3 → 4 → 3 resharding test).
    const table = 'wb_cluster_tryagain';
    const args = sidecarArgs(
      'ripplecache:it-cluster-tryagain',
      originArgs(table, ['--write-back-flush-interval-ms', '200']),
    );
    const [T1, T2] = await Promise.all([startSidecar({ name: 'T1', args }), startSidecar({ name: 'T2', args })]);
    if (!T1 || !T2) throw new Error('no sidecars');
    const topo = await cluster.topology();
    const [a, b] = topo.filter((n) => n.role === 'master' && !n.failed).map((n) => n.port) as [number, number];
    const moving: number[] = [];
    for (const bucket of layout.buckets) {
      if (moving.length === 4) break;
      if ((await cluster.ownerOf(bucket.slot)) === a) moving.push(bucket.slot);
    }
    const movingSet = new Set(moving);
    const acknowledged = new Map<string, string>();
    const refusals: string[] = [];
    let running = true;
    const worker = async (w: number) => {
      let n = 0;
      for (let j = 0; running && j < 20_000; j++) {
        let key = `new-${w}-${n++}`;
        while (!movingSet.has(layout.bucketOf(key).slot)) key = `new-${w}-${n++}`;
        const r = await (j % 2 ? T1 : T2).put(key, `v-${key}`).catch((e: unknown) => ({ status: 0, body: String(e) }));
        if (r.status === 204) acknowledged.set(key, `v-${key}`);
        else refusals.push(`${key} ${r.status} ${(r as { body?: string }).body ?? ''}`);
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    let moved: number;
    try {
      await waitFor('some first writes acknowledged', async () => acknowledged.size > 100, 60_000, 100);
      // One MIGRATE per slot (batch 1000), 400 ms after each step: each slot is half-moved for about a second,
      // within the sidecars' 2 s time box.
      moved = await cluster.moveSlots(moving, b, 1000, 400);
      for (const slot of moving) expect(await cluster.ownerOf(slot)).toBe(b);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      running = false;
      await load;
    }
    expect(moved).toBeGreaterThan(0);
    expect(refusals.slice(0, 10)).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(500);
    await converged(table, acknowledged, 120_000);
    await Promise.all([T1.stop(), T2.stop()]);
  }, 300_000);

  it('write-back: a write the database superseded leaves nothing older in Redis; a clean stop removes the consumer', async () => {
    const table = 'wb_cluster_superseded';
    const args = sidecarArgs(
      'ripplecache:it-cluster-sup',
      originArgs(table, ['--write-back-flush-interval-ms', '100']),
    );
    /** Consumer names of every bucket's group, on whichever shard holds it. */
    const consumers = async (): Promise<Set<string>> => {
      const names = new Set<string>();
      for (const b of layout.buckets) {
        const node = cluster.client(await cluster.ownerOf(b.slot));
        const list = (await node.xinfo('CONSUMERS', b.streamKey, 'flushers').catch(() => [])) as unknown[][];
        for (const c of list) names.add(String(c[1]));
      }
      return names;
    };
    // Earlier tests' sidecars (one SIGKILLed) left theirs: only the consumers of S1 and S2 count.
    const before = await consumers();
    const fresh = async () => [...(await consumers())].filter((n) => !before.has(n));
    const [S1, S2] = await Promise.all([startSidecar({ name: 'S1', args }), startSidecar({ name: 'S2', args })]);
    if (!S1 || !S2) throw new Error('no sidecars');
    // The flusher creates the table with its first batch.
    expect((await S1.put('warm-up', 'w')).status).toBe(204);
    await waitFor('the table', async () => (await dbValues(table).catch(() => new Map())).has('warm-up'), 10_000, 50);
    const keys = Array.from({ length: 12 }, (_, i) => `sup-${i}`);
    expect((await shardsOf(keys)).size).toBe(3);
    for (const key of keys) {
      await admin.query(
        `INSERT INTO ${table} (key, value, content_type, version) VALUES ($1, $2, 'text/plain', 9000000000000000)`,
        [key, Buffer.from(`app-${key}`)],
      );
    }
    for (const [i, key] of keys.entries()) {
      const r = i % 2 ? await S1.del(key) : await S1.put(key, `sc-${key}`);
      expect(r.status).toBe(204);
    }
    for (const key of keys) {
      for (const s of [S1, S2]) {
        await waitFor(
          `${s.name} answering the row of ${key}`,
          async () => (await s.get(key)).body === `app-${key}`,
          10_000,
          50,
        );
      }
    }

    await waitFor('both consumers', async () => (await fresh()).length === 2, 10_000, 200);
    expect(await S1.signal('SIGTERM')).toBe(0);
    expect(await fresh()).toHaveLength(1);
    expect(await S2.signal('SIGTERM')).toBe(0);
    expect(await fresh()).toEqual([]);
  }, 120_000);
});
