/**
 * Sidecars follow the primary (issue 14 item 4), with real processes: a redis-server primary with two
 * replicas, PostgreSQL, and sidecar processes (two under write-back, one under write-through, durability
 * replicated) that reach Redis only through a TCP proxy standing in for the client Service. Under load the
 * primary's redis-server is SIGKILLed; the test promotes the most advanced replica (REPLICAOF NO ONE, the
 * other one follows it) and re-points the proxy, as the operator's failover and the Service would. The
 * sidecars reconnect through the same address, the write-back flushers and their consumer group carry on
 * on the new primary, and: every key ends in PostgreSQL and in Redis with its last acknowledged value,
 * every database row carries the version of the Redis record, and the new primary's version counter is
 * past every version stored (versions stayed monotonic). Each key's writes are sequential (one worker per
 * key), and a write answered other than 204 is retried until acknowledged, so "its last acknowledged
 * value" is well defined.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';

const TABLE = 'follow_entries';
let primary: RedisProcess;
let replicas: RedisProcess[];
let service: TcpProxy;
let pgServer: PostgresServer;
let admin: pg.Pool;
const clients: Redis[] = [];
/** The primary behind the proxy now (set by the failover test). */
let current: Redis | undefined;

function client(r: RedisProcess): Redis {
  const c = new Redis(r.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

beforeAll(async () => {
  [primary, pgServer] = await Promise.all([startRedis(), startPostgres()]);
  replicas = await Promise.all(
    [0, 1].map(() => startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] })),
  );
  for (const r of replicas) {
    const c = client(r);
    await waitFor('a replica linked', async () =>
      String(await c.info('replication')).includes('master_link_status:up'),
    );
  }
  service = await startTcpProxy({ host: '127.0.0.1', port: primary.port });
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => {});
});

afterAll(async () => {
  await stopAllSidecars();
  for (const c of clients) c.disconnect();
  await admin?.end();
  await service?.close();
  await Promise.all([primary?.stop(), ...(replicas ?? []).map((r) => r.stop()), pgServer?.stop()]);
});

function sidecar(policy: 'write-back' | 'write-through'): Promise<SidecarProcess> {
  return startSidecar({
    args: [
      '--redis',
      `redis://127.0.0.1:${service.port}`,
      '--channel',
      'ripplecache:it-follow',
      '--origin',
      pgServer.url,
      '--origin-table',
      TABLE,
      '--write-policy',
      policy,
      '--durability',
      'replicated',
      '--durability-timeout-ms',
      '1000',
      '--redis-timeout-ms',
      '1000',
      '--write-back-flush-interval-ms',
      '200',
      '--write-back-claim-timeout-ms',
      '5000',
    ],
  });
}

async function replicationOffset(c: Redis): Promise<number> {
  const info = String(await c.info('replication'));
  return Number(/^(?:slave_repl_offset|master_repl_offset):(\d+)/m.exec(info)?.[1] ?? -1);
}

