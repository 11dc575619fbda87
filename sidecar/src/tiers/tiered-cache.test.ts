import { describe, expect, it } from 'vitest';
import { InvalidationPublisher } from '../invalidation/invalidation-publisher.js';
import { parseInvalidation } from '../../../common/src/invalidation-message.js';
import { ClockStore } from '../l1/clock-store.js';
import { RedisUnavailableError } from '../errors.js';
import type { OnDisconnect } from '../config-defaults.js';
import { TieredCache, type CacheValue, type L2Record, type L2Store } from './tiered-cache.js';

/** An L2 whose reads stay in the air until the test lands them. */
class FakeL2 implements L2Store {
  available = true;
  data = new Map<string, { value: CacheValue; pttlMs: number }>();
  published: string[] = [];
  gets = 0;
  fail = false;
  manual = false;
  private pending: { key: string; resolve: (r: L2Record | null) => void; reject: (e: Error) => void }[] = [];

  get(key: string): Promise<L2Record | null> {
    this.gets++;
    if (this.fail) return Promise.reject(new RedisUnavailableError('down'));
    if (!this.manual) return Promise.resolve(this.read(key));
    return new Promise((resolve, reject) => this.pending.push({ key, resolve, reject }));
  }

  /** Answers every pending read with what L2 holds now. */
  land(): void {
    const p = this.pending;
    this.pending = [];
    for (const r of p) r.resolve(this.read(r.key));
  }

  async set(key: string, value: CacheValue, ttlSeconds: number, invalidation: string): Promise<void> {
    if (this.fail) throw new RedisUnavailableError('down');
    this.data.set(key, { value, pttlMs: ttlSeconds > 0 ? ttlSeconds * 1000 : -1 });
    this.published.push(invalidation);
  }

  async delete(keys: readonly string[], invalidation: string): Promise<number> {
    if (this.fail) throw new RedisUnavailableError('down');
    let n = 0;
    for (const k of keys) if (this.data.delete(k)) n++;
    this.published.push(invalidation);
    return n;
  }

  async deleteAll(invalidation: string): Promise<number> {
    const n = this.data.size;
    this.data.clear();
    this.published.push(invalidation);
    return n;
  }

  async publish(invalidation: string): Promise<void> {
    if (this.fail) throw new RedisUnavailableError('down');
    this.published.push(invalidation);
  }

  private read(key: string): L2Record | null {
    const d = this.data.get(key);
    return d ? { ...d.value, pttlMs: d.pttlMs } : null;
  }
}

const v = (s: string): CacheValue => ({ body: Buffer.from(s), contentType: 'text/plain' });
const text = (r: { value?: CacheValue | undefined }) => r.value?.body.toString();

function setup(opts: { onDisconnect?: OnDisconnect; maxTTLMs?: number; l2?: boolean } = {}) {
  let now = 1_000_000;
  const drops: string[] = [];
  const l2 = new FakeL2();
  const cache = new TieredCache({
    l1: new ClockStore<CacheValue>({ maxEntries: 100, maxBytes: 1e6 }),
    ...(opts.l2 === false ? {} : { l2 }),
    publisher: new InvalidationPublisher('me'),
    clock: () => now,
    l1MaxTTLMs: opts.maxTTLMs ?? 60_000,
    onDisconnect: opts.onDisconnect ?? 'drop',
    events: { l1Evicted: () => {}, l1Dropped: (reason) => drops.push(reason), published: () => {} },
  });
  if (opts.l2 !== false) cache.subscribed();
  return { cache, l2, drops, advance: (ms: number) => (now += ms) };
}

