/**
 * Versioned Redis records, write-through, write-around and read-through against a real redis-server and
 * a real PostgreSQL. Each "sidecar" here is the set of objects one sidecar process would hold (its own
 * Redis connection, pg pool and invalidation publisher); no sidecar processes are started.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidationPublisher } from '../../sidecar/src/invalidation/invalidation-publisher.js';
import { parseInvalidation } from '../../common/src/invalidation-message.js';
import { createPostgresPool, PostgresOrigin } from '../../sidecar/src/origin/postgres-origin.js';
import { createRedisClient, whenReady } from '../../sidecar/src/redis/redis-client.js';
import { RedisL2 } from '../../sidecar/src/redis/redis-l2.js';
import { isL2Deleted, type L2Deleted, type L2Record } from '../../sidecar/src/tiers/tiered-cache.js';
import { ReadThrough } from '../../sidecar/src/write/read-through.js';
import { VersionedRecords } from '../../sidecar/src/redis/versioned-records.js';
import { WriteAroundPolicy } from '../../sidecar/src/write/write-around.js';
import { WriteThroughPolicy } from '../../sidecar/src/write/write-through.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

/** The value bytes of an L2 answer (undefined for a miss or a DELETE's tombstone). */
function bodyOf(r: L2Record | L2Deleted | null): Buffer | undefined {
  return r === null || isL2Deleted(r) ? undefined : r.body;
}

const CHANNEL = 'ripplecache:it-write-policies';
let redisServer: RedisProcess;
let pgServer: PostgresServer;
let admin: pg.Pool;
let raw: Redis;
let subscriber: Redis;
const messages: string[] = [];
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  [redisServer, pgServer] = await Promise.all([startRedis(), startPostgres()]);
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => {});
  raw = new Redis(redisServer.port, '127.0.0.1');
  subscriber = new Redis(redisServer.port, '127.0.0.1');
  await subscriber.subscribe(CHANNEL);
  subscriber.on('message', (_c: string, m: string) => messages.push(m));
});

afterAll(async () => {
  for (const c of clients) await c.close();
  raw?.disconnect();
  subscriber?.disconnect();
  await admin?.end();
  await Promise.all([redisServer?.stop(), pgServer?.stop()]);
});

/** The objects of one sidecar. */
async function sidecar(name: string) {
  const redis = createRedisClient({ url: redisServer.url, timeoutMs: 1000, name });
  redis.on('error', () => {});
  await whenReady(redis, 5000);
  const records = new VersionedRecords({ client: redis, channel: CHANNEL });
  const origin = new PostgresOrigin({ pool: createPostgresPool({ url: pgServer.url, timeoutMs: 2000, max: 4 }) });
  const publisher = new InvalidationPublisher(name);
  const invalidated: string[] = [];
  const deps = {
    origin,
    records,
    versions: records,
    publisher,
    invalidateLocal: (keys: readonly string[]) => invalidated.push(...keys),
  };
  const l2 = new RedisL2({
    primary: redis,
    channel: CHANNEL,
    replicaUrls: [],
    password: undefined,
    timeoutMs: 1000,
    onError: () => {},
  });
  const s = {
    redis,
    records,
    origin,
    publisher,
    invalidated,
    l2,
    through: new WriteThroughPolicy(deps),
    around: new WriteAroundPolicy(deps),
    readThrough: new ReadThrough({ origin, records, defaultTTLSeconds: 300 }),
    close: async () => {
      await origin.close();
      redis.disconnect();
    },
  };
  clients.push(s);
  return s;
}

const text = (s: string) => ({ body: Buffer.from(s), contentType: 'text/plain' });

async function dbRow(key: string): Promise<{ value: string | null; version: number } | undefined> {
  const r = await admin.query<{ value: Buffer | null; version: string }>(
    'SELECT value, version FROM cache_entries WHERE key = $1',
    [key],
  );
  const row = r.rows[0];
  return row && { value: row.value?.toString() ?? null, version: Number(row.version) };
}