describe('sidecars follow the primary through the client Service address', () => {
  it('after SIGKILL of the primary and a promotion: every acknowledged write in PostgreSQL and Redis, versions monotonic', async () => {
    const writeBack = [await sidecar('write-back'), await sidecar('write-back')];
    const writeThrough = await sidecar('write-through');

    const KEYS = 200;
    const TOTAL = 3000;
    const WORKERS = 8;
    const last = new Map<string, string>();
    let acknowledged = 0;
    let refusals = 0;
    const deadline = Date.now() + 120_000;
    const worker = async (w: number) => {
      for (let j = 0; acknowledged < TOTAL && Date.now() < deadline; j++) {
        const k = w + WORKERS * (j % Math.ceil(KEYS / WORKERS));
        if (k >= KEYS) continue;
        // Even keys under write-back (alternating the two sidecars), odd keys under write-through.
        const s = k % 2 === 0 ? (writeBack[j % 2] as SidecarProcess) : writeThrough;
        const key = `key-${k}`;
        const value = `w${w}-${j}`;
        for (;;) {
          const r = await s.put(key, value, { timeoutMs: 5000 }).catch(() => undefined);
          if (r?.status === 204) break;
          refusals++;
          if (Date.now() > deadline)
            throw new Error(`${key}=${value} never acknowledged (last: ${r?.status} ${r?.body})`);
          await new Promise((res) => setTimeout(res, 50));
        }
        last.set(key, value);
        acknowledged++;
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    // The primary dies at a moment within the load, then the most advanced replica is promoted.
    const killAfter = 600 + Math.floor(Math.random() * 900);
    await waitFor('acknowledged writes before the kill', async () => acknowledged >= killAfter, 60_000, 10);
    const killedAt = acknowledged;
    await primary.kill();
    const [r0, r1] = replicas.map((r) => clients.find((c) => c.options.port === r.port) as Redis) as [Redis, Redis];
    const offsets = [await replicationOffset(r0), await replicationOffset(r1)];
    const promoted = offsets[0]! >= offsets[1]! ? 0 : 1;
    const next = replicas[promoted] as RedisProcess;
    const onNew = promoted === 0 ? r0 : r1;
    const onOther = promoted === 0 ? r1 : r0;
    await onNew.call('REPLICAOF', 'NO', 'ONE');
    await onOther.call('REPLICAOF', '127.0.0.1', String(next.port));
    service.retarget({ host: '127.0.0.1', port: next.port });
    current = onNew;
    await waitFor(
      'the other replica following the new primary',
      async () => String(await onOther.info('replication')).includes('master_link_status:up'),
      30_000,
    );
    await load;
    expect(acknowledged).toBeGreaterThanOrEqual(TOTAL);
    expect(acknowledged - killedAt).toBeGreaterThan(500); // writes acknowledged by the new primary
    expect(refusals).toBeGreaterThan(0); // the outage was seen (503s or cut connections), and retried
    expect(last.size).toBe(KEYS);

    // Every key in PostgreSQL with its last acknowledged value (write-back: once flushed on the new primary).
    const dbRows = async () =>
      new Map(
        (
          await admin.query<{ key: string; value: Buffer | null; version: string }>(
            `SELECT key, value, version FROM ${TABLE}`,
          )
        ).rows.map((r) => [r.key, { value: r.value?.toString() ?? null, version: Number(r.version) }]),
      );
    await waitFor(
      'every key at its last acknowledged value in PostgreSQL',
      async () => {
        const rows = await dbRows();
        return [...last].every(([k, v]) => rows.get(k)?.value === v);
      },
      60_000,
      250,
    );
    await waitFor(
      'the journal drained on the new primary',
      async () => (await onNew.xlen('ripplecache:write-back')) === 0,
      30_000,
      250,
    );
    const rows = await dbRows();
    const wrong: string[] = [];
    let maxVersion = 0;
    for (const [k, v] of last) {
      const row = rows.get(k)!;
      const [value, ver] = await onNew.hmget(`rc:${k}`, 'v', 'ver');
      if (row.value !== v || value !== v || Number(ver) !== row.version) {
        wrong.push(`${k}: acknowledged ${v}, database ${row.value}@${row.version}, redis ${value}@${ver}`);
      }
      maxVersion = Math.max(maxVersion, row.version);
    }
    expect(wrong).toEqual([]);
    expect(Number(await onNew.get('ripplecache:version'))).toBeGreaterThanOrEqual(maxVersion);
    // The flushers wrote on the new primary: the consumer group is there and holds nothing pending.
    const groups = (await onNew.xinfo('GROUPS', 'ripplecache:write-back')) as unknown[][];
    const flushers = groups.map(
      (g) => new Map(Array.from({ length: g.length / 2 }, (_, i) => [String(g[2 * i]), g[2 * i + 1]])),
    );
    expect(flushers.find((g) => g.get('name') === 'flushers')?.get('pending')).toBe(0);
    await stopAllSidecars();
  });

  it('takes up the entries pending in its consumer on a new connection at once, not after the claim timeout', async () => {
    const redis = current ?? client(primary);
    // A long claim timeout: without the walk of its own pending list after a reconnection, the entry
    // below would wait a minute for XAUTOCLAIM.
    const s = await startSidecar({
      args: [
        '--redis',
        `redis://127.0.0.1:${service.port}`,
        '--channel',
        'ripplecache:it-follow',
        '--origin',
        pgServer.url,
        '--origin-table',
        TABLE,
        '--write-policy',
        'write-back',
        '--write-back-flush-interval-ms',
        '200',
        '--write-back-claim-timeout-ms',
        '60000',
      ],
    });
    expect((await s.put('warm', 'w')).status).toBe(204);
    const built = s
      .output()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg?: string; sender?: string })
      .find((l) => l.msg === 'Built the sidecar');
    const consumer = built?.sender as string;
    expect(consumer).toBeTruthy();
    // An entry pending in this sidecar's consumer that its flusher does not hold in memory: what an append
    // leaves behind when its answer is lost with the connection (the primary died after running it).
    // XADD and XREADGROUP in one MULTI: the sidecar's own flusher (every 200 ms) must not read the entry
    // first, or it would flush it the ordinary way and this test would prove nothing (and fail, as seen
    // under load).
    const fields = ['k', 'orphan', 'op', 'put', 'ver', String(Date.now() * 1000), 'v', 'taken-up'];
    const replies = await redis
      .multi([
        ['xadd', 'ripplecache:write-back', '*', ...fields, 'ct', 'text/plain', 'ttl', '0'],
        ['xreadgroup', 'GROUP', 'flushers', consumer, 'STREAMS', 'ripplecache:write-back', '>'],
      ])
      .exec();
    const id = String(replies?.[0]?.[1]);
    expect(replies?.[0]?.[0]).toBeNull();
    expect(replies?.[1]?.[0]).toBeNull();
    const pendingIn = async () =>
      ((await redis.call('XPENDING', 'ripplecache:write-back', 'flushers', '-', '+', 10, consumer)) as unknown[][]).map(
        (p) => String(p[0]),
      );
    expect(await pendingIn()).toContain(id);
    // Cut the sidecar's connections (as a failover does); ioredis reconnects through the same address.
    await redis.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    // The row reaches PostgreSQL before the entry is acknowledged (XACK follows the database write): wait for both.
    await waitFor(
      'the orphaned entry in PostgreSQL and no longer pending',
      async () =>
        (
          await admin.query<{ value: Buffer }>(`SELECT value FROM ${TABLE} WHERE key = 'orphan'`)
        ).rows[0]?.value.toString() === 'taken-up' && !(await pendingIn()).includes(id),
      15_000,
      200,
    );
    expect(s.output()).toContain('Took up write-back entries pending in this sidecar after reconnecting to Redis');
    await s.stop();
  });
});
