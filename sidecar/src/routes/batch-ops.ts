/**
 * The body of `POST /v1/batch` (batch-route.ts), checked. Pure.
 *
 *   {"ops": [
 *     {"op": "get", "key": "user:1"},
 *     {"op": "put", "key": "user:2", "value": "…", "encoding": "utf8" | "base64", "contentType": "…", "ttl": 60},
 *     {"op": "delete", "key": "user:3"}
 *   ]}
 *
 * A body that is not such an object, or holds no operation, is refused whole (400 `InvalidBody`); more
 * than {@link BATCH_MAX_OPS} operations is 413 `BatchTooLarge`. Each operation is then checked on its
 * own, with the rules and stable codes of the single-key API: a bad key is `InvalidKey`, a bad `ttl`
 * `InvalidTTL`, a value over `--max-value-bytes` `ValueTooLarge`, anything else about the operation
 * `InvalidRequest`. An operation that fails its check is answered with its error and the others still run.
 */
import {
  BatchTooLargeError,
  ERROR_CODES,
  InvalidRequestError,
  InvalidTTLError,
  SidecarError,
  ValueTooLargeError,
} from '../errors.js';
import { validateKey } from '../key.js';
import type { CacheValue } from '../tiers/tiered-cache.js';
import { MAX_TTL_SECONDS, TTL_RULE } from '../ttl.js';

/** Operations per batch at most. */
export const BATCH_MAX_OPS = 1000;
export { BATCH_MAX_BODY_BYTES } from '../plugins/error-handler.js';

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const MAX_CONTENT_TYPE_LENGTH = 256;
/** What a Content-Type header may hold (as Node's validateHeaderValue: no control characters but tab). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export type BatchOp =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: CacheValue; readonly ttlSeconds: number }
  | { readonly op: 'delete'; readonly key: string };

/** An operation that failed its check: answered with `error`, not run. */
export interface RefusedOp {
  readonly op: string | undefined;
  readonly key: string | undefined;
  readonly error: SidecarError;
}

export type CheckedOp = BatchOp | RefusedOp;

export interface BatchRules {
  maxValueBytes: number;
  defaultTTLSeconds: number;
  /** Throws InvalidKeyError for a key the origin could never store (absent: no origin). */
  originCheckKey?: (key: string) => void;
  /** Default {@link BATCH_MAX_OPS}. */
  maxOps?: number;
}

export function isRefused(op: CheckedOp): op is RefusedOp {
  return 'error' in op;
}

/** Checks a parsed JSON body; throws for a body refused whole, else one entry per operation, in order. */
export function checkBatch(body: unknown, rules: BatchRules): CheckedOp[] {
  const maxOps = rules.maxOps ?? BATCH_MAX_OPS;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError('the body must be a JSON object {"ops":[…]}', 'InvalidBody');
  }
  const extra = Object.keys(body).filter((k) => k !== 'ops');
  if (extra.length > 0) {
    throw new InvalidRequestError(`the body has unknown properties: ${extra.join(', ')} (only "ops")`, 'InvalidBody');
  }
  const ops = (body as { ops?: unknown }).ops;
  if (!Array.isArray(ops)) throw new InvalidRequestError('"ops" must be an array of operations', 'InvalidBody');
  if (ops.length === 0)
    throw new InvalidRequestError('"ops" is empty: a batch needs 1 operation or more', 'InvalidBody');
  if (ops.length > maxOps) {
    throw new BatchTooLargeError(`the batch has ${ops.length} operations; at most ${maxOps} are allowed`);
  }
  return ops.map((raw, i) => checkOp(raw, i, rules));
}

