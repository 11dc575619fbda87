/**
 * Errors with stable codes. Every error the HTTP API returns is one of these, rendered as
 * `{"error":{"code":"<code>","message":"..."}}` with `statusCode`. Codes are part of the API (v1):
 * never rename one, add new ones instead.
 */
import { inspect } from 'node:util';

/** The stable error codes of the sidecar HTTP API v1. */
export const ERROR_CODES = {
  InvalidKey: 400,
  InvalidTTL: 400,
  InvalidRequest: 400,
  InvalidBody: 400,
  BadRequest: 400,
  NotFound: 404,
  MethodNotAllowed: 405,
  RequestTimeout: 408,
  ValueTooLarge: 413,
  BatchTooLarge: 413,
  BodyTooLarge: 413,
  ExpectationFailed: 417,
  HeadersTooLarge: 431,
  Internal: 500,
  StoredRecordInvalid: 500,
  RedisError: 502,
  OriginRejected: 502,
  RedisUnavailable: 503,
  OriginUnavailable: 503,
  WriteBackBacklogFull: 503,
  ReplicationTimeout: 503,
  ShuttingDown: 503,
  CacheFull: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: an error the API reports with a stable code and an HTTP status. */
export class SidecarError extends Error {
  override readonly name: string = 'SidecarError';
  readonly code: ErrorCode;
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.statusCode = ERROR_CODES[code];
  }
}

/** The key is empty, longer than 1024 bytes, or not valid UTF-8. */
export class InvalidKeyError extends SidecarError {
  override readonly name = 'InvalidKeyError';
  constructor(message: string) {
    super('InvalidKey', message);
  }
}

/** `?ttl=` is not a whole number of seconds in the allowed range. */
export class InvalidTTLError extends SidecarError {
  override readonly name = 'InvalidTTLError';
  constructor(message: string) {
    super('InvalidTTL', message);
  }
}

/** A request body or query that does not match the API (other than key and TTL). */
export class InvalidRequestError extends SidecarError {
  override readonly name = 'InvalidRequestError';
  constructor(message: string, code: 'InvalidRequest' | 'InvalidBody' = 'InvalidRequest') {
    super(code, message);
  }
}

/** No tier holds the key. */
export class NotFoundError extends SidecarError {
  override readonly name = 'NotFoundError';
  constructor(message: string) {
    super('NotFound', message);
  }
}

/** The value is larger than `--max-value-bytes`. */
export class ValueTooLargeError extends SidecarError {
  override readonly name = 'ValueTooLargeError';
  constructor(message: string) {
    super('ValueTooLarge', message);
  }
}

/** `POST /v1/batch`: too many operations, or a body over the limit (the batch as a whole is refused). */
export class BatchTooLargeError extends SidecarError {
  override readonly name = 'BatchTooLargeError';
  constructor(message: string) {
    super('BatchTooLarge', message);
  }
}

/** A request body over its route's limit, other than a value (`ValueTooLarge`) or a batch (`BatchTooLarge`). */
export class BodyTooLargeError extends SidecarError {
  override readonly name = 'BodyTooLargeError';
  constructor(message: string) {
    super('BodyTooLarge', message);
  }
}

/**
 * Redis could not be reached in time (not connected, timed out, loading, read-only after a failover):
 * the request needed Redis and was not served. Retryable.
 */
export class RedisUnavailableError extends SidecarError {
  override readonly name = 'RedisUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RedisUnavailable', message, options);
  }
}

/**
 * With `--durability replicated`: no replica acknowledged the write within `--durability-timeout-ms`
 * (`WAIT 1` answered 0). The write was not acknowledged; it may still be in the primary (and, under
 * write-through or write-around, in the database): a retry writes it again at a newer version. Retryable.
 */
export class ReplicationTimeoutError extends SidecarError {
  override readonly name = 'ReplicationTimeoutError';
  constructor(message: string) {
    super('ReplicationTimeout', message);
  }
}

/** Redis answered with an error that is not about availability (e.g. WRONGTYPE). */
export class RedisCommandError extends SidecarError {
  override readonly name = 'RedisCommandError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RedisError', message, options);
  }
}

/** Redis refused a write because it is full (`maxmemory` with `noeviction`). */
export class CacheFullError extends SidecarError {
  override readonly name = 'CacheFullError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('CacheFull', message, options);
  }
}

/** The record stored under a key is not one the sidecar wrote (wrong Redis type or missing fields). */
export class StoredRecordInvalidError extends SidecarError {
  override readonly name = 'StoredRecordInvalidError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('StoredRecordInvalid', message, options);
  }
}

/** The sidecar received SIGTERM and no longer takes new work. */
export class ShuttingDownError extends SidecarError {
  override readonly name = 'ShuttingDownError';
  constructor() {
    super('ShuttingDown', 'the sidecar is shutting down');
  }
}

/**
 * A loggable description of an error: name, code, message and the chain of causes' messages, and nothing
 * else (with `stack`, its stack too: for errors that are bugs). ioredis attaches the failed command with its
 * arguments, which hold cached values, to its errors; logs must never contain values. Log it under a key
 * other than `err`: pino's `err` serializer would rebuild it as an error (type `Object`, an empty stack).
 */
export function describeError(err: unknown, options: { stack?: boolean } = {}): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const causes: string[] = [];
  for (let c: unknown = err.cause, depth = 0; c !== undefined && depth < 5; depth++) {
    causes.push(c instanceof Error ? `${c.name}: ${c.message}` : inspect(c, { depth: 2, breakLength: Infinity }));
    c = c instanceof Error ? c.cause : undefined;
  }
  const code = (err as { code?: unknown }).code;
  return {
    name: err.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: err.message,
    ...(causes.length > 0 ? { causes } : {}),
    ...(options.stack === true && err.stack ? { stack: err.stack } : {}),
  };
}