describe('TieredCache read path', () => {
  it('reads L2 on a miss, then serves L1', async () => {
    const { cache, l2 } = setup();
    l2.data.set('k', { value: v('one'), pttlMs: -1 });
    expect((await cache.get('k')).tier).toBe('L2');
    const r = await cache.get('k');
    expect(r.tier).toBe('L1');
    expect(text(r)).toBe('one');
    expect(l2.gets).toBe(1);
  });

  it('reports a miss when no tier has the key', async () => {
    const { cache } = setup();
    expect(await cache.get('nope')).toEqual({ tier: 'none' });
  });

  it('caps an L1 entry at the remaining TTL in Redis', async () => {
    const { cache, l2, advance } = setup({ maxTTLMs: 60_000 });
    l2.data.set('k', { value: v('x'), pttlMs: 5_000 });
    await cache.get('k');
    advance(4_999);
    expect((await cache.get('k')).tier).toBe('L1');
    advance(1);
    expect((await cache.get('k')).tier).toBe('L2');
  });

  it('caps an L1 entry at l1.maxTTL', async () => {
    const { cache, l2, advance } = setup({ maxTTLMs: 2_000 });
    l2.data.set('k', { value: v('x'), pttlMs: -1 });
    await cache.get('k');
    advance(1_999);
    expect((await cache.get('k')).tier).toBe('L1');
    advance(1);
    expect((await cache.get('k')).tier).toBe('L2');
  });

  it('does not use L1 at all when l1.maxTTL is 0', async () => {
    const { cache, l2 } = setup({ maxTTLMs: 0 });
    l2.data.set('k', { value: v('x'), pttlMs: -1 });
    await cache.get('k');
    expect((await cache.get('k')).tier).toBe('L2');
    expect(cache.l1.size).toBe(0);
  });

  it('single-flight: concurrent misses cause one L2 read', async () => {
    const { cache, l2 } = setup();
    l2.manual = true;
    l2.data.set('k', { value: v('x'), pttlMs: -1 });
    const reads = Array.from({ length: 50 }, () => cache.get('k'));
    l2.land();
    const results = await Promise.all(reads);
    expect(l2.gets).toBe(1);
    expect(results.every((r) => text(r) === 'x')).toBe(true);
  });

  it('fill-after-invalidate guard: a read in the air when its key is invalidated is not stored in L1', async () => {
    const { cache, l2 } = setup();
    l2.manual = true;
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    const inAir = cache.get('k');
    // Another sidecar writes; its invalidation arrives before the old value lands.
    cache.invalidateKeys(['k']);
    l2.data.set('k', { value: v('new'), pttlMs: -1 });
    // A read that starts after the invalidation must not join the stale flight.
    const after = cache.get('k');
    l2.land();
    expect(text(await inAir)).toBe('new'); // (the fake lands both with the current data)
    expect(text(await after)).toBe('new');
    expect(l2.gets).toBe(2);
  });

  it('fill-after-invalidate guard with the old value landing late', async () => {
    const { cache, l2 } = setup();
    l2.manual = true;
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    const inAir = cache.get('k');
    l2.land(); // the reply is on its way with "old"...
    cache.invalidateKeys(['k']); // ...when the invalidation is processed first
    expect(text(await inAir)).toBe('old');
    expect(cache.l1.size).toBe(0);
  });

  it('a drop of L1 while a read is in the air also prevents the fill', async () => {
    const { cache, l2 } = setup();
    l2.manual = true;
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    const inAir = cache.get('k');
    l2.land();
    cache.dropAll('sequence-gap');
    await inAir;
    expect(cache.l1.size).toBe(0);
  });

  it('rejects with the L2 error when L2 is needed and unavailable', async () => {
    const { cache, l2 } = setup();
    l2.fail = true;
    await expect(cache.get('k')).rejects.toBeInstanceOf(RedisUnavailableError);
  });

  it('L1-only mode: put and get from L1, TTL capped by l1.maxTTL', async () => {
    const { cache, advance } = setup({ l2: false, maxTTLMs: 10_000 });
    await cache.put('k', v('x'), 3600);
    expect((await cache.get('k')).tier).toBe('L1');
    advance(10_000);
    expect((await cache.get('k')).tier).toBe('none');
  });
});

describe('TieredCache L1 copies', () => {
  it('stores its own copy of the bytes, not a view into a larger buffer', async () => {
    const { cache, l2 } = setup();
    const socketChunk = Buffer.from('xxxxHELLOxxxx');
    l2.data.set('k', { value: { body: socketChunk.subarray(4, 9), contentType: 't' }, pttlMs: -1 });
    await cache.get('k');
    const held = cache.l1.peek('k', 0);
    expect(held?.body.toString()).toBe('HELLO');
    expect(held?.body.buffer.byteLength).toBe(5);
  });

  it('L1-only mode: a value larger than the L1 byte bound is refused and the old one removed', async () => {
    const cache = new TieredCache({
      l1: new ClockStore<CacheValue>({ maxEntries: 10, maxBytes: 200 }),
      publisher: new InvalidationPublisher('me'),
      clock: () => 0,
      l1MaxTTLMs: 0,
      onDisconnect: 'drop',
    });
    await cache.put('k', v('small'), 0);
    await expect(cache.put('k', v('x'.repeat(300)), 0)).rejects.toThrow(/L1 byte bound/);
    expect((await cache.get('k')).tier).toBe('none');
  });
});

