import { describe, expect, it } from 'vitest';
import { RedisUnavailableError } from '../errors.js';
import { InvalidationPublisher } from '../invalidation/invalidation-publisher.js';
import { ClockStore } from '../l1/clock-store.js';
import {
  TieredCache,
  type CacheValue,
  type L2Deleted,
  type L2Record,
  type L2Store,
  type LoadedOriginValue,
  type OriginLoader,
} from './tiered-cache.js';

/** An in-memory L2 (no fills: the loader's `filled` says whether "Redis" took a value). */
class MemoryL2 implements L2Store {
  available = true;
  fail = false;
  data = new Map<string, L2Record | L2Deleted>();
  async get(key: string): Promise<L2Record | L2Deleted | null> {
    if (this.fail) throw new RedisUnavailableError('down');
    return this.data.get(key) ?? null;
  }
  async set(): Promise<void> {}
  async delete(): Promise<number> {
    return 0;
  }
  async deleteAll(): Promise<number> {
    return 0;
  }
  async publish(): Promise<void> {}
}

/** An origin whose loads stay in the air until the test lands them. */
class ManualOrigin implements OriginLoader {
  rows = new Map<string, string>();
  /** Row versions (0 when not set). */
  versions = new Map<string, number>();
  loads = 0;
  filled = true;
  private pending: { key: string; resolve: (r: LoadedOriginValue | null) => void }[] = [];
  load(key: string): Promise<LoadedOriginValue | null> {
    this.loads++;
    return new Promise((resolve) => this.pending.push({ key, resolve }));
  }
  land(): void {
    const p = this.pending;
    this.pending = [];
    for (const { key, resolve } of p) {
      const row = this.rows.get(key);
      resolve(
        row === undefined
          ? null
          : {
              value: { body: Buffer.from(row), contentType: 'text/plain' },
              filled: this.filled,
              version: this.versions.get(key) ?? 0,
            },
      );
    }
  }
}

function setup(opts: { l2?: boolean; maxTTLMs?: number; ttlMs?: number } = {}) {
  let now = 1_000_000;
  const l2 = new MemoryL2();
  const origin = new ManualOrigin();
  const cache = new TieredCache({
    l1: new ClockStore<CacheValue>({ maxEntries: 100, maxBytes: 1e6 }),
    ...(opts.l2 === false ? {} : { l2 }),
    publisher: new InvalidationPublisher('me'),
    clock: () => now,
    l1MaxTTLMs: opts.maxTTLMs ?? 60_000,
    onDisconnect: 'drop',
    readThrough: origin,
    readThroughTTLMs: opts.ttlMs ?? 3_600_000,
  });
  if (opts.l2 !== false) cache.subscribed();
  return { cache, l2, origin, advance: (ms: number) => (now += ms) };
}

/** Lets pending promise callbacks run (the L2 read before the origin load). */
const tick = () => new Promise((r) => setImmediate(r));

describe('TieredCache read-through', () => {
  it('loads a miss of L1 and L2 from the origin once for concurrent readers, then serves L1', async () => {
    const { cache, origin } = setup();
    origin.rows.set('k', 'from-db');
    const reads = [cache.get('k'), cache.get('k'), cache.get('k')];
    await tick();
    origin.land();
    const results = await Promise.all(reads);
    expect(results.map((r) => [r.tier, r.value?.body.toString()])).toEqual([
      ['ORIGIN', 'from-db'],
      ['ORIGIN', 'from-db'],
      ['ORIGIN', 'from-db'],
    ]);
    expect(origin.loads).toBe(1);
    expect((await cache.get('k')).tier).toBe('L1');
  });

  it("a DELETE's tombstone in Redis reads as absent without asking the origin (which still has the row)", async () => {
    const { cache, l2, origin } = setup();
    origin.rows.set('k', 'deleted-but-not-flushed');
    origin.versions.set('k', 5);
    l2.data.set('k', { deleted: 9, version: 9 });
    expect(await cache.get('k')).toEqual({ tier: 'none' });
    expect(origin.loads).toBe(0);
    expect(await cache.ttlMs('k')).toBe(-2);
  });

  it("a later invalidation over a DELETE's tombstone: the origin answers, but a row older than the delete is absent", async () => {
    const { cache, l2, origin } = setup();
    origin.rows.set('k', 'the-deleted-row');
    origin.versions.set('k', 5);
    l2.data.set('k', { deleted: 9, version: 12 }); // the bridge relayed a newer write of another cluster
    const first = cache.get('k');
    await tick();
    origin.land();
    expect(await first).toEqual({ tier: 'none' });
    expect(origin.loads).toBe(1);
    // Once the newer write is in the database, its row answers.
    origin.rows.set('k', 'newer');
    origin.versions.set('k', 12);
    const second = cache.get('k');
    await tick();
    origin.land();
    expect((await second).value?.body.toString()).toBe('newer');
  });

  it("a reader that saw the DELETE's tombstone does not take the deleted row from a flight started before", async () => {
    const { cache, l2, origin } = setup();
    origin.rows.set('k', 'old');
    origin.versions.set('k', 5);
    const before = cache.get('k'); // L2 miss: starts an origin flight
    await tick();
    l2.data.set('k', { deleted: 9, version: 12 });
    const after = cache.get('k'); // sees the tombstone, joins the flight in the air
    await tick();
    origin.land();
    expect((await before).value?.body.toString()).toBe('old'); // it read before the delete
    expect(await after).toEqual({ tier: 'none' });
  });

  it('reports a miss when the origin has no row', async () => {
    const { cache, origin } = setup();
    const r = cache.get('none');
    await tick();
    origin.land();
    expect(await r).toEqual({ tier: 'none' });
  });

  it('does not store in L1 a load its key was invalidated during, nor one Redis refused', async () => {
    const { cache, origin } = setup();
    origin.rows.set('k', 'old');
    const r = cache.get('k');
    await tick();
    cache.invalidateKeys(['k']); // a write landed while the database read was in the air
    origin.land();
    expect((await r).tier).toBe('ORIGIN');
    const again = cache.get('k');
    await tick();
    origin.filled = false; // Redis holds a newer version than this row
    origin.land();
    expect((await again).tier).toBe('ORIGIN');
    const third = cache.get('k');
    await tick();
    expect(origin.loads).toBe(3); // nothing was stored in L1
    origin.land();
    await third;
  });

  it('answers from the origin when Redis is down, without storing in L1', async () => {
    const { cache, l2, origin } = setup();
    l2.fail = true;
    origin.rows.set('k', 'v');
    const r = cache.get('k');
    await tick();
    origin.land();
    expect((await r).tier).toBe('ORIGIN');
    const r2 = cache.get('k');
    await tick();
    origin.land();
    expect((await r2).tier).toBe('ORIGIN');
    expect(origin.loads).toBe(2);
  });

  it('in L1-only mode caps the L1 entry at the default TTL and l1.maxTTL', async () => {
    const { cache, origin, advance } = setup({ l2: false, maxTTLMs: 0, ttlMs: 5_000 });
    origin.rows.set('k', 'v');
    const r = cache.get('k');
    await tick();
    origin.land();
    expect((await r).tier).toBe('ORIGIN');
    advance(4_999);
    expect((await cache.get('k')).tier).toBe('L1');
    advance(1);
    const miss = cache.get('k');
    await tick();
    expect(origin.loads).toBe(2);
    origin.land();
    await miss;
  });
});
