import { describe, expect, it } from 'vitest';
import { MAX_VISITED, parseInvalidation } from '../../../common/src/invalidation-message.js';
import {
  LocalMessageClassifier,
  PendingKeys,
  RelayedMessages,
  RoutedPendingKeys,
  forwardPlan,
  localRoute,
  makeRoute,
} from './relay-plan.js';

describe('LocalMessageClassifier', () => {
  it('relays local messages and never messages another bridge relayed here', () => {
    const c = new LocalMessageClassifier();
    expect(c.classify('{"v":1,"sender":"s","seq":1,"keys":["a","b"]}')).toEqual({
      kind: 'keys',
      keys: ['a', 'b'],
      gap: false,
    });
    expect(c.classify('{"v":1,"sender":"flush-cronjob","seq":1,"all":true}')).toEqual({ kind: 'all', gap: false });
    expect(c.classify('{"v":1,"sender":"bridge/x","seq":1,"keys":["a"],"origin":"ns/x"}')).toEqual({
      kind: 'relayed',
      message: { v: 1, sender: 'bridge/x', seq: 1, keys: ['a'], origin: 'ns/x' },
    });
    expect(c.classify('nope')).toMatchObject({ kind: 'malformed' });
  });

  it('reports a gap in a local sender, not in relayed senders', () => {
    const c = new LocalMessageClassifier();
    c.classify('{"v":1,"sender":"s","seq":1,"keys":["a"]}');
    expect(c.classify('{"v":1,"sender":"s","seq":2,"keys":["a"]}')).toMatchObject({ gap: false });
    expect(c.classify('{"v":1,"sender":"s","seq":5,"keys":["a"]}')).toMatchObject({ gap: true });
    c.classify('{"v":1,"sender":"b","seq":1,"keys":["a"],"origin":"o"}');
    expect(c.classify('{"v":1,"sender":"b","seq":9,"keys":["a"],"origin":"o"}')).toMatchObject({
      kind: 'relayed',
      message: { origin: 'o' },
    });
    c.reset();
    expect(c.classify('{"v":1,"sender":"s","seq":9,"keys":["a"]}')).toMatchObject({ gap: false });
  });

  it("tracks a Redis Cluster sidecar's messages per (sender, bucket): interleaved buckets are no gap", () => {
    const c = new LocalMessageClassifier();
    // Buckets 3 and 7 are numbered separately (and published by different primaries, so interleaved).
    expect(c.classify('{"v":1,"sender":"s","seq":1,"b":3,"keys":["a"]}')).toEqual({
      kind: 'keys',
      keys: ['a'],
      gap: false,
    });
    expect(c.classify('{"v":1,"sender":"s","seq":1,"b":7,"keys":["x"]}')).toMatchObject({ gap: false });
    expect(c.classify('{"v":1,"sender":"s","seq":2,"b":7,"keys":["x"]}')).toMatchObject({ gap: false });
    expect(c.classify('{"v":1,"sender":"s","seq":2,"b":3,"keys":["a"]}')).toMatchObject({ gap: false });
    // The sender's messages over several buckets (no `b`) are a sequence of their own.
    expect(c.classify('{"v":1,"sender":"s","seq":1,"keys":["a","x"]}')).toMatchObject({ gap: false });
    // A number missing in one bucket is a gap.
    expect(c.classify('{"v":1,"sender":"s","seq":4,"b":3,"keys":["a"]}')).toMatchObject({ gap: true });
    expect(c.classify('{"v":1,"sender":"s","seq":3,"b":7,"keys":["x"]}')).toMatchObject({ gap: false });
  });
});

describe('RelayedMessages', () => {
  it('numbers its messages from 1 and carries the route and the versions', () => {
    const m = new RelayedMessages('bridge/a');
    const route = localRoute('ns/a', ['ns/c', 'ns/b']);
    expect(parseInvalidation(m.keys(route, ['k'], [42]))).toEqual({
      v: 1,
      sender: 'bridge/a',
      seq: 1,
      keys: ['k'],
      vers: [42],
      origin: 'ns/a',
      visited: ['ns/a', 'ns/b', 'ns/c'],
    });
    expect(parseInvalidation(m.all(route))).toEqual({
      v: 1,
      sender: 'bridge/a',
      seq: 2,
      all: true,
      origin: 'ns/a',
      visited: ['ns/a', 'ns/b', 'ns/c'],
    });
  });
});

