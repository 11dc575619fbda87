import { describe, expect, it } from 'vitest';
import { RedisUnavailableError } from '../errors.js';
import { InvalidationPublisher } from '../invalidation/invalidation-publisher.js';
import { ClockStore } from '../l1/clock-store.js';
import { TieredCache, type CacheValue, type L2Record, type L2Store, type OriginLoader } from './tiered-cache.js';

/** An in-memory L2 (no fills: the loader's `filled` says whether "Redis" took a value). */
class MemoryL2 implements L2Store {
  available = true;
  fail = false;
  data = new Map<string, L2Record>();
  async get(key: string): Promise<L2Record | null> {
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
  loads = 0;
  filled = true;
  private pending: { key: string; resolve: (r: { value: CacheValue; filled: boolean } | null) => void }[] = [];
  load(key: string): Promise<{ value: CacheValue; filled: boolean } | null> {
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
          : { value: { body: Buffer.from(row), contentType: 'text/plain' }, filled: this.filled },
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
