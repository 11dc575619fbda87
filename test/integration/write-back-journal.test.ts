/**
 * The write-back journal and flusher against a real redis-server and a real PostgreSQL: journaling,
 * back-pressure, coalescing, batching, claiming a dead consumer's entries, a database outage, draining on
 * stop and dead letters. No sidecar processes (those are in write-back-durability.test.ts and
 * write-policies-sidecars.test.ts).
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidationPublisher } from '../../sidecar/src/invalidation/invalidation-publisher.js';
import { createPostgresPool, PostgresOrigin } from '../../sidecar/src/origin/postgres-origin.js';
import { createRedisClient, whenReady } from '../../sidecar/src/redis/redis-client.js';
import { RedisL2 } from '../../sidecar/src/redis/redis-l2.js';
import { isL2Deleted, type L2Deleted, type L2Record } from '../../sidecar/src/tiers/tiered-cache.js';
import { VersionedRecords } from '../../sidecar/src/redis/versioned-records.js';
import { WriteBackPolicy } from '../../sidecar/src/write/write-back.js';
import { WriteBackFlusher, type FlushFailure } from '../../sidecar/src/write/write-back-flusher.js';
import { WriteBackBacklogFullError, WriteBackJournal } from '../../sidecar/src/redis/write-back-journal.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

/** The value bytes of an L2 answer (undefined for a miss or a DELETE's tombstone). */
function bodyOf(r: L2Record | L2Deleted | null): Buffer | undefined {
  return r === null || isL2Deleted(r) ? undefined : r.body;
}

const CHANNEL = 'ripplecache:it-write-back';
let redisServer: RedisProcess;
let pgServer: PostgresServer;
let admin: pg.Pool;
let raw: Redis;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [redisServer, pgServer] = await Promise.all([startRedis(), startPostgres()]);
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => {});
  raw = new Redis(redisServer.port, '127.0.0.1');
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  raw?.disconnect();
  await admin?.end();
  await Promise.all([redisServer?.stop(), pgServer?.stop()]);
});

interface Counters {
  entries: number;
  writes: number;
  batches: number;
  coalesced: number;
  failures: Record<FlushFailure, number>;
}

/** The write-back objects of one sidecar process, on a stream of the test's own. */
async function sidecar(
  name: string,
  stream: string,
  opts: {
    batchSize?: number;
    intervalMs?: number;
    claimIdleMs?: number;
    maxPending?: number;
    announce?: (keys: readonly string[]) => Promise<void>;
  } = {},
) {
  const redis = createRedisClient({ url: redisServer.url, timeoutMs: 2000, name });
  redis.on('error', () => {});
  await whenReady(redis, 5000);
  const records = new VersionedRecords({ client: redis, channel: CHANNEL });
  const journal = new WriteBackJournal({ client: redis, consumer: name, channel: CHANNEL, streamKey: stream });
  const origin = new PostgresOrigin({ pool: createPostgresPool({ url: pgServer.url, timeoutMs: 2000, max: 4 }) });
  const counters: Counters = {
    entries: 0,
    writes: 0,
    batches: 0,
    coalesced: 0,
    failures: { origin: 0, rejected: 0, redis: 0 },
  };
  const flusher = new WriteBackFlusher({
    journal,
    origin,
    records,
    flushIntervalMs: opts.intervalMs ?? 100,
    flushBatchSize: opts.batchSize ?? 500,
    claimIdleMs: opts.claimIdleMs ?? 30_000,
    ...(opts.announce ? { announce: opts.announce } : {}),
    events: {
      batchFlushed: (entries, writes) => {
        counters.entries += entries;
        counters.writes += writes;
        counters.batches++;
      },
      coalesced: (n) => {
        counters.coalesced += n;
      },
      failure: (kind) => {
        counters.failures[kind]++;
      },
    },
  });
  const publisher = new InvalidationPublisher(name);
  const policy = new WriteBackPolicy({
    journal,
    flusher,
    origin,
    maxPending: opts.maxPending ?? 100_000,
    publisher,
    invalidateLocal: () => {},
  });
  const l2 = new RedisL2({
    primary: redis,
    channel: CHANNEL,
    replicaUrls: [],
    password: undefined,
    timeoutMs: 2000,
    onError: () => {},
  });
  const close = async () => {
    await flusher.stop(1000);
    await origin.close();
    redis.disconnect();
  };
  closers.push(close);
  return { redis, records, journal, origin, flusher, policy, counters, l2, publisher, close };
}

