/**
 * The application's database as the write policies see it: an "origin" holding, per key, the value
 * bytes, the content type and a per-key **version**. Implemented by `postgres-origin.ts` (a table) and
 * `http-origin.ts` (a service of the application's own).
 *
 * Versions. Every write carries a version: a positive integer that grows with the order in which the
 * writes were made (see `redis/versioned-records.ts`: microseconds of the Redis primary's clock, made
 * strictly increasing by a counter). An origin applies a write only when it is newer than what it holds
 * for the key, so re-applying a write (at-least-once delivery from the write-back journal) or applying an
 * older write late (a claimed entry of a dead sidecar) never goes backwards. A delete is a write too: it
 * leaves a tombstone that carries its version, so that an older write arriving late cannot resurrect
 * the key.
 *
 * Errors (API codes, errors.ts). {@link OriginUnavailableError}: the origin could not be reached or asked us to retry (a write
 * may be retried as is); {@link OriginRejectedError}: the origin refused this particular write or read
 * (retrying it will not help).
 */

import { SidecarError } from '../errors.js';

/** A value as stored in the origin. */
export interface OriginRecord {
  readonly body: Buffer;
  readonly contentType: string;
  /**
   * The version of the write that stored it; 0 when the origin does not know (an HTTP origin that does
   * not echo `X-Ripplecache-Version`).
   */
  readonly version: number;
}

/** One write in a batch: a value (`put`) or a tombstone (`delete`), with its version. */
export type OriginWrite =
  | {
      readonly op: 'put';
      readonly key: string;
      readonly version: number;
      readonly body: Buffer;
      readonly contentType: string;
    }
  | { readonly op: 'delete'; readonly key: string; readonly version: number };

/** The outcome of one write: stored, or skipped because the origin already held a newer version. */
export type WriteOutcome = 'applied' | 'superseded';

/** What {@link Origin.applyBatch} did. */
export interface BatchResult {
  /** Writes stored. */
  readonly applied: number;
  /** Writes skipped because the origin already held the same or a newer version. */
  readonly superseded: number;
  /** The keys whose write was stored (both origins report them). */
  readonly appliedKeys?: readonly string[];
}

/** Operation labels of `ripplecache_sidecar_origin_requests_total{op,outcome}`. */
export type OriginOperation = 'get' | 'put' | 'delete' | 'batch' | 'init';
/**
 * Outcome labels: `hit`/`miss` (get), `applied`/`superseded` (put, delete, batch), `ok` (init),
 * `unavailable`, `rejected`.
 */
export type OriginOutcome = 'hit' | 'miss' | 'applied' | 'superseded' | 'ok' | 'unavailable' | 'rejected';

/** Counters an origin reports to (metrics). */
export interface OriginEvents {
  /** One call to the origin and how it ended. */
  request(op: OriginOperation, outcome: OriginOutcome): void;
  /** Rows (or HTTP writes) the origin stored; one statement can store many. */
  rowsWritten(count: number): void;
}

export const NO_ORIGIN_EVENTS: OriginEvents = { request: () => {}, rowsWritten: () => {} };

export interface Origin {
  /** `postgres` or `http`, for logs and metrics. */
  readonly kind: 'postgres' | 'http';
  /** Where it is, with no password in it (for logs). */
  readonly description: string;
  /**
   * Prepares the origin (PostgreSQL: creates the table if absent and checks its columns). Called lazily
   * by every other method until it succeeds once; calling it eagerly surfaces configuration errors.
   */
  init(): Promise<void>;
  /** The stored value, or null when the key is absent or deleted. */
  get(key: string): Promise<OriginRecord | null>;
  /** Stores a value if `version` is newer than the stored one. */
  put(key: string, body: Buffer, contentType: string, version: number): Promise<WriteOutcome>;
  /** Deletes the key (leaves a tombstone at `version`) if `version` is newer than the stored one. */
  delete(key: string, version: number): Promise<WriteOutcome>;
  /**
   * Applies writes to distinct keys, each only if newer than what is stored. PostgreSQL: one statement in
   * one transaction (all or nothing). HTTP: one request per write (a failure may leave a prefix applied,
   * which re-applying makes good: writes are idempotent).
   */
  applyBatch(writes: readonly OriginWrite[]): Promise<BatchResult>;
  /**
   * Throws InvalidKeyError (400) when the origin could never store this key (PostgreSQL text cannot hold
   * NUL). Lets a PUT be refused at once rather than after it was journaled. (The origin's own methods
   * refuse such a key with {@link OriginRejectedError}.)
   */
  checkKey(key: string): void;
  /** Releases connections. */
  close(): Promise<void>;
}

/** The origin could not be reached in time or asked to retry (503). The write may be retried as is. */
export class OriginUnavailableError extends SidecarError {
  override readonly name = 'OriginUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('OriginUnavailable', message, options);
  }
}

/** The origin refused this write or read (502); retrying it unchanged will not help. */
export class OriginRejectedError extends SidecarError {
  override readonly name = 'OriginRejectedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('OriginRejected', message, options);
  }
}

/** True for an error after which the same call may succeed later. */
export function isRetryable(err: unknown): boolean {
  return !(err instanceof OriginRejectedError);
}

/**
 * Keeps, for each key, the write with the highest version (the last in journal order). Pure. Origins use
 * it defensively: one statement must not touch a row twice.
 */
export function latestPerKey(writes: readonly OriginWrite[]): OriginWrite[] {
  const byKey = new Map<string, OriginWrite>();
  for (const w of writes) {
    const seen = byKey.get(w.key);
    if (seen === undefined || w.version > seen.version) byKey.set(w.key, w);
  }
  return [...byKey.values()];
}