describe('versions', () => {
  it('are strictly increasing across sidecars and stay ahead of earlier ones after Redis loses the counter', async () => {
    const a = await sidecar('v-a');
    const b = await sidecar('v-b');
    const got = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? a : b).records.nextVersion()));
    expect(new Set(got).size).toBe(got.length);
    expect(got.every((v) => Number.isSafeInteger(v) && v > 1.6e15)).toBe(true);
    // Each connection's replies come back in the order its commands ran on the primary.
    const fromA = got.filter((_, i) => i % 2 === 1);
    expect(fromA).toEqual([...fromA].sort((x, y) => x - y));
    const before = Math.max(...got);
    await raw.flushall();
    expect(await a.records.nextVersion()).toBeGreaterThan(before);
  });
});

describe('versioned records', () => {
  it('are replaced only by newer versions; a tombstone admits the value of its own version', async () => {
    const s = await sidecar('rec');
    const published = messages.length;
    expect(await s.records.fill('r1', text('v10'), 60, 10, s.publisher.keys(['r1']))).toBe(true);
    expect(bodyOf(await s.l2.get('r1'))?.toString()).toBe('v10');
    expect(await s.records.fill('r1', text('v9'), 60, 9, s.publisher.keys(['r1']))).toBe(false);
    expect(await s.records.fill('r1', text('v10-again'), 60, 10)).toBe(false);
    expect((await s.records.read('r1'))?.value?.body.toString()).toBe('v10');
    // Refused fills still published their invalidation: no gap in the sender's sequence.
    await waitFor('two invalidations', async () => messages.length >= published + 2, 5000, 10);
    expect(
      messages
        .slice(published)
        .map((m) => parseInvalidation(m))
        .map((m) => m.seq),
    ).toEqual([1, 2]);

    expect(await s.records.tombstone('r1', 11)).toBe(true);
    expect(await s.l2.get('r1')).toBeNull(); // S's reader sees a miss
    const tomb = await s.records.read('r1');
    expect(tomb?.version).toBe(11);
    expect(tomb?.value).toBeUndefined();
    expect(tomb?.pttlMs).toBeGreaterThan(0);
    expect(await s.records.fill('r1', text('v10-late'), 60, 10)).toBe(false); // an older read-through
    expect(await s.records.fill('r1', text('v11'), 60, 11)).toBe(true); // the row the tombstone stands for
    expect(await s.records.tombstone('r1', 11)).toBe(false);
    expect(bodyOf(await s.l2.get('r1'))?.toString()).toBe('v11');

    // A record written without a version (no origin configured) counts as version 0.
    await s.l2.set('r2', text('plain'), 60, s.publisher.keys(['r2']));
    expect(await s.records.fill('r2', text('versioned'), 60, 1)).toBe(true);
    expect((await s.records.read('r2'))?.version).toBe(1);
  });

  it('settle gives a pinned record its TTL while it holds that version, and stores it again when gone or older', async () => {
    const s = await sidecar('settle');
    await s.records.fill('p1', text('pinned'), 0, 50);
    expect((await s.records.read('p1'))?.pttlMs).toBe(-1);
    expect(await s.records.settle([{ key: 'p1', version: 49, ttlMs: 60_000, value: text('older') }])).toEqual({
      settled: 0,
      repaired: [],
    });
    expect((await s.records.read('p1'))?.pttlMs).toBe(-1);
    expect(await s.records.settle([{ key: 'p1', version: 50, ttlMs: 60_000, value: text('pinned') }])).toEqual({
      settled: 1,
      repaired: [],
    });
    expect((await s.records.read('p1'))?.pttlMs).toBeGreaterThan(50_000);
    // Gone (invalidated with tier all), or refilled from an older row: stored again at the flushed version.
    await raw.del('rc:p1');
    await s.records.fill('p2', text('old-row'), 300, 10);
    const r = await s.records.settle([
      { key: 'p1', version: 50, ttlMs: 60_000, value: text('pinned') },
      { key: 'p2', version: 11, ttlMs: 60_000, value: text('flushed') },
      { key: 'p3', version: 12, ttlMs: 60_000 },
    ]);
    expect(r.settled).toBe(0);
    expect([...r.repaired].sort()).toEqual(['p1', 'p2', 'p3']);
    expect((await s.records.read('p1'))?.value?.body.toString()).toBe('pinned');
    expect(await s.records.read('p2')).toMatchObject({ version: 11, value: { body: Buffer.from('flushed') } });
    expect((await s.records.read('p3'))?.version).toBe(12);
    expect((await s.records.read('p3'))?.value).toBeUndefined();
  });

  it('a superseded write replaces a record at its version or older by an invalidation, never a newer one', async () => {
    const s = await sidecar('supersede');
    const published = messages.length;
    // Older than the superseded write: replaced by an invalidation tombstone (reads go to the database).
    await s.records.fill('s1', text('older'), 300, 10);
    expect(await s.records.supersede('s1', 20, s.publisher.keys(['s1']))).toBe(true);
    const tomb = await s.records.read('s1');
    expect(tomb).toMatchObject({ version: 20 });
    expect(tomb?.value).toBeUndefined();
    expect(tomb?.deleted).toBeUndefined();
    expect(tomb?.pttlMs).toBeGreaterThan(0);
    expect(await s.l2.get('s1')).toBeNull(); // a miss: the reader goes to the database
    expect(await s.records.fill('s1', text('late'), 300, 15)).toBe(false); // an older read-through
    expect(await s.records.fill('s1', text('row'), 300, 900)).toBe(true); // the database's row
    // Newer than the superseded write (a concurrent newer write): left alone; published either way.
    expect(await s.records.supersede('s1', 30, s.publisher.keys(['s1']))).toBe(false);
    expect((await s.records.read('s1'))?.value?.body.toString()).toBe('row');
    await waitFor('both invalidations', async () => messages.length >= published + 2, 5000, 10);
    // No record: an invalidation tombstone all the same (refuses fills older than the write).
    expect(await s.records.supersede('s0', 5)).toBe(true);
    expect(await s.records.read('s0')).toMatchObject({ version: 5 });

    // In settle: the write-back flusher's superseded writes, pinned records and DELETE tombstones alike.
    await s.records.fill('s2', text('journaled'), 0, 40);
    await s.records.tombstone('s3', 41, '', true);
    await s.records.fill('s4', text('newer'), 0, 99);
    const r = await s.records.settle([
      { key: 's2', version: 40, ttlMs: 60_000, value: text('journaled'), superseded: true },
      { key: 's3', version: 41, ttlMs: 60_000, superseded: true },
      { key: 's4', version: 42, ttlMs: 60_000, superseded: true },
    ]);
    expect([...r.repaired].sort()).toEqual(['s2', 's3']);
    for (const key of ['s2', 's3']) {
      const rec = await s.records.read(key);
      expect(rec?.value).toBeUndefined();
      expect(rec?.deleted).toBeUndefined();
      expect(rec?.pttlMs).toBeGreaterThan(0);
    }
    expect(await s.records.read('s4')).toMatchObject({ version: 99, pttlMs: -1 });
  });
});

