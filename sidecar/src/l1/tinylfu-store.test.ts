import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../operator/src/api/v1alpha1/types.js';
import { prng } from '../../../test/fixtures/prng.js';
import { SIDECAR_DEFAULTS } from '../config-defaults.js';
import { createL1Store } from './create-l1-store.js';
import { ClockStore } from './clock-store.js';
import { FrequencySketch, hashKey } from './frequency-sketch.js';
import { EntryMeta } from './l1-store.js';
import { TinyLfuStore } from './tinylfu-store.js';

const NEVER = Infinity;

/** Skewed keys: about 1 / rank popularity over `n` keys. */
function skewed(n: number, seed: number): () => string {
  const rnd = prng(seed);
  return () => `k${Math.floor(n ** rnd()) - 1}`;
}

describe('FrequencySketch', () => {
  it('the doorkeeper takes the first occurrence, the counters the next ones, capped at 15 (+1)', () => {
    const s = new FrequencySketch(1000);
    const h = hashKey('a');
    expect(s.frequency(h)).toBe(0);
    s.increment(h);
    expect(s.frequency(h)).toBe(1); // doorkeeper bit only
    s.increment(h);
    s.increment(h);
    expect(s.frequency(h)).toBe(3);
    for (let i = 0; i < 40; i++) s.increment(h);
    expect(s.frequency(h)).toBe(16);
    expect(s.frequency(hashKey('b'))).toBe(0);
  });

  it('halves every counter and clears the doorkeeper after a sample', () => {
    const s = new FrequencySketch(10); // sample: 100 additions
    const hot = hashKey('hot');
    for (let i = 0; i < 9; i++) s.increment(hot); // 1 door + 8 in the counters
    expect(s.frequency(hot)).toBe(9);
    expect(s.resets).toBe(0);
    for (let i = 0; s.resets === 0 && i < 1000; i++) s.increment(hashKey(`other${i}`));
    expect(s.resets).toBe(1);
    expect(s.frequency(hot)).toBe(4); // 8 halved, doorkeeper cleared
  });

  it('without a doorkeeper every occurrence reaches the counters', () => {
    const s = new FrequencySketch(1000, false);
    const h = hashKey('a');
    s.increment(h);
    expect(s.frequency(h)).toBe(1);
    for (let i = 0; i < 40; i++) s.increment(h);
    expect(s.frequency(h)).toBe(15);
  });
});