function checkOp(raw: unknown, i: number, rules: BatchRules): CheckedOp {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return refused(undefined, undefined, new InvalidRequestError(`ops[${i}] is not an object`));
  }
  const o = raw as Record<string, unknown>;
  const op = typeof o.op === 'string' ? o.op : undefined;
  const key = typeof o.key === 'string' ? o.key : undefined;
  try {
    if (op !== 'get' && op !== 'put' && op !== 'delete') {
      throw new InvalidRequestError(`ops[${i}].op must be "get", "put" or "delete"`);
    }
    const allowed = op === 'put' ? PUT_FIELDS : KEY_FIELDS;
    const unknown = Object.keys(o).filter((k) => !allowed.has(k));
    if (unknown.length > 0) {
      throw new InvalidRequestError(`ops[${i}] (${op}) has unknown properties: ${unknown.join(', ')}`);
    }
    if (key === undefined) throw new InvalidRequestError(`ops[${i}].key must be a string`);
    validateKey(key);
    rules.originCheckKey?.(key);
    if (op === 'get') return { op, key };
    if (op === 'delete') return { op, key };
    return { op, key, value: checkValue(o, i, rules.maxValueBytes), ttlSeconds: checkTTL(o.ttl, rules) };
  } catch (err) {
    if (err instanceof SidecarError) return refused(op, key, err);
    throw err;
  }
}

const KEY_FIELDS = new Set(['op', 'key']);
const PUT_FIELDS = new Set(['op', 'key', 'value', 'encoding', 'contentType', 'ttl']);

function refused(op: string | undefined, key: string | undefined, error: SidecarError): RefusedOp {
  return { op, key, error };
}

function checkValue(o: Record<string, unknown>, i: number, maxValueBytes: number): CacheValue {
  const encoding = o.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') {
    throw new InvalidRequestError(`ops[${i}].encoding must be "utf8" or "base64"`);
  }
  if (typeof o.value !== 'string') throw new InvalidRequestError(`ops[${i}].value must be a string`);
  if (encoding === 'base64' && (o.value.length % 4 !== 0 || !BASE64.test(o.value))) {
    throw new InvalidRequestError(`ops[${i}].value is not valid base64`);
  }
  // The size before decoding bounds the work: a UTF-8 string is at most 3 bytes per code unit.
  const bound = encoding === 'utf8' ? o.value.length * 3 : (o.value.length / 4) * 3;
  const bytes = bound <= maxValueBytes ? -1 : Buffer.byteLength(o.value, encoding);
  if (bytes > maxValueBytes) {
    throw new ValueTooLargeError(`the value is ${bytes} bytes; the limit is ${maxValueBytes} bytes`);
  }
  const contentType = o.contentType ?? DEFAULT_CONTENT_TYPE;
  if (typeof contentType !== 'string' || contentType.length === 0 || !HEADER_VALUE.test(contentType)) {
    throw new InvalidRequestError(`ops[${i}].contentType must be a non-empty string a header can carry`);
  }
  if (contentType.length > MAX_CONTENT_TYPE_LENGTH) {
    throw new InvalidRequestError(`ops[${i}].contentType is longer than ${MAX_CONTENT_TYPE_LENGTH} characters`);
  }
  return { body: Buffer.from(o.value, encoding), contentType };
}

function checkTTL(ttl: unknown, rules: BatchRules): number {
  if (ttl === undefined) return rules.defaultTTLSeconds;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    throw new InvalidTTLError(TTL_RULE.replace('in decimal digits only', 'as a JSON integer'));
  }
  return ttl;
}

/** One operation's answer in the response, in the order of the request's operations. */
export type BatchResult =
  | {
      status: 200;
      key: string;
      value: string;
      encoding: 'utf8' | 'base64';
      contentType: string;
      tier: string;
    }
  | { status: 204; key: string }
  | { status: number; key?: string; error: { code: string; message: string } };

/** The answer of an operation that ended with `err` (a SidecarError, or anything else: 500 Internal). */
export function errorResult(key: string | undefined, err: unknown): BatchResult {
  const e =
    err instanceof SidecarError
      ? { status: err.statusCode, code: err.code, message: err.message }
      : { status: ERROR_CODES.Internal, code: 'Internal', message: 'internal error' };
  return { status: e.status, ...(key === undefined ? {} : { key }), error: { code: e.code, message: e.message } };
}
