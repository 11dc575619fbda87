/**
 * Synthetic access traces for the hit-ratio benchmark, and Belady's optimal hit count as the upper bound.
 * Deterministic (seeded).
 */

import { prng } from '../test/fixtures/prng.js';

export { prng };

/** Zipf(s) sampler over ranks 0..n-1 (rank 0 the most popular). */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    sum += 1 / (r + 1) ** s;
    cdf[r] = sum;
  }
  for (let r = 0; r < n; r++) cdf[r] = (cdf[r] as number) / sum;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * Key ids. Zipf keys are 0..keySpace-1, scattered over the id space so that rank and id are unrelated;
 * one-off scan keys are keySpace, keySpace+1, ... (each used once).
 */
export function zipfTrace(length: number, keySpace: number, s: number, seed: number): Int32Array {
  const random = prng(seed);
  const next = zipfSampler(keySpace, s, random);
  const perm = permutation(keySpace, random);
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = perm[next()] as number;
  return out;
}

/** Zipf requests interleaved with bursts of one-off keys: `zipfRun` Zipf requests, then `scanRun` new keys. */
export function zipfWithScansTrace(
  length: number,
  keySpace: number,
  s: number,
  seed: number,
  zipfRun: number,
  scanRun: number,
): Int32Array {
  const random = prng(seed);
  const next = zipfSampler(keySpace, s, random);
  const perm = permutation(keySpace, random);
  const out = new Int32Array(length);
  let oneOff = keySpace;
  for (let i = 0; i < length;) {
    for (let j = 0; j < zipfRun && i < length; j++) out[i++] = perm[next()] as number;
    for (let j = 0; j < scanRun && i < length; j++) out[i++] = oneOff++;
  }
  return out;
}

/**
 * Zipf + loop + scans: repeated blocks of `zipfRun` Zipf requests, `loopRun` requests cycling over
 * `loopKeys` loop keys (the cycle continues from block to block), and `scanRun` one-off keys. Loop keys
 * are keySpace .. keySpace+loopKeys-1; one-off keys follow them.
 */
export function zipfLoopScansTrace(
  length: number,
  keySpace: number,
  s: number,
  seed: number,
  zipfRun: number,
  loopRun: number,
  loopKeys: number,
  scanRun: number,
): Int32Array {
  const random = prng(seed);
  const next = zipfSampler(keySpace, s, random);
  const perm = permutation(keySpace, random);
  const out = new Int32Array(length);
  let loop = 0;
  let oneOff = keySpace + loopKeys;
  for (let i = 0; i < length;) {
    for (let j = 0; j < zipfRun && i < length; j++) out[i++] = perm[next()] as number;
    for (let j = 0; j < loopRun && i < length; j++) {
      out[i++] = keySpace + loop;
      loop = (loop + 1) % loopKeys;
    }
    for (let j = 0; j < scanRun && i < length; j++) out[i++] = oneOff++;
  }
  return out;
}

function permutation(n: number, random: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i] as number;
    p[i] = p[j] as number;
    p[j] = t;
  }
  return p;
}

/** Hits of Belady's optimal policy (evict the key used furthest in the future) with `capacity` entries. */
export function beladyHits(trace: Int32Array, capacity: number): number {
  const n = trace.length;
  const nextUse = new Int32Array(n);
  const last = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    const k = trace[i] as number;
    nextUse[i] = last.get(k) ?? n + i; // never again: beyond the end (distinct, so ties break by position)
    last.set(k, i);
  }
  // Max-heap of [nextUse, key] with lazy deletion: an entry is current if cached.get(key) === nextUse.
  const heapUse: number[] = [];
  const heapKey: number[] = [];
  const cached = new Map<number, number>();
  const push = (use: number, key: number) => {
    let i = heapUse.length;
    heapUse.push(use);
    heapKey.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((heapUse[p] as number) >= use) break;
      heapUse[i] = heapUse[p] as number;
      heapKey[i] = heapKey[p] as number;
      i = p;
    }
    heapUse[i] = use;
    heapKey[i] = key;
  };
  const pop = (): [number, number] => {
    const top: [number, number] = [heapUse[0] as number, heapKey[0] as number];
    const lastUse = heapUse.pop() as number;
    const lastKey = heapKey.pop() as number;
    const size = heapUse.length;
    if (size > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && (heapUse[c + 1] as number) > (heapUse[c] as number)) c++;
        if ((heapUse[c] as number) <= lastUse) break;
        heapUse[i] = heapUse[c] as number;
        heapKey[i] = heapKey[c] as number;
        i = c;
      }
      heapUse[i] = lastUse;
      heapKey[i] = lastKey;
    }
    return top;
  };
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const k = trace[i] as number;
    const use = nextUse[i] as number;
    if (cached.has(k)) {
      hits++;
    } else if (cached.size >= capacity) {
      for (;;) {
        const [u, key] = pop();
        if (cached.get(key) === u) {
          cached.delete(key);
          break;
        }
      }
    }
    cached.set(k, use);
    push(use, k);
  }
  return hits;
}