describe('write-through', () => {
  it('writes the database, then Redis at the same version, then invalidates', async () => {
    const s = await sidecar('wt');
    const before = messages.length;
    await s.through.put('wt/1', text('hello'), 120);
    const row = await dbRow('wt/1');
    const rec = await s.records.read('wt/1');
    expect(row?.value).toBe('hello');
    expect(rec?.version).toBe(row?.version);
    expect(rec?.value?.body.toString()).toBe('hello');
    expect(rec?.pttlMs).toBeGreaterThan(100_000);
    expect(s.invalidated).toContain('wt/1');
    await waitFor('the invalidation', async () => messages.slice(before).some((m) => m.includes('"wt/1"')), 5000, 10);

    await s.through.delete('wt/1');
    expect(await dbRow('wt/1')).toMatchObject({ value: null });
    const del = await s.l2.get('wt/1'); // the DELETE's tombstone, marked with its version
    expect(del).toEqual({ deleted: expect.any(Number), version: (del as L2Deleted).deleted });
    expect(await s.readThrough.load('wt/1')).toBeNull();
  });

  it('returns the database error and leaves the cache unchanged when PostgreSQL is down', async () => {
    const s = await sidecar('wt-down');
    await s.through.put('wt/2', text('kept'), 120);
    const rec = await s.records.read('wt/2');
    const seq = s.publisher.lastSeq;
    await pgServer.stopServer();
    try {
      await expect(s.through.put('wt/2', text('lost'), 120)).rejects.toMatchObject({ code: 'OriginUnavailable' });
    } finally {
      await pgServer.startServer();
    }
    const after = await s.records.read('wt/2');
    expect(after?.version).toBe(rec?.version);
    expect(after?.value).toEqual(rec?.value);
    expect(s.publisher.lastSeq).toBe(seq); // no invalidation sent, no sequence number used
    expect((await dbRow('wt/2'))?.value).toBe('kept');
  });

  it('two sidecars writing one key concurrently never leave Redis older than the database', async () => {
    const a = await sidecar('wt-a');
    const b = await sidecar('wt-b');
    const writes: { value: string; start: number; end: number }[] = [];
    const worker = async (s: Awaited<ReturnType<typeof sidecar>>, name: string) => {
      for (let i = 0; i < 150; i++) {
        const value = `${name}-${i}`;
        const start = performance.now();
        await s.through.put('hot', text(value), 300);
        writes.push({ value, start, end: performance.now() });
      }
    };
    await Promise.all([worker(a, 'a'), worker(a, 'a2'), worker(b, 'b'), worker(b, 'b2')]);
    const row = await dbRow('hot');
    const rec = await a.records.read('hot');
    expect(rec?.version).toBe(row?.version);
    expect(rec?.value?.body.toString()).toBe(row?.value);
    // The final value is one no other write followed in real time (linearizable register).
    const final = writes.find((w) => w.value === row?.value);
    expect(final).toBeDefined();
    expect(writes.some((w) => w.start > (final?.end ?? Infinity))).toBe(false);
    // And a write made after all of them is what both hold.
    await b.through.put('hot', text('last'), 300);
    expect((await dbRow('hot'))?.value).toBe('last');
    expect(bodyOf(await a.l2.get('hot'))?.toString()).toBe('last');
  });
});