describe('W-TinyLFU (tinylfu)', () => {
  it('is the default policy of the sidecar and of the CRD', () => {
    expect(SIDECAR_DEFAULTS.l1.policy).toBe('tinylfu');
    expect(DEFAULTS.sidecar.l1.policy).toBe('tinylfu');
    expect(createL1Store('tinylfu', { maxEntries: 10, maxBytes: 10 })).toBeInstanceOf(TinyLfuStore);
  });

  it('keeps a frequently used set through a scan many times its size', () => {
    const s = new TinyLfuStore<number>({ maxEntries: 100, maxBytes: 1e9 });
    for (let i = 0; i < 90; i++) s.set(`hot${i}`, i, 1, NEVER);
    for (let r = 0; r < 4; r++) for (let i = 0; i < 90; i++) s.get(`hot${i}`, 0);
    for (let i = 0; i < 1000; i++) if (s.get(`scan${i}`, 0) === undefined) s.set(`scan${i}`, i, 1, NEVER);
    let kept = 0;
    for (let i = 0; i < 90; i++) if (s.peek(`hot${i}`, 0) === i) kept++;
    expect(kept).toBe(90);
    expect(s.size).toBe(100);
    expect(s.evictions).toBe(990);
  });

  it('admits a newcomer once it is used more than main’s victim', () => {
    const s = new TinyLfuStore<number>({ maxEntries: 10, maxBytes: 1e9, adaptiveWindow: false });
    for (let i = 0; i < 10; i++) s.set(`old${i}`, i, 1, NEVER); // each seen once
    s.set('new', 1, 1, NEVER);
    for (let i = 0; i < 3; i++) s.get('new', 0); // seen 4 times
    // Push it out of the 1-entry window: it wins the duel against probation's LRU entry.
    s.set('next', 1, 1, NEVER);
    expect(s.peek('new', 0)).toBe(1);
    expect(s.size).toBe(10);
    // A key seen once loses the same duel: `next` leaves when `later` arrives.
    s.set('later', 1, 1, NEVER);
    expect(s.peek('next', 0)).toBeUndefined();
    expect(s.peek('later', 0)).toBe(1);
    expect(s.frequencyOf('new')).toBeGreaterThan(s.frequencyOf('old0'));
  });

  it('a hit in probation promotes to protected, bounded to 80 % of main', () => {
    const s = new TinyLfuStore<number>({ maxEntries: 100, maxBytes: 1e9, adaptiveWindow: false });
    for (let i = 0; i < 100; i++) s.set(`k${i}`, i, 1, NEVER);
    expect(s.segmentSizes).toEqual({ window: 1, probation: 99, protected: 0 });
    for (let i = 0; i < 99; i++) s.get(`k${i}`, 0);
    const sizes = s.segmentSizes;
    expect(sizes.protected).toBe(79); // 80 % of the 99 main entries
    expect(sizes.window + sizes.probation + sizes.protected).toBe(100);
  });

  it('a hit in protected sets a bit and moves nothing; demotion gives a hit entry a second chance', () => {
    const s = new TinyLfuStore<number>({ maxEntries: 10, maxBytes: 1e9, adaptiveWindow: false });
    for (let i = 0; i < 10; i++) s.set(`k${i}`, i, 1, NEVER); // window: k9; probation: k0..k8
    for (let i = 0; i < 7; i++) s.get(`k${i}`, 0); // protected (at most 7): k0..k6
    const order = ['k9', 'k7', 'k8', 'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    expect(s.keysInEvictionOrder()).toEqual(order);
    s.get('k0', 0); // exact LRU would move k0 to protected's head
    expect(s.keysInEvictionOrder()).toEqual(order);
    // k7's promotion overflows protected: k0 (hit) goes round again, k1 (not hit) is demoted to probation.
    s.get('k7', 0);
    expect(s.keysInEvictionOrder()).toEqual(['k9', 'k8', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k0']);
    expect(s.segmentSizes).toEqual({ window: 1, probation: 2, protected: 7 });
  });

  it('buffered hits give the same decisions as hits applied one by one', () => {
    // The diagnostics getters drain the hit buffer; reading one after every operation applies each hit
    // at once. Both stores must end identical, through evictions, overwrites, deletes and expiry.
    const run = (drainEachOp: boolean) => {
      const s = new TinyLfuStore<number>({ maxEntries: 200, maxBytes: 20_000 });
      const rnd = prng(5);
      const next = skewed(2_000, 9);
      let hits = 0;
      for (let op = 0; op < 60_000; op++) {
        const now = op >> 4;
        const k = op % 11 === 0 ? `scan${op}` : next();
        const r = rnd();
        if (r < 0.02) s.delete(k);
        else if (r < 0.04) s.set(k, op, 1 + Math.floor(rnd() * 200), now + 1 + Math.floor(rnd() * 500));
        else if (s.get(k, now) !== undefined) hits++;
        else s.set(k, op, 1 + Math.floor(rnd() * 200), rnd() < 0.5 ? NEVER : now + Math.floor(rnd() * 500));
        if (op % 997 === 0) s.sweep(now, 50);
        if (drainEachOp) void s.segmentSizes;
      }
      return { hits, order: s.keysInEvictionOrder(), window: s.windowMaximum, evictions: s.evictions };
    };
    const once = run(true);
    expect(once.hits).toBeGreaterThan(10_000);
    expect(once.evictions).toBeGreaterThan(1_000);
    expect(run(false)).toEqual(once);
  });

  it('hill climbing moves the window and keeps the segments consistent', () => {
    const run = (adaptiveWindow: boolean) => {
      const s = new TinyLfuStore<number>({ maxEntries: 500, maxBytes: 1e9, adaptiveWindow });
      const next = skewed(20_000, 11);
      for (let i = 0; i < 200_000; i++) {
        const k = i % 7 === 0 ? `scan${i}` : next();
        if (s.get(k, 0) === undefined) s.set(k, i, 1, NEVER);
        if (i % 10_000 === 0) {
          const z = s.segmentSizes;
          expect(z.window + z.probation + z.protected).toBe(s.size);
          expect(z.window).toBeLessThanOrEqual(s.windowMaximum);
        }
      }
      return s;
    };
    expect(run(false).windowMaximum).toBe(5);
    const adaptive = run(true);
    expect(adaptive.windowMaximum).not.toBe(5);
    expect(adaptive.size).toBe(500);
  });

  it('keeps the byte bound, one duel per eviction', () => {
    const s = new TinyLfuStore<string>({ maxEntries: 100, maxBytes: 1000 });
    let evicted = 0;
    for (let i = 0; i < 300; i++) {
      const r = s.set(`k${i}`, 'v', 10 + (i % 5) * 40, NEVER);
      expect(r).toBeGreaterThanOrEqual(0);
      evicted += r;
      expect(s.bytes).toBeLessThanOrEqual(1000);
    }
    expect(s.evictions).toBe(evicted);
    expect(s.size).toBe(300 - evicted);
  });
});

describe('lru as CLOCK (second chance)', () => {
  it('a hit moves nothing: used entries keep their insertion order among themselves', () => {
    const s = new ClockStore<string>({ maxEntries: 4, maxBytes: 100 });
    for (const k of ['a', 'b', 'c', 'd']) s.set(k, k, 1, NEVER);
    s.get('c', 0);
    s.get('a', 0); // exact LRU would now evict b, d, c, a; CLOCK: b, d, then a before c
    expect(s.keysInEvictionOrder()).toEqual(['b', 'd', 'a', 'c']);
    s.set('e', 'e', 1, NEVER); // a gets its second chance (to the back), b goes
    s.set('f', 'f', 1, NEVER); // c gets its second chance, after e; d goes
    expect(s.keysInEvictionOrder()).toEqual(['a', 'e', 'c', 'f']);
    s.set('g', 'g', 1, NEVER);
    expect(s.peek('a', 0)).toBeUndefined();
    expect(s.peek('c', 0)).toBe('c');
  });

  it('an entry used again after its second chance survives another turn', () => {
    const s = new ClockStore<number>({ maxEntries: 3, maxBytes: 100 });
    for (const k of ['a', 'b', 'c']) s.set(k, 0, 1, NEVER);
    s.get('a', 0);
    s.set('d', 0, 1, NEVER); // a: second chance; b goes
    s.get('a', 0);
    s.set('e', 0, 1, NEVER); // c goes
    s.set('f', 0, 1, NEVER); // a: another chance; d goes
    expect(s.keysInEvictionOrder().sort()).toEqual(['a', 'e', 'f']);
  });
});

describe('EntryMeta (compact expiry and size)', () => {
  const all = () => true;

  it('keeps expiries exact when a later one moves the base', () => {
    const m = new EntryMeta(4);
    m.setExpiry(0, 1000, 1, all);
    m.setExpiry(1, 1000 + 2e9, 2, all); // 2e9 ms later: past the first base's range (2^30 ms)
    expect(m.expired(0, 999)).toBe(false);
    expect(m.expired(0, 1000)).toBe(true);
    expect(m.expired(1, 1000 + 2e9 - 1)).toBe(false);
    expect(m.expired(1, 1000 + 2e9)).toBe(true);
    m.setExpiry(2, Infinity, 3, all);
    expect(m.expired(2, 1e15)).toBe(false);
  });

  it('when expiries spread over more than 2^31 ms, the one that does not fit expires early, never late', () => {
    const m = new EntryMeta(4);
    m.setExpiry(0, 0, 1, all);
    m.setExpiry(1, 2.5e9, 2, all);
    expect(m.expired(0, 0)).toBe(true);
    expect(m.expired(0, -1)).toBe(false);
    expect(m.expiresAt(1)).toBeLessThan(2.5e9);
    expect(m.expired(1, 2.5e9)).toBe(true);
  });

  it('rounds down to the ms, and moves the base past an earlier expiry', () => {
    const m = new EntryMeta(2);
    m.setExpiry(0, 1000.9, 1, all);
    expect(m.expired(0, 1000)).toBe(true);
    m.setExpiry(1, 1000 - 2e9, 2, all);
    expect(m.expired(1, 1000 - 2e9 - 1)).toBe(false);
    expect(m.expired(1, 1000 - 2e9)).toBe(true);
    expect(m.expired(0, 999)).toBe(false);
  });

  it('keeps each flag bit apart from the expiry, across a move of the base and a growth', () => {
    const m = new EntryMeta(4);
    m.setExpiry(0, 1000, 1, all);
    m.setExpiry(1, Infinity, 2, all);
    m.setFlag(0, true);
    m.setFlag(1, true);
    expect([m.flag(0), m.flag(1), m.flag(2)]).toEqual([true, true, false]);
    expect(m.expired(0, 999)).toBe(false);
    expect(m.expired(0, 1000)).toBe(true);
    expect(m.expired(1, 1e15)).toBe(false);
    m.setExpiry(2, 1000 + 2e9, 3, all); // moves the base
    expect(m.flag(0)).toBe(true);
    expect(m.flag(2)).toBe(false);
    expect(m.expiresAt(0)).toBe(1000);
    expect(m.expiresAt(1)).toBe(Infinity);
    expect(m.expired(0, 999)).toBe(false);
    expect(m.expired(0, 1000)).toBe(true);
    m.grow(8);
    expect([m.flag(0), m.flag(1)]).toEqual([true, true]);
    m.setFlag(0, false);
    expect(m.flag(0)).toBe(false);
    expect(m.expiresAt(0)).toBe(1000);
    m.setExpiry(1, 5000, 3, all); // a new expiry clears the flag
    expect(m.flag(1)).toBe(false);
  });

  it('stores sizes in 16 bits until a larger one comes, then widens', () => {
    const m = new EntryMeta(4);
    m.setSize(0, 65_535);
    m.setSize(1, 70_000);
    m.setSize(2, 2 ** 31);
    expect([m.size(0), m.size(1), m.size(2)]).toEqual([65_535, 70_000, 2 ** 31]);
    m.grow(8);
    expect(m.size(1)).toBe(70_000);
  });
});