const text = (s: string) => ({ body: Buffer.from(s), contentType: 'text/plain' });

async function dbValues(prefix: string): Promise<Map<string, string | null>> {
  const r = await admin.query<{ key: string; value: Buffer | null }>(
    'SELECT key, value FROM cache_entries WHERE key LIKE $1',
    [`${prefix}%`],
  );
  return new Map(r.rows.map((row) => [row.key, row.value?.toString() ?? null]));
}

describe('write-back journal', () => {
  it('journals the write, pins the Redis record and refuses writes past maxPending without dropping any', async () => {
    const s = await sidecar('j-a', 'it:wb:append', { maxPending: 3 });
    await s.policy.put('ap/1', text('one'), 60);
    await s.policy.put('ap/2', text('two'), 60);
    await s.policy.delete('ap/1');
    expect(await raw.xlen('it:wb:append')).toBe(3);
    expect(bodyOf(await s.l2.get('ap/2'))?.toString()).toBe('two');
    expect((await s.records.read('ap/2'))?.pttlMs).toBe(-1); // pinned until flushed
    expect(await s.l2.get('ap/1')).toMatchObject({ deleted: expect.any(Number) }); // the delete's tombstone
    await expect(s.policy.put('ap/3', text('three'), 60)).rejects.toThrow(WriteBackBacklogFullError);
    expect(await raw.xlen('it:wb:append')).toBe(3);
    expect(await s.l2.get('ap/3')).toBeNull();
    expect(s.publisher.lastSeq).toBe(4); // the refused write still published its invalidation

    const redisMs = async () => {
      const [sec, usec] = await raw.time();
      return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    };
    const [[firstId]] = (await raw.xrange('it:wb:append', '-', '+', 'COUNT', 1)) as [[string, string[]]];
    const before = await redisMs();
    const stats = await s.journal.stats();
    const after = await redisMs();
    // The backlog is the three journalled writes; the oldest is the first entry's id time, read on Redis' clock.
    expect(stats.pending).toBe(3);
    expect(stats.oldestMs).toBe(Number(firstId.split('-')[0]));
    expect(stats.oldestMs).toBeLessThanOrEqual(before);
    expect(stats.redisNowMs).toBeGreaterThanOrEqual(before);
    expect(stats.redisNowMs).toBeLessThanOrEqual(after);

    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await raw.xlen('it:wb:append')).toBe(0);
    expect(await dbValues('ap/')).toEqual(
      new Map([
        ['ap/1', null],
        ['ap/2', 'two'],
      ]),
    );
    expect((await s.records.read('ap/2'))?.pttlMs).toBeGreaterThan(50_000); // settled: TTL given
    expect((await s.records.read('ap/1'))?.pttlMs).toBeGreaterThan(0); // the delete's tombstone too
    await s.policy.put('ap/3', text('three'), 60); // room again
  });

  it('journals the writes of one turn in one call, in order, refusing only those past maxPending', async () => {
    const s = await sidecar('j-g', 'it:wb:group', { maxPending: 5 });
    const seqBefore = s.publisher.lastSeq;
    // Seven writes submitted in the same turn: one script call, versions in submission order.
    const settled = await Promise.allSettled([
      ...[0, 1, 2, 3].map((i) => s.policy.put(`gr/${i}`, text(`v${i}`), 60)),
      s.policy.put('gr/0', text('v0-again'), 60),
      s.policy.put('gr/5', text('v5'), 60),
      s.policy.delete('gr/1'),
    ]);
    expect(settled.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    for (const r of settled.slice(5))
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WriteBackBacklogFullError);
    expect(s.publisher.lastSeq).toBe(seqBefore + 1); // one invalidation message for the call
    const entries = await raw.xrange('it:wb:group', '-', '+');
    expect(entries.map(([, f]) => f[1])).toEqual(['gr/0', 'gr/1', 'gr/2', 'gr/3', 'gr/0']);
    const versions = entries.map(([, f]) => Number(f[5]));
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(5);
    expect(bodyOf(await s.l2.get('gr/0'))?.toString()).toBe('v0-again');
    expect(bodyOf(await s.l2.get('gr/1'))?.toString()).toBe('v1'); // the refused delete changed nothing
    expect(await s.l2.get('gr/5')).toBeNull();
    // A write journaled by one call after another gets a newer version than every write before it.
    expect(await s.flusher.flushOnce()).toBe(true);
    await s.policy.put('gr/5', text('v5'), 60);
    const [, last] = (await raw.xrange('it:wb:group', '-', '+'))[0] ?? ['', []];
    expect(Number(last[5])).toBeGreaterThan(Math.max(...versions));
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await dbValues('gr/')).toEqual(
      new Map([
        ['gr/0', 'v0-again'],
        ['gr/1', 'v1'],
        ['gr/2', 'v2'],
        ['gr/3', 'v3'],
        ['gr/5', 'v5'],
      ]),
    );
  });

  it('does not pile large values of one turn into one script call', async () => {
    const s = await sidecar('j-l', 'it:wb:large');
    const seqBefore = s.publisher.lastSeq;
    const big = (c: string) => ({ body: Buffer.alloc(600 * 1024, c), contentType: 'application/octet-stream' });
    await Promise.all([
      s.policy.put('lg/a', big('a'), 60),
      s.policy.put('lg/b', big('b'), 60),
      s.policy.put('lg/c', big('c'), 60),
      s.policy.put('lg/d', text('small'), 60),
      s.policy.put('lg/e', text('small'), 60),
    ]);
    // 600 KiB + 600 KiB is over the 1 MiB a call may carry: [a], [b], [c, d, e], one message each.
    expect(s.publisher.lastSeq).toBe(seqBefore + 3);
    expect(await raw.xlen('it:wb:large')).toBe(5);
    for (const c of ['a', 'b', 'c']) expect(bodyOf(await s.l2.get(`lg/${c}`))?.equals(big(c).body)).toBe(true);
    expect(await s.flusher.flushOnce()).toBe(true);
    const db = await dbValues('lg/');
    expect(db.get('lg/b')?.length).toBe(600 * 1024);
    expect(db.get('lg/e')).toBe('small');
  });

  it('coalesces per key, last write wins, and flushes in batches of flushBatchSize', async () => {
    const s = await sidecar('j-b', 'it:wb:coalesce', { batchSize: 100 });
    for (let i = 0; i < 400; i++) await s.policy.put(`co/${i % 20}`, text(`v${i}`), 60);
    expect(await s.flusher.flushOnce()).toBe(true);
    const db = await dbValues('co/');
    expect(db.size).toBe(20);
    for (let k = 0; k < 20; k++) expect(db.get(`co/${k}`)).toBe(`v${380 + k}`);
    expect(s.counters).toMatchObject({ entries: 400, batches: 4, writes: 80, coalesced: 320 });
    expect(await raw.xlen('it:wb:coalesce')).toBe(0);
    expect(await raw.xpending('it:wb:coalesce', 'flushers')).toEqual([0, null, null, null]);
  });

  it('acknowledges and deletes batches of more than 1,000 entries', async () => {
    const stream = 'it:wb:bigack';
    const s = await sidecar('j-ba', stream, { batchSize: 2500 });
    for (let i = 0; i < 2500; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => s.policy.put(`ba/${i + j}`, text(`b${i + j}`), 60)));
    }
    expect(await raw.xlen(stream)).toBe(2500);
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(s.counters).toMatchObject({ entries: 2500, batches: 1 });
    expect(await raw.xlen(stream)).toBe(0);
    expect((await raw.xpending(stream, 'flushers'))[0]).toBe(0);
    expect((await dbValues('ba/')).size).toBe(2500);
    // Acknowledging after Redis lost the group (entries already in the database) deletes them all the same.
    await s.policy.put('ba/x', text('x'), 60);
    const id = (await raw.xrange(stream, '-', '+'))[0]?.[0] ?? '';
    await raw.xgroup('DESTROY', stream, 'flushers');
    await s.journal.ack([id]);
    expect(await raw.xlen(stream)).toBe(0);
  });

  it('loads its scripts again when Redis forgot them (SCRIPT FLUSH, or a restart)', async () => {
    const s = await sidecar('j-sf', 'it:wb:scriptflush');
    await s.policy.put('sf/1', text('one'), 60);
    await raw.script('FLUSH');
    await s.policy.put('sf/2', text('two'), 60); // EVALSHA answers NOSCRIPT; the append is sent with EVAL
    await raw.script('FLUSH');
    expect(await s.flusher.flushOnce()).toBe(true); // the settle script too
    expect(await dbValues('sf/')).toEqual(
      new Map([
        ['sf/1', 'one'],
        ['sf/2', 'two'],
      ]),
    );
    expect((await s.records.read('sf/2'))?.pttlMs).toBeGreaterThan(50_000);
    expect(await raw.xlen('it:wb:scriptflush')).toBe(0);
  });

  it('delivers each append to the appending sidecar, which flushes from memory; undelivered entries still reach the database', async () => {
    const stream = 'it:wb:deliver';
    const s = await sidecar('j-d', stream, { batchSize: 5 });
    const put = (key: string, value: string) => ({
      key,
      op: 'put' as const,
      body: Buffer.from(value),
      contentType: 'text/plain',
      ttlSeconds: 60,
    });
    // A new stream has no consumer group yet: the first append creates it and delivers its entry.
    await s.policy.put('dv/0', text('zero'), 60);
    expect(await raw.xpending(stream, 'flushers')).toEqual([1, expect.any(String), expect.any(String), [['j-d', '1']]]);
    // With every entry delivered (lag 0), the next append claims its own entries and moves the group on.
    await s.policy.put('dv/1', text('one'), 60);
    expect(await raw.xpending(stream, 'flushers')).toEqual([2, expect.any(String), expect.any(String), [['j-d', '2']]]);
    const info = (await raw.xinfo('GROUPS', stream)) as unknown[][];
    const group = new Map<unknown, unknown>();
    for (let i = 0; i < (info[0]?.length ?? 0); i += 2) group.set(info[0]?.[i], info[0]?.[i + 1]);
    expect(group.get('lag')).toBe(0);
    expect(group.get('entries-read')).toBe(2);
    // An append without delivery (a sidecar whose flusher has no room) leaves its entry undelivered…
    const plain = await s.journal.appendMany([put('dv/2', 'two')], 100, '', false);
    expect(plain.results[0]).not.toHaveProperty('entry');
    expect(plain.others).toEqual([]);
    // …and the next delivering append is handed the oldest undelivered entry (dv/2), not its own (dv/3).
    const taken = await s.journal.appendMany([put('dv/3', 'three')], 100, '', true);
    expect(taken.results[0]).not.toHaveProperty('entry');
    expect(taken.others).toEqual([(plain.results[0] as { id: string }).id]);
    s.flusher.adopt([], taken.others);
    // One cycle: dv/2 read by id, dv/3 read as a new entry, dv/0 and dv/1 from memory.
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await dbValues('dv/')).toEqual(
      new Map([
        ['dv/0', 'zero'],
        ['dv/1', 'one'],
        ['dv/2', 'two'],
        ['dv/3', 'three'],
      ]),
    );
    expect(await raw.xlen(stream)).toBe(0);
    expect((await raw.xpending(stream, 'flushers'))[0]).toBe(0);

    // Entries held in memory are bounded (four batches: 20 here); past that, appends leave them undelivered.
    for (let i = 0; i < 30; i++) await s.policy.put(`dh/${i}`, text(`h${i}`), 60);
    expect((await raw.xpending(stream, 'flushers'))[0]).toBe(20);
    expect(s.flusher.hasRoom()).toBe(false);
    expect(await s.flusher.flushOnce()).toBe(true);
    const db = await dbValues('dh/');
    expect(db.size).toBe(30);
    expect(db.get('dh/29')).toBe('h29');
    expect(await raw.xlen(stream)).toBe(0);
    expect(s.flusher.hasRoom()).toBe(true);
    expect(s.counters.entries).toBe(34);
  });

  it('another sidecar claims what a dead one left pending, and older entries never overwrite newer rows', async () => {
    const stream = 'it:wb:claim';
    const dead = await sidecar('j-dead', stream);
    const live = await sidecar('j-live', stream, { claimIdleMs: 500 });
    // The dead sidecar journals 50 writes (each append delivers its entry to the dead sidecar's consumer,
    // for its flusher), then "dies" (never flushes, never acknowledges).
    for (let i = 0; i < 50; i++) await dead.policy.put(`cl/${i}`, text(`dead-${i}`), 60);
    const pendingDead = await raw.xpending(stream, 'flushers');
    expect(pendingDead[0]).toBe(50);
    expect(pendingDead[3]).toEqual([['j-dead', '50']]);
    expect((await live.journal.readNew(500)).entries).toHaveLength(0);
    // Newer writes to half of the keys go through the live sidecar and are flushed first.
    for (let i = 0; i < 25; i++) await live.policy.put(`cl/${i}`, text(`live-${i}`), 60);
    expect(await live.flusher.flushOnce()).toBe(true);
    expect((await raw.xpending(stream, 'flushers'))[0]).toBe(50);
    await new Promise((r) => setTimeout(r, 600)); // past the claim timeout
    expect(await live.flusher.flushOnce()).toBe(true);
    const db = await dbValues('cl/');
    for (let i = 0; i < 50; i++) expect(db.get(`cl/${i}`)).toBe(i < 25 ? `live-${i}` : `dead-${i}`);
    expect((await raw.xpending(stream, 'flushers'))[0]).toBe(0);
    expect(await raw.xlen(stream)).toBe(0);
  });

  it("keeps retrying through a database outage without losing a write, and nobody claims a live flusher's batch", async () => {
    const stream = 'it:wb:outage';
    const a = await sidecar('j-out-a', stream, { intervalMs: 50, claimIdleMs: 900, batchSize: 200 });
    const b = await sidecar('j-out-b', stream, { intervalMs: 50, claimIdleMs: 900, batchSize: 200 });
    a.flusher.start();
    const last = new Map<string, string>();
    const write = async (i: number) => {
      const key = `out/${i % 100}`;
      await a.policy.put(key, text(`w${i}`), 60);
      last.set(key, `w${i}`);
    };
    let i = 0;
    for (; i < 300; i++) await write(i);
    await waitFor('the first writes in the database', async () => (await dbValues('out/')).size === 100, 10_000, 20);
    await pgServer.stopServer();
    try {
      const until = Date.now() + 3000;
      while (Date.now() < until && i < 20_000) {
        await write(i++);
        if (i % 500 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor('failed flush attempts', async () => a.counters.failures.origin >= 3, 10_000, 20);
      // b looks for abandoned entries after a's batch has been retried for longer than the claim timeout:
      // a keeps touching its batch, so there are none.
      expect((await b.journal.claimStale(900, 1000)).entries).toHaveLength(0);
      const pending = await raw.xpending(stream, 'flushers');
      expect(pending[0]).toBeGreaterThan(0);
      expect((pending[3] as [string, string][] | null)?.map(([consumer]) => consumer)).toEqual(['j-out-a']);
      expect(a.flusher.pendingSnapshot().pending).toBeGreaterThan(0);
      expect(a.flusher.pendingSnapshot().oldestPendingSeconds).toBeGreaterThan(1);
    } finally {
      await pgServer.startServer();
    }
    await waitFor('the backlog written after the outage', async () => (await raw.xlen(stream)) === 0, 60_000, 50);
    await waitFor(
      'every key at its last value',
      async () => {
        const db = await dbValues('out/');
        return [...last].every(([k, v]) => db.get(k) === v);
      },
      30_000,
      50,
    );
    expect(a.counters.entries).toBe(i);
  });

  it('puts back a pending record that was invalidated before its flush, so Redis ends as the database', async () => {
    const stream = 'it:wb:repair';
    const announced: string[] = [];
    const s = await sidecar('j-repair', stream, {
      announce: async (keys) => {
        announced.push(...keys);
      },
    });
    await s.origin.put('rp/1', Buffer.from('db-old'), 'text/plain', 1);
    await s.policy.put('rp/1', text('journaled'), 60);
    await raw.del('rc:rp/1'); // POST /v1/invalidate {"keys":["rp/1"],"tier":"all"}
    await s.records.fill('rp/1', text('db-old'), 60, 1); // a read-through refills the older row
    expect(await s.flusher.flushOnce()).toBe(true);
    expect((await dbValues('rp/')).get('rp/1')).toBe('journaled');
    expect(bodyOf(await s.l2.get('rp/1'))?.toString()).toBe('journaled');
    expect(announced).toEqual(['rp/1']);
  });

  it('settles an entry delivered again after its flush reached the database (same version): Redis keeps the value', async () => {
    const stream = 'it:wb:again';
    const announced: string[] = [];
    const s = await sidecar('j-again', stream, {
      announce: async (keys) => {
        announced.push(...keys);
      },
    });
    await s.policy.put('ag/1', text('acknowledged'), 60);
    const record = await s.records.read('ag/1');
    // Its flush reached the database, its acknowledgement never reached Redis (a failover, a killed sidecar).
    await s.origin.put('ag/1', Buffer.from('acknowledged'), 'text/plain', record!.version);
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(bodyOf(await s.l2.get('ag/1'))?.toString()).toBe('acknowledged');
    expect(await raw.hget('rc:ag/1', 'v')).toBe('acknowledged');
    expect(announced).toEqual([]);
    // A row the application wrote newer is still a supersede: Redis gives way to it.
    await s.policy.put('ag/2', text('sidecar'), 60);
    const two = await s.records.read('ag/2');
    await s.origin.put('ag/2', Buffer.from('app'), 'text/plain', two!.version + 1);
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await raw.hget('rc:ag/2', 'v')).toBeNull();
    expect(announced).toEqual(['ag/2']);
  });

  it('drains the journal on stop', async () => {
    const stream = 'it:wb:drain';
    const s = await sidecar('j-drain', stream, { intervalMs: 3_600_000, batchSize: 100_000 });
    s.flusher.start();
    for (let i = 0; i < 1000; i++) await s.policy.put(`dr/${i}`, text(`d${i}`), 60);
    expect((await dbValues('dr/')).size).toBe(0); // nothing flushed yet: no trigger fired
    expect(await s.flusher.stop(10_000)).toBe(true);
    const db = await dbValues('dr/');
    expect(db.size).toBe(1000);
    expect(db.get('dr/999')).toBe('d999');
    expect(await raw.xlen(stream)).toBe(0);
    // Drained: its consumer is gone from the group.
    const names = (await raw.xinfo('CONSUMERS', stream, 'flushers')) as unknown[][];
    expect(names.map((c) => String(c[1]))).not.toContain('j-drain');
  });

  it('removes its own consumer only when it owns no pending entry', async () => {
    const stream = 'it:wb:own-consumer';
    const s = await sidecar('j-own', stream);
    const other = await sidecar('j-other', stream);
    await s.policy.put('own/1', text('x'), 60); // delivered to j-own: pending in it
    await other.policy.put('own/2', text('y'), 60);
    const names = async () =>
      ((await raw.xinfo('CONSUMERS', stream, 'flushers')) as unknown[][]).map((c) => String(c[1])).sort();
    expect(await names()).toEqual(['j-other', 'j-own']);
    expect(await s.journal.removeOwnConsumer()).toBe(false);
    expect(await names()).toEqual(['j-other', 'j-own']);
    expect((await raw.xpending(stream, 'flushers'))[3]).toEqual(expect.arrayContaining([['j-own', '1']]));
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await s.journal.removeOwnConsumer()).toBe(true);
    expect(await names()).toEqual(['j-other']);
    // A stream or group that is gone: nothing to remove, no error.
    const gone = new WriteBackJournal({
      client: s.redis,
      consumer: 'j-own',
      channel: CHANNEL,
      streamKey: 'it:wb:none',
    });
    expect(await gone.removeOwnConsumer()).toBe(false);
  });

  it('moves writes the database refuses, and entries that are not journal entries, to the dead-letter stream', async () => {
    const stream = 'it:wb:dead';
    const s = await sidecar('j-dl', stream);
    await s.policy.put('dl/ok', text('fine'), 60);
    // Bypass the policy's key check, as an entry journaled by an older sidecar could.
    await s.journal.append(
      { key: 'dl/\u0000bad', op: 'put', body: Buffer.from('x'), contentType: 'text/plain', ttlSeconds: 60 },
      1000,
    );
    await raw.xadd(stream, '*', 'something', 'else');
    await s.policy.put('dl/ok2', text('fine2'), 60);
    expect(await s.flusher.flushOnce()).toBe(true);
    expect(await dbValues('dl/')).toEqual(
      new Map([
        ['dl/ok', 'fine'],
        ['dl/ok2', 'fine2'],
      ]),
    );
    expect(await raw.xlen(stream)).toBe(0);
    expect(await raw.xlen(`${stream}:dead`)).toBe(2);
    expect(s.counters.failures.rejected).toBe(2);
  });
});