describe('PendingKeys', () => {
  it('keeps the highest version per key, in arrival order, and the oldest arrival of a batch', () => {
    const p = new PendingKeys(10);
    p.add('a', 5, 100);
    p.add('b', 7, 110);
    p.add('a', 3, 120);
    p.add('a', 9, 130);
    expect(p.take(1)).toEqual({ keys: ['a'], versions: [9], oldestReceivedMs: 100 });
    p.add('c', 1, 140);
    expect(p.take(10)).toEqual({ keys: ['b', 'c'], versions: [7, 1], oldestReceivedMs: 110 });
    expect(p.take(10)).toBeUndefined();
  });

  it('gives up past its bound, until cleared', () => {
    const p = new PendingKeys(2);
    p.add('a', 1, 0);
    p.add('b', 1, 0);
    p.add('a', 2, 0);
    expect(p.overflowed).toBe(false);
    p.add('c', 1, 0);
    expect(p.overflowed).toBe(true);
    expect(p.size).toBe(0);
    p.add('d', 1, 0);
    expect(p.size).toBe(0);
    p.clear();
    p.add('d', 1, 0);
    expect(p.take(5)?.keys).toEqual(['d']);
  });
});

describe('forwardPlan', () => {
  /** Delivers one write made in `origin` over `peers` (cluster → its peers); counts arrivals per cluster. */
  function deliver(peers: Record<string, string[]>, origin: string): Map<string, number> {
    const arrivals = new Map<string, number>();
    const queue: { at: string; route: { origin: string; visited: string[] } }[] = [];
    const first = localRoute(origin, peers[origin]!);
    for (const p of peers[origin]!) queue.push({ at: p, route: first });
    let steps = 0;
    while (queue.length > 0) {
      if (++steps > 1000) throw new Error('a loop');
      const { at, route } = queue.shift()!;
      arrivals.set(at, (arrivals.get(at) ?? 0) + 1);
      const plan = forwardPlan(at, peers[at] ?? [], route.origin, route.visited);
      for (const t of plan?.targets ?? []) queue.push({ at: t, route: plan!.route });
    }
    return arrivals;
  }

  it('takes a write around a ring of successors once, and never back to its origin', () => {
    const ring = { a: ['b'], b: ['c'], c: ['d'], d: ['a'] };
    for (const origin of Object.keys(ring)) {
      const arrivals = deliver(ring, origin);
      expect(arrivals.get(origin), `back into ${origin}`).toBeUndefined();
      expect([...arrivals.values()]).toEqual([1, 1, 1]);
    }
  });

  it('forwards nothing in a full mesh (the writer reached everyone), nor a one-hop message', () => {
    const mesh = { a: ['b', 'c'], b: ['a', 'c'], c: ['a', 'b'] };
    expect(deliver(mesh, 'a')).toEqual(
      new Map([
        ['b', 1],
        ['c', 1],
      ]),
    );
    expect(forwardPlan('b', ['a', 'c'], 'a', undefined)).toBeUndefined();
  });

  it('reaches every cluster of a ring with a chord exactly once', () => {
    const g = { a: ['b', 'c'], b: ['c'], c: ['d'], d: ['a'] };
    for (const origin of Object.keys(g)) {
      const arrivals = deliver(g, origin);
      expect(arrivals.get(origin)).toBeUndefined();
      expect(
        [...arrivals.values()].every((n) => n === 1),
        `from ${origin}: ${JSON.stringify([...arrivals])}`,
      ).toBe(true);
      expect(arrivals.size).toBe(3);
    }
  });

  it('adds the targets to the route; past the bound it forwards to as many as fit and names the others', () => {
    expect(forwardPlan('b', ['a', 'c', 'd'], 'a', ['a', 'b'])).toEqual({
      targets: ['c', 'd'],
      dropped: [],
      route: makeRoute('a', ['a', 'b', 'c', 'd']),
    });
    // a, b and 61 others: room for one more cluster in the route (64 at most).
    const many = Array.from({ length: 61 }, (_, i) => `x${i}`);
    const plan = forwardPlan('b', ['c', 'd', 'x1'], 'a', ['a', 'b', ...many]);
    expect(plan).toEqual({ targets: ['c'], dropped: ['d'], route: makeRoute('a', ['a', 'b', ...many, 'c']) });
    expect(plan!.route.visited).toHaveLength(MAX_VISITED);
    expect(() => parseInvalidation(new RelayedMessages('s').keys(plan!.route, ['k'], [1]))).not.toThrow();
    // No room at all: nothing forwarded, every unvisited peer named.
    const full = Array.from({ length: 63 }, (_, i) => `x${i}`);
    expect(forwardPlan('b', ['c', 'd'], 'a', full)).toMatchObject({ targets: [], dropped: ['c', 'd'] });
  });

  it('takes a write along a path longer than the bound once to each cluster it fits, and never loops', () => {
    // A ring of 70, each listing its successor: the route grows by one per hop.
    const n = 70;
    const name = (i: number) => `c${i % n}`;
    const g = Object.fromEntries(Array.from({ length: n }, (_, i) => [name(i), [name(i + 1)]]));
    let dropped = 0;
    const arrivals = new Map<string, number>();
    const queue: { at: string; route: { origin: string; visited: string[] } }[] = [];
    const first = localRoute('c0', g['c0']!);
    for (const p of g['c0']!) queue.push({ at: p, route: first });
    for (let steps = 0; queue.length > 0; steps++) {
      if (steps > 1000) throw new Error('a loop');
      const { at, route } = queue.shift()!;
      expect(route.visited.length).toBeLessThanOrEqual(MAX_VISITED);
      arrivals.set(at, (arrivals.get(at) ?? 0) + 1);
      const plan = forwardPlan(at, g[at]!, route.origin, route.visited);
      dropped += plan?.dropped.length ?? 0;
      for (const t of plan?.targets ?? []) queue.push({ at: t, route: plan!.route });
    }
    expect(arrivals.get('c0')).toBeUndefined();
    // c1 … c63: the route c0 … c63 is full; c63 does not forward to c64 and says so.
    expect(arrivals.size).toBe(MAX_VISITED - 1);
    expect([...arrivals.values()].every((k) => k === 1)).toBe(true);
    expect(arrivals.has('c64')).toBe(false);
    expect(dropped).toBe(1);
  });
});

