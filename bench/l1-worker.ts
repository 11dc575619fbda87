/**
 * One L1 contender in a process of its own, for `bench/sidecar.bench.ts` section 1 (so that no other
 * cache's code or garbage shares the JIT and the heap). Prints one JSON line.
 *
 * Usage: node --expose-gc --import tsx bench/l1-worker.ts <contender> <get|mem>
 *   get: fills a cache of 10,000 entries, then times 10 M random gets (all hits) after two warm-up passes,
 *        then 2 M random sets over 20,000 keys into another 10,000-entry cache (half of them evict);
 *        reports M ops/s and CPU ns per operation (user + system from /proc/self/stat) of each.
 *   mem: heap + array-buffer growth of a full 100,000-entry cache, keys and value allocated before.
 */
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { createL1Store } from '../sidecar/src/l1/create-l1-store.js';

export const L1_CONTENDERS = ['lru-cache', 'lru-cache-ttl', 'map', 'lru', 'tinylfu', 'lfu', 'fifo', 'ttl'] as const;
export type L1Contender = (typeof L1_CONTENDERS)[number];

interface Cache {
  get(k: string): unknown;
  set(k: string): void;
  readonly size: number;
}

const VALUE = { body: Buffer.alloc(16), contentType: 'text/plain' };

function make(name: L1Contender, max: number, now: number): Cache {
  if (name === 'lru-cache' || name === 'lru-cache-ttl') {
    const c =
      name === 'lru-cache'
        ? new LRUCache<string, object>({ max })
        : new LRUCache<string, object>({ max, ttl: 3_600_000, maxSize: 2 ** 40, sizeCalculation: () => 1 });
    return {
      get: (k) => c.get(k),
      set: (k) => {
        c.set(k, VALUE);
      },
      get size() {
        return c.size;
      },
    };
  }
  if (name === 'map') {
    // The ceiling of every cache built on a `Map`: a bare lookup, and on a set of a new key into a full
    // map the oldest entry deleted (FIFO by the Map's own order), with no expiry, size or policy state.
    const m = new Map<string, object>();
    // A long-lived iterator is the FIFO hand (Map iterators follow deletions and insertions); a fresh
    // `m.keys()` per eviction would walk the deleted slots at the table's front every time. Made at the
    // first eviction: a live iterator keeps the Map's outgrown tables alive.
    let hand: MapIterator<string> | undefined;
    return {
      get: (k) => m.get(k),
      set: (k) => {
        if (m.size >= max && !m.has(k)) {
          let r = hand?.next();
          if (r === undefined || r.done === true) {
            hand = m.keys();
            r = hand.next();
          }
          m.delete(r.value as string);
        }
        m.set(k, VALUE);
      },
      get size() {
        return m.size;
      },
    };
  }
  const s = createL1Store<object>(name, { maxEntries: max, maxBytes: 2 ** 40 });
  return {
    get: (k) => s.get(k, now),
    set: (k) => {
      s.set(k, VALUE, 1, now + 3_600_000);
    },
    get size() {
      return s.size;
    },
  };
}

/** CPU time (user + system) of this process in ms, from /proc/self/stat (clock ticks of 10 ms). */
function cpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function randomIndices(count: number, range: number, seed: number): Uint32Array {
  const idx = new Uint32Array(count);
  let x = seed >>> 0;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    idx[i] = (x >>> 8) % range;
  }
  return idx;
}

function runGets(c: Cache, keys: string[], idx: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < idx.length; i++) if (c.get(keys[idx[i] as number] as string) !== undefined) n++;
  return n;
}

function runSets(c: Cache, keys: string[], idx: Uint32Array): void {
  for (let i = 0; i < idx.length; i++) c.set(keys[idx[i] as number] as string);
}

/**
 * Timed passes of 2 M gets: 10 M gets take 0.3–0.8 s here, so the CPU time, read in 10 ms clock ticks,
 * is known to within 1–3 %.
 */
const GET_PASSES = 5;

function benchGet(name: L1Contender): Record<string, number> {
  const N = 10_000;
  const OPS = 2_000_000;
  const now = Date.now();
  const keys = Array.from({ length: N }, (_, i) => `user:${i}:profile`);
  const c = make(name, N, now);
  for (const k of keys) c.set(k);
  const idx = randomIndices(OPS, N, 1);
  runGets(c, keys, idx); // warm-up: the JIT settles
  runGets(c, keys, idx);
  const cpu0 = cpuMs();
  const t0 = performance.now();
  let hits = 0;
  for (let pass = 0; pass < GET_PASSES; pass++) hits += runGets(c, keys, idx);
  const ms = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  if (hits !== GET_PASSES * OPS) throw new Error(`${name}: ${hits} hits of ${GET_PASSES * OPS}`);

  const setKeys = Array.from({ length: 2 * N }, (_, i) => `user:${i}:profile`);
  const setIdx = randomIndices(OPS, 2 * N, 2);
  const sc = make(name, N, now);
  runSets(sc, setKeys, setIdx); // warm-up, and the cache is full from here on
  const setCpu0 = cpuMs();
  const s0 = performance.now();
  runSets(sc, setKeys, setIdx);
  const setMs = performance.now() - s0;
  const setCpu = cpuMs() - setCpu0;
  return {
    mops: (GET_PASSES * OPS) / ms / 1000,
    cpuNsPerOp: (cpu * 1e6) / (GET_PASSES * OPS),
    setMops: OPS / setMs / 1000,
    setCpuNsPerOp: (setCpu * 1e6) / OPS,
  };
}

function benchMem(name: L1Contender): Record<string, number> {
  const M = 100_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const now = Date.now();
  const keys = Array.from({ length: M }, (_, i) => `user:${i}:profile`);
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  gc();
  gc();
  const before = used();
  const c = make(name, M, now);
  for (const k of keys) c.set(k);
  gc();
  gc();
  const after = used();
  if (c.size !== M) throw new Error(`${name}: not full`);
  return { bytesPerEntry: (after - before) / M };
}

const [name, mode] = process.argv.slice(2) as [L1Contender, 'get' | 'mem'];
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('l1-worker.ts')) {
  if (!L1_CONTENDERS.includes(name)) throw new Error(`unknown contender ${name}`);
  const result = mode === 'mem' ? benchMem(name) : benchGet(name);
  process.stdout.write(`${JSON.stringify({ name, mode, ...result })}\n`);
}