describe('write-around and read-through', () => {
  it('writes only the database and leaves a tombstone; the next read fills Redis from the row', async () => {
    const s = await sidecar('wa');
    await s.through.put('wa/1', text('cached-old'), 300);
    await s.around.put('wa/1', text('fresh'), 300);
    const row = await dbRow('wa/1');
    expect(row?.value).toBe('fresh');
    expect(await s.l2.get('wa/1')).toBeNull();
    expect(s.invalidated.filter((k) => k === 'wa/1')).toHaveLength(2);
    const loaded = await s.readThrough.load('wa/1');
    expect(loaded).toMatchObject({ version: row?.version, filled: true });
    expect(loaded?.value.body.toString()).toBe('fresh');
    const rec = await s.records.read('wa/1');
    expect(rec?.value?.body.toString()).toBe('fresh');
    expect(rec?.pttlMs).toBeGreaterThan(290_000); // defaultTTLSeconds
  });

  it('a read-through that fetched the row before a write-around cannot put the old value back', async () => {
    const s = await sidecar('wa-race');
    await s.around.put('wa/2', text('v1'), 300);
    const stale = await s.origin.get('wa/2'); // the slow reader's database read...
    await s.around.put('wa/2', text('v2'), 300); // ...then a write lands...
    expect(stale).not.toBeNull();
    if (stale === null) return;
    expect(await s.records.fill('wa/2', stale, 300, stale.version)).toBe(false); // ...then the reader's fill
    expect(await s.l2.get('wa/2')).toBeNull();
    expect((await s.readThrough.load('wa/2'))?.value.body.toString()).toBe('v2');
    expect(bodyOf(await s.l2.get('wa/2'))?.toString()).toBe('v2');
  });

  it('read-through still answers from the database when Redis is down, without caching', async () => {
    const s = await sidecar('rt-down');
    await s.around.put('rt/1', text('db-value'), 300);
    await redisServer.kill();
    try {
      const loaded = await s.readThrough.load('rt/1');
      expect(loaded?.value.body.toString()).toBe('db-value');
      expect(loaded?.filled).toBe(false);
    } finally {
      await redisServer.start();
      await subscriber.subscribe(CHANNEL).catch(() => undefined);
    }
  });
});
