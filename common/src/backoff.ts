/**
 * The one exponential back-off of both programs: `baseMs` doubling per step up to `capMs`, plus up to
 * `jitterMs` of jitter. Each caller keeps its own documented numbers (see the `*_BACKOFF` constants at
 * the call sites). Pure: the jitter is a number in [0, 1) passed in (default `Math.random()`).
 */

export interface Backoff {
  /** Delay of step 0, in ms. */
  baseMs: number;
  /** Largest delay before jitter, in ms. */
  capMs: number;
  /** Jitter added on top, at most this many ms (rounded down). Default 0: none. */
  jitterMs?: number;
}

/** Steps beyond this add nothing (2^62 × any positive base is past every cap) and keep the arithmetic finite. */
const MAX_STEP = 62;

/**
 * Delay before retry number `step` (0 for the first retry): `min(baseMs × 2^step, capMs)` plus
 * `floor(jitter × jitterMs)`. A negative or fractional step counts as its whole part, at least 0.
 */
export function backoffDelay(backoff: Backoff, step: number, jitter: number = Math.random()): number {
  const n = Math.min(Math.max(Math.floor(step), 0), MAX_STEP);
  return Math.min(backoff.baseMs * 2 ** n, backoff.capMs) + Math.floor(jitter * (backoff.jitterMs ?? 0));
}