describe('TieredCache writes', () => {
  it('put writes to L2 with an invalidation message and drops the local L1 entry', async () => {
    const { cache, l2 } = setup();
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    expect(cache.l1.size).toBe(1);
    await cache.put('k', v('new'), 30);
    expect(cache.l1.size).toBe(0);
    expect(parseInvalidation(l2.published[0] ?? '')).toEqual({ v: 1, sender: 'me', seq: 1, keys: ['k'] });
    expect(text(await cache.get('k'))).toBe('new');
  });

  it('a failed put still invalidates the local entry', async () => {
    const { cache, l2 } = setup();
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    l2.fail = true;
    await expect(cache.put('k', v('new'), 30)).rejects.toBeInstanceOf(RedisUnavailableError);
    expect(cache.l1.size).toBe(0);
  });

  it('sequence numbers increase by one per message', async () => {
    const { cache, l2 } = setup();
    await cache.put('a', v('1'), 0);
    await cache.delete(['a']);
    await cache.invalidate({ all: true }, false);
    expect(l2.published.map((m) => parseInvalidation(m).seq)).toEqual([1, 2, 3]);
  });

  it('invalidate all with tier all empties L2 and L1', async () => {
    const { cache, l2 } = setup();
    l2.data.set('a', { value: v('1'), pttlMs: -1 });
    await cache.get('a');
    await cache.invalidate({ all: true }, true);
    expect(l2.data.size).toBe(0);
    expect(cache.l1.size).toBe(0);
  });
});

describe('TieredCache on a lost subscription', () => {
  it('drop: empties L1 at once and bypasses it until subscribed again', async () => {
    const { cache, l2, drops } = setup({ onDisconnect: 'drop' });
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    cache.subscriptionLost();
    expect(cache.l1.size).toBe(0);
    expect(drops).toContain('subscription-lost');
    l2.data.set('k', { value: v('new'), pttlMs: -1 }); // written while we were not listening
    expect((await cache.get('k')).tier).toBe('L2');
    expect(cache.l1.size).toBe(0); // not filled while unsubscribed
    l2.fail = true;
    await expect(cache.get('k')).rejects.toBeInstanceOf(RedisUnavailableError);
    l2.fail = false;
    cache.subscribed();
    expect(text(await cache.get('k'))).toBe('new');
    expect((await cache.get('k')).tier).toBe('L1');
  });

  it('a read started before the loss does not fill L1 after resubscription', async () => {
    const { cache, l2 } = setup();
    l2.manual = true;
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    const inAir = cache.get('k');
    cache.subscriptionLost();
    cache.subscribed();
    l2.land();
    await inAir;
    expect(cache.l1.size).toBe(0);
  });

  it('serve-stale: keeps L1, serves it marked L1-STALE only while Redis is unreachable, drops it on resubscription', async () => {
    const { cache, l2, drops } = setup({ onDisconnect: 'serve-stale', maxTTLMs: 60_000 });
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    cache.subscriptionLost();
    expect(cache.l1.size).toBe(1);
    // Redis still reachable: answer from Redis (fresh), do not fill.
    l2.data.set('k', { value: v('newer'), pttlMs: -1 });
    const fresh = await cache.get('k');
    expect(fresh.tier).toBe('L2');
    expect(text(fresh)).toBe('newer');
    // Redis unreachable: the old L1 entry, marked stale.
    l2.available = false;
    l2.fail = true;
    const stale = await cache.get('k');
    expect(stale.tier).toBe('L1-STALE');
    expect(text(stale)).toBe('old');
    await expect(cache.get('other')).rejects.toBeInstanceOf(RedisUnavailableError);
    // Back: L1 is dropped before anything is served from it again.
    l2.available = true;
    l2.fail = false;
    cache.subscribed();
    expect(drops).toContain('resubscribed');
    const after = await cache.get('k');
    expect(after.tier).toBe('L2');
    expect(text(after)).toBe('newer');
  });

  it('serve-stale: stale answers stop when the entry reaches l1.maxTTL', async () => {
    const { cache, l2, advance } = setup({ onDisconnect: 'serve-stale', maxTTLMs: 10_000 });
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    cache.subscriptionLost();
    l2.available = false;
    l2.fail = true;
    advance(9_999);
    expect((await cache.get('k')).tier).toBe('L1-STALE');
    advance(1);
    await expect(cache.get('k')).rejects.toBeInstanceOf(RedisUnavailableError);
  });

  it('serve-stale: an L2 error during a read falls back to the stale entry', async () => {
    const { cache, l2 } = setup({ onDisconnect: 'serve-stale' });
    l2.data.set('k', { value: v('old'), pttlMs: -1 });
    await cache.get('k');
    cache.subscriptionLost();
    l2.fail = true; // still "available" (e.g. a time-out)
    expect((await cache.get('k')).tier).toBe('L1-STALE');
  });
});