describe('RoutedPendingKeys', () => {
  it('batches per route, takes routes in turn, and gives up past its bound', () => {
    const r1 = makeRoute('a', ['a', 'b']);
    const r2 = makeRoute('c', ['c', 'b']);
    const p = new RoutedPendingKeys(3);
    p.add(r1, 'k', 1, 10);
    p.add(r2, 'k', 5, 11);
    p.add(r1, 'k', 2, 12);
    p.add(r1, 'l', 3, 13);
    expect(p.size).toBe(3);
    expect(p.take(1)).toEqual({ route: r1, keys: ['k'], versions: [2], oldestReceivedMs: 10 });
    expect(p.take(5)).toEqual({ route: r2, keys: ['k'], versions: [5], oldestReceivedMs: 11 });
    expect(p.take(5)).toEqual({ route: r1, keys: ['l'], versions: [3], oldestReceivedMs: 13 });
    expect(p.take(5)).toBeUndefined();
    for (const k of ['w', 'x', 'y']) p.add(r1, k, 1, 0);
    expect(p.overflowed).toBe(false);
    p.add(r2, 'z', 1, 0);
    expect(p.overflowed).toBe(true);
    expect(p.take(5)).toBeUndefined();
    p.clear();
    p.add(r2, 'z', 1, 0);
    expect(p.take(5)?.keys).toEqual(['z']);
  });
});
