import { describe, expect, it } from 'vitest';
import type { L1Policy } from '../config-defaults.js';
import { createL1Store } from './create-l1-store.js';
import { LfuStore, LFU_MAX_FREQUENCY } from './lfu-store.js';
import type { L1Store } from './l1-store.js';
import { prng } from '../../../test/fixtures/prng.js';

const POLICIES: L1Policy[] = ['lru', 'lfu', 'fifo', 'ttl', 'tinylfu'];
const NEVER = Infinity;

function fill<V>(store: L1Store<V>, keys: string[], value: (k: string) => V, size = 1, exp = NEVER): void {
  for (const k of keys) store.set(k, value(k), size, exp);
}

describe.each(POLICIES)('L1 store %s (common behaviour)', (policy) => {
  it('stores, gets, replaces and deletes', () => {
    const s = createL1Store<string>(policy, { maxEntries: 10, maxBytes: 1000 });
    expect(s.set('a', 'A', 10, NEVER)).toBe(0);
    expect(s.get('a', 0)).toBe('A');
    s.set('a', 'A2', 30, NEVER);
    expect(s.get('a', 0)).toBe('A2');
    expect(s.size).toBe(1);
    expect(s.bytes).toBe(30);
    expect(s.delete('a')).toBe(true);
    expect(s.delete('a')).toBe(false);
    expect(s.get('a', 0)).toBeUndefined();
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('expires entries at expiresAt on the caller clock', () => {
    const s = createL1Store<string>(policy, { maxEntries: 10, maxBytes: 1000 });
    s.set('a', 'A', 1, 1000);
    expect(s.get('a', 999)).toBe('A');
    expect(s.peek('a', 999)).toBe('A');
    expect(s.get('a', 1000)).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('never holds more than maxEntries', () => {
    const s = createL1Store<number>(policy, { maxEntries: 100, maxBytes: 1e9 });
    for (let i = 0; i < 1000; i++) {
      s.set(`k${i}`, i, 1, 1e6 + (i % 37));
      if (i % 3 === 0) s.get(`k${i - 50}`, 0);
      expect(s.size).toBeLessThanOrEqual(100);
    }
    expect(s.size).toBe(100);
    expect(s.evictions).toBe(900);
  });

  it('keeps the byte bound with large values', () => {
    const s = createL1Store<string>(policy, { maxEntries: 1000, maxBytes: 10_000 });
    for (let i = 0; i < 200; i++) {
      s.set(`k${i}`, 'v', 1500 + (i % 7) * 100, NEVER);
      expect(s.bytes).toBeLessThanOrEqual(10_000);
    }
    expect(s.size).toBeGreaterThan(0);
  });

  it('refuses an entry larger than maxBytes and drops the old one for that key', () => {
    const s = createL1Store<string>(policy, { maxEntries: 10, maxBytes: 100 });
    s.set('a', 'small', 10, NEVER);
    s.set('b', 'other', 10, NEVER);
    expect(s.set('a', 'huge', 101, NEVER)).toBe(-1);
    expect(s.get('a', 0)).toBeUndefined();
    expect(s.get('b', 0)).toBe('other');
    expect(s.bytes).toBe(10);
  });

  it('clear empties the store and it keeps working', () => {
    const s = createL1Store<number>(policy, { maxEntries: 4, maxBytes: 100 });
    fill(s, ['a', 'b', 'c', 'd'], () => 1);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
    expect(s.get('a', 0)).toBeUndefined();
    fill(s, ['e', 'f', 'g', 'h', 'i'], () => 2);
    expect(s.size).toBe(4);
    expect(s.get('i', 0)).toBe(2);
  });

  it('sweeps expired entries incrementally', () => {
    const s = createL1Store<number>(policy, { maxEntries: 100, maxBytes: 1e6 });
    for (let i = 0; i < 50; i++) s.set(`k${i}`, i, 1, i % 2 === 0 ? 100 : NEVER);
    expect(s.sweep(200, 10)).toBeGreaterThan(0);
    let removed = 0;
    for (let round = 0; round < 10; round++) removed += s.sweep(200, 10);
    expect(s.size).toBe(25);
    expect(removed).toBeLessThanOrEqual(25);
  });

  it('grows its arrays past the initial capacity', () => {
    const s = createL1Store<number>(policy, { maxEntries: 5000, maxBytes: 1e9 });
    for (let i = 0; i < 5000; i++) s.set(`k${i}`, i, 1, 1e6 + i);
    expect(s.size).toBe(5000);
    for (let i = 0; i < 5000; i += 97) expect(s.get(`k${i}`, 0)).toBe(i);
    expect(s.evictions).toBe(0);
  });

  it('agrees with a reference model on random operations', () => {
    const rnd = prng(42);
    const s = createL1Store<number>(policy, { maxEntries: 50, maxBytes: 2000 });
    const model = new Map<string, { v: number; size: number; exp: number }>();
    let now = 0;
    for (let op = 0; op < 20_000; op++) {
      now += rnd() < 0.1 ? 1 : 0;
      const k = `k${Math.floor(rnd() * 120)}`;
      const r = rnd();
      if (r < 0.5) {
        const got = s.get(k, now);
        const m = model.get(k);
        if (got !== undefined) {
          // Anything returned must be what was last stored, and not expired.
          expect(m).toBeDefined();
          expect(got).toBe(m?.v);
          expect(m!.exp > now).toBe(true);
        }
      } else if (r < 0.9) {
        const size = 1 + Math.floor(rnd() * 100);
        const exp = now + 1 + Math.floor(rnd() * 200);
        s.set(k, op, size, exp);
        model.set(k, { v: op, size, exp });
      } else {
        s.delete(k);
        model.delete(k);
      }
      expect(s.size).toBeLessThanOrEqual(50);
      expect(s.bytes).toBeLessThanOrEqual(2000);
      expect(s.keysInEvictionOrder().length).toBe(s.size);
    }
    // 20,000 checked operations: about 1 s on an idle core, several times that on a loaded CI machine.
  }, 30_000);
});

describe('LRU eviction order', () => {
  it('evicts the least recently used entry', () => {
    const s = createL1Store<string>('lru', { maxEntries: 3, maxBytes: 100 });
    fill(s, ['a', 'b', 'c'], (k) => k);
    s.get('a', 0); // order, oldest first: b c a
    expect(s.keysInEvictionOrder()).toEqual(['b', 'c', 'a']);
    s.set('d', 'd', 1, NEVER);
    expect(s.get('b', 0)).toBeUndefined();
    expect(s.keysInEvictionOrder()).toEqual(['c', 'a', 'd']);
  });

  it('evicts as many as needed for the byte bound, oldest first', () => {
    const s = createL1Store<string>('lru', { maxEntries: 10, maxBytes: 100 });
    fill(s, ['a', 'b', 'c', 'd'], (k) => k, 25);
    s.get('a', 0);
    expect(s.set('big', 'x', 60, NEVER)).toBe(3); // b, c, d go; a (recent) stays
    expect(s.keysInEvictionOrder()).toEqual(['a', 'big']);
  });
});

describe('overwrites', () => {
  it.each(POLICIES)('%s: an overwrite keeps size, bytes and order consistent', (policy) => {
    const s = createL1Store<string>(policy, { maxEntries: 3, maxBytes: 100 });
    s.set('a', 'a', 10, 1000);
    s.set('b', 'b', 10, 2000);
    s.set('c', 'c', 10, 3000);
    s.set('a', 'a2', 5, 4000); // smaller: in place
    expect(s.bytes).toBe(25);
    expect(s.size).toBe(3);
    expect(s.get('a', 0)).toBe('a2');
    if (policy !== 'lfu' && policy !== 'tinylfu') expect(s.keysInEvictionOrder()).toEqual(['b', 'c', 'a']);
    s.set('d', 'd', 10, 5000);
    // W-TinyLFU: c, the window's LRU entry, must beat probation's LRU entry (b) to stay; with equal
    // frequencies it does not, so c goes. Every other policy evicts b.
    expect(s.peek(policy === 'tinylfu' ? 'c' : 'b', 0)).toBeUndefined();
    expect(s.peek('a', 0)).toBe('a2');
    expect(s.peek('d', 0)).toBe('d');
    expect(s.size).toBe(3);
  });
});

describe('FIFO eviction order', () => {
  it('evicts the oldest insertion regardless of hits', () => {
    const s = createL1Store<string>('fifo', { maxEntries: 3, maxBytes: 100 });
    fill(s, ['a', 'b', 'c'], (k) => k);
    s.get('a', 0);
    s.get('a', 0);
    s.set('d', 'd', 1, NEVER);
    expect(s.get('a', 0)).toBeUndefined();
    expect(s.keysInEvictionOrder()).toEqual(['b', 'c', 'd']);
  });

  it('an overwrite counts as a new insertion', () => {
    const s = createL1Store<string>('fifo', { maxEntries: 3, maxBytes: 100 });
    fill(s, ['a', 'b', 'c'], (k) => k);
    s.set('a', 'a2', 1, NEVER);
    expect(s.keysInEvictionOrder()).toEqual(['b', 'c', 'a']);
  });
});

describe('TTL eviction order', () => {
  it('evicts the entry closest to expiry', () => {
    const s = createL1Store<string>('ttl', { maxEntries: 3, maxBytes: 100 });
    s.set('late', 'x', 1, 3000);
    s.set('soon', 'x', 1, 1000);
    s.set('never', 'x', 1, NEVER);
    expect(s.keysInEvictionOrder()).toEqual(['soon', 'late', 'never']);
    s.set('mid', 'x', 1, 2000);
    expect(s.get('soon', 0)).toBeUndefined();
    expect(s.keysInEvictionOrder()).toEqual(['mid', 'late', 'never']);
  });

  it('keeps heap order through deletes in the middle', () => {
    const s = createL1Store<number>('ttl', { maxEntries: 64, maxBytes: 1e6 });
    const rnd = prng(7);
    const exps = new Map<string, number>();
    for (let i = 0; i < 64; i++) {
      const e = Math.floor(rnd() * 1000);
      s.set(`k${i}`, i, 1, e);
      exps.set(`k${i}`, e);
    }
    for (let i = 0; i < 64; i += 3) {
      s.delete(`k${i}`);
      exps.delete(`k${i}`);
    }
    const order = s.keysInEvictionOrder().map((k) => exps.get(k) as number);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // Evictions come out in expiry order.
    const evicted: number[] = [];
    for (let i = 0; i < 10; i++) {
      const before = new Set(s.keysInEvictionOrder());
      s.set(`new${i}`, 0, 1, 5000);
      for (const k of before) if (s.peek(k, 0) === undefined && k.startsWith('k')) evicted.push(exps.get(k) as number);
    }
    expect(evicted).toEqual([...evicted].sort((a, b) => a - b));
  });
});

describe('LFU', () => {
  it('evicts the least frequently used entry, the least recent among equals', () => {
    const s = new LfuStore<string>({ maxEntries: 3, maxBytes: 100 });
    fill(s, ['a', 'b', 'c'], (k) => k);
    s.get('a', 0);
    s.get('a', 0);
    s.get('c', 0);
    // b: 1 use, c: 2, a: 3
    expect(s.keysInEvictionOrder()).toEqual(['b', 'c', 'a']);
    s.set('d', 'd', 1, NEVER);
    expect(s.get('b', 0)).toBeUndefined();
    // d (new, 1 use) goes next, before c and a.
    s.set('e', 'e', 1, NEVER);
    expect(s.peek('d', 0)).toBeUndefined();
    expect(s.keysInEvictionOrder()).toEqual(['e', 'c', 'a']);
  });

  it('resists a scan: one-off keys evict each other, not the hot set', () => {
    const s = new LfuStore<number>({ maxEntries: 10, maxBytes: 1e6, agingPeriod: 1000 });
    for (let i = 0; i < 5; i++) s.set(`hot${i}`, i, 1, NEVER);
    for (let r = 0; r < 3; r++) for (let i = 0; i < 5; i++) s.get(`hot${i}`, 0);
    // A scan of 90 one-off keys (9x the capacity) within one aging period.
    for (let i = 0; i < 90; i++) s.set(`scan${i}`, i, 1, NEVER);
    for (let i = 0; i < 5; i++) expect(s.peek(`hot${i}`, 0)).toBe(i);
  });

  it('caps counters at the maximum', () => {
    const s = new LfuStore<number>({ maxEntries: 10, maxBytes: 1e6, agingPeriod: 1e9 });
    s.set('a', 1, 1, NEVER);
    for (let i = 0; i < 100; i++) s.get('a', 0);
    expect(s.frequencyOf('a')).toBe(LFU_MAX_FREQUENCY);
  });

  it("ages: counters halve every agingPeriod operations, so yesterday's hot keys lose protection", () => {
    const s = new LfuStore<number>({ maxEntries: 4, maxBytes: 1e6, agingPeriod: 100 });
    s.set('old-hot', 0, 1, NEVER);
    for (let i = 0; i < 14; i++) s.get('old-hot', 0);
    expect(s.frequencyOf('old-hot')).toBe(15);
    // New traffic: three keys used steadily; old-hot is never touched again.
    for (const k of ['x', 'y', 'z']) s.set(k, 0, 1, NEVER);
    for (let round = 0; round < 400; round++) for (const k of ['x', 'y', 'z']) s.get(k, 0);
    expect(s.agings).toBeGreaterThanOrEqual(4);
    expect(s.frequencyOf('old-hot')).toBe(1);
    expect(s.frequencyOf('x')).toBeGreaterThan(1);
    // A newcomer now evicts old-hot, the least used.
    s.set('new', 0, 1, NEVER);
    s.get('new', 0);
    s.set('newer', 0, 1, NEVER);
    expect(s.peek('old-hot', 0)).toBeUndefined();
    expect(s.peek('x', 0)).toBe(0);
  });

  it('keeps the counter of an overwritten key', () => {
    const s = new LfuStore<number>({ maxEntries: 10, maxBytes: 1e6, agingPeriod: 1e9 });
    s.set('a', 1, 1, NEVER);
    s.get('a', 0);
    s.get('a', 0);
    s.set('a', 2, 1, NEVER); // same size: overwritten in place
    expect(s.frequencyOf('a')).toBe(3);
    s.set('b', 1, 1, NEVER);
    expect(s.frequencyOf('b')).toBe(1);
    s.set('a', 3, 5, NEVER); // larger: removed and inserted again
    expect(s.frequencyOf('a')).toBe(3);
    expect(s.peek('a', 0)).toBe(3);
    s.set('c', 1, 1, NEVER);
    expect(s.frequencyOf('c')).toBe(1);
  });
});
