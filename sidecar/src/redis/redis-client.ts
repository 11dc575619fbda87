/**
 * ioredis connections, configured so that no request ever waits on Redis longer than the time box:
 * every command has `commandTimeout`, nothing queues while disconnected (`enableOfflineQueue: false`),
 * commands in the air when a connection drops fail at once (`maxRetriesPerRequest: 0`, no resend), and
 * the connection comes back by itself with capped exponential back-off.
 */
import { Redis } from 'ioredis';
import { backoffDelay, type Backoff } from '../../../common/src/backoff.js';
import {
  CacheFullError,
  RedisCommandError,
  RedisUnavailableError,
  SidecarError,
  StoredRecordInvalidError,
} from '../errors.js';

export interface RedisClientOptions {
  url: string;
  /** Overrides a password in the URL. */
  password?: string | undefined;
  /** Time box of each command, in ms. */
  timeoutMs: number;
  /** `CLIENT SETNAME`, so that operators (and tests) can find the connection in `CLIENT LIST`. */
  name: string;
}

/** Reconnect back-off: 50 ms doubling to 2 s, plus up to 50 ms of jitter. */
export const RECONNECT_BACKOFF: Backoff = { baseMs: 50, capMs: 2000, jitterMs: 50 };

/** Reconnect delay after the n-th failed attempt (n ≥ 1): {@link RECONNECT_BACKOFF}. */
export function reconnectDelay(attempt: number, jitter = Math.random()): number {
  return backoffDelay(RECONNECT_BACKOFF, attempt - 1, jitter);
}

export function createRedisClient(options: RedisClientOptions): Redis {
  return new Redis(options.url, {
    ...(options.password !== undefined ? { password: options.password } : {}),
    connectionName: options.name,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(1000, 4 * options.timeoutMs),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    retryStrategy: (times) => reconnectDelay(times),
  });
}

/** `host:port` of a client, for logs and the `consistency=all` report. */
export function nodeName(client: Redis): string {
  return `${client.options.host ?? '127.0.0.1'}:${client.options.port ?? 6379}`;
}

/** Resolves when the client is ready, or rejects after `timeoutMs`. */
export function whenReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new RedisUnavailableError(`${nodeName(client)} did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Errors that mean "Redis cannot serve this now" rather than "this request is wrong". */
const UNAVAILABLE_REPLIES = [
  'LOADING',
  'READONLY',
  'MASTERDOWN',
  'BUSY',
  'NOAUTH',
  'WRONGPASS',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'NOREPLICAS',
];

/** Maps an ioredis error to the API's error classes. */
/**
 * Runs one Redis call; a failure is reported to `onError` once (metrics) and rethrown as the
 * SidecarError {@link toSidecarError} makes of it, named by `what`.
 */
export async function callRedis<T>(what: string, fn: () => Promise<T>, onError: (err: unknown) => void): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    onError(err);
    throw toSidecarError(err, what);
  }
}

export function toSidecarError(err: unknown, what: string): SidecarError {
  if (err instanceof SidecarError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === 'ReplyError') {
    const first = e.message.split(' ', 1)[0] ?? '';
    if (first === 'OOM') return new CacheFullError(`${what}: Redis is full (maxmemory reached)`, { cause: e });
    if (first === 'WRONGTYPE')
      return new StoredRecordInvalidError(`${what}: the record in Redis was not written by a sidecar`, { cause: e });
    if (UNAVAILABLE_REPLIES.includes(first))
      return new RedisUnavailableError(`${what}: Redis answered ${first}`, { cause: e });
    return new RedisCommandError(`${what}: Redis answered an error`, { cause: e });
  }
  if (e.message === 'Command timed out') {
    return new RedisUnavailableError(`${what}: Redis did not answer in time`, { cause: e });
  }
  return new RedisUnavailableError(`${what}: Redis is not reachable`, { cause: e });
}
