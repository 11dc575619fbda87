/**
 * Sidecars on a real Redis Cluster (3 shards × 1 replica of redis-server in cluster mode, bootstrapped by
 * test/harness/redis-cluster.ts) over a real PostgreSQL:
 *   - the cache API, invalidation between sidecars and `consistency=all` on a cluster;
 *   - write-back: 10,000 acknowledged writes over 1,000 keys spread over every shard, one sidecar
 *     SIGKILLed: every key reaches the database with its last acknowledged value;
 *   - a shard primary SIGKILLed under write-back load with `--durability replicated`: its replica is
 *     promoted, the sidecars go on, no acknowledged write is lost;
 *   - slots moved (SETSLOT/MIGRATE by the harness) under load: no acknowledged write lost, no read older
 *     than the last acknowledged write.
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
  stopWhen?: () => boolean;
}): Promise<LoadResult> {
  const last = opts.last ?? new Map<string, string>();
  const res: LoadResult = { last, acknowledged: 0, refused: new Map(), staleReads: 0, reads: 0 };
  let sent = 0;
  const worker = async (w: number) => {
    const own = Array.from({ length: Math.ceil(opts.keys / opts.workers) }, (_, j) => w + j * opts.workers).filter(
      (k) => k < opts.keys,
    );
    for (let j = 0; sent < opts.total && Date.now() < opts.untilMs && !(opts.stopWhen?.() ?? false); j++) {
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
    // consistency=all: the primary and the replica of that shard.
    const all = await fetch(`${A.url}/v1/cache/${key}?consistency=all`);
    const report = (await all.json()) as { nodes?: { node: string; role: string; status: string }[] };
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
    for (const k of keys.slice(0, 10)) expect((await B.get(k)).status).toBe(404);
    await Promise.all([A.stop(), B.stop()]);
  }, 120_000);

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
});
