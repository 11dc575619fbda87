/**
 * ioredis connections, configured so that no request ever waits on Redis longer than the time box:
 * every command has `commandTimeout`, nothing queues while disconnected (`enableOfflineQueue: false`),
 * commands in the air when a connection drops fail at once (`maxRetriesPerRequest: 0`, no resend), and
 * the connection comes back by itself with capped exponential back-off.
 */
import { Cluster, Redis } from 'ioredis';
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

/**
 * A connection to Redis: one server (standalone, a replication primary), or a Redis Cluster (ioredis'
 * Cluster client: commands routed by hash slot, MOVED/ASK redirections followed, the slot map refreshed).
 */
export type RedisClient = Redis | Cluster;

/** Reconnect back-off: 50 ms doubling to 2 s, plus up to 50 ms of jitter. */
export const RECONNECT_BACKOFF: Backoff = { baseMs: 50, capMs: 2000, jitterMs: 50 };

/** Reconnect delay after the n-th failed attempt (n ≥ 1): {@link RECONNECT_BACKOFF}. */
export function reconnectDelay(attempt: number, jitter = Math.random()): number {
  return backoffDelay(RECONNECT_BACKOFF, attempt - 1, jitter);
}

/** At most one reconnect per this many ms for READONLY answers ({@link readOnlyReconnector}). */
export const READONLY_RECONNECT_MS = 1000;

/**
 * ioredis' `reconnectOnError` for a connection to a primary: a READONLY answer (also inside a MULTI, or from
 * a script) means the node behind the address is a replica now — a primary that hung, was failed over and
 * demoted while this connection stayed open (a Service's established connections stay on the old pod) —
 * so the connection is dropped and made again, through the same address, to the current primary. Before,
 * every write failed until the sidecar restarted. At most once per {@link READONLY_RECONNECT_MS}, so that an
 * address that only leads to a replica does not reconnect on every write. The failed command is not resent
 * (it answers 503).
 */
export function readOnlyReconnector(clock: () => number = () => performance.now()): (err: Error) => boolean {
  let last = -Infinity;
  return (err) => {
    if (!/^READONLY\b/.test(err.message)) return false;
    const now = clock();
    if (now - last < READONLY_RECONNECT_MS) return false;
    last = now;
    return true;
  };
}

export function createRedisClient(options: RedisClientOptions): Redis {
  return new Redis(options.url, {
    reconnectOnError: readOnlyReconnector(),
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

/**
 * A Redis Cluster client from a seed address (`--redis` with `--redis-cluster`: in Kubernetes the client
 * Service selecting every node). Same time boxes as {@link createRedisClient}: nothing queues while the
 * cluster is unreachable, nothing is resent when a connection drops. MOVED and ASK are followed (at most
 * 16 redirections, ioredis' default), CLUSTERDOWN/TRYAGAIN are retried after 100 ms within the same limit.
 */
export function createClusterClient(options: RedisClientOptions): Cluster {
  const u = new URL(options.url);
  const password = options.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 6379);
  const cluster = new Cluster([{ host, port }], {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: 'master',
    slotsRefreshTimeout: Math.max(1000, 2 * options.timeoutMs),
    slotsRefreshInterval: 5000,
    clusterRetryStrategy: (times) => reconnectDelay(times),
    redisOptions: {
      ...(password !== undefined ? { password } : {}),
      ...(username !== undefined ? { username } : {}),
      ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
      connectionName: options.name,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(1000, 4 * options.timeoutMs),
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
    },
  });
  CLUSTER_SEEDS.set(cluster, `${host}:${port}`);
  keepPoolOnEmptySlotMap(cluster);
  return cluster;
}

/** What {@link keepPoolOnEmptySlotMap} needs of ioredis' Cluster internals (ioredis 5 and 6). */
interface ClusterInternals {
  connectionPool?: { reset?: (nodes: readonly unknown[]) => void };
  /** Slot → the node keys serving it, as last learnt. */
  slots?: (readonly string[] | undefined)[];
}

/**
 * ioredis refreshes its slot map from one node of its pool, at random, and then keeps in its pool exactly the
 * nodes that node's `CLUSTER SLOTS` named, disconnecting every other. A node that holds no slot and knows no
 * other node answers an empty list: a shard the operator drained and `CLUSTER RESET` at a scale-in (its pod
 * lives on until the StatefulSet deletes it), or a cluster not yet bootstrapped. Taken at its word, that
 * answer emptied the pool: every connection closed, the client went to "reconnecting", and every command
 * until it reconnected failed with "Cluster isn't ready" — 503s seen in CI while resharding 4 → 3 shards.
 * An empty answer says nothing about the slots, so while the client knows where some slots are, the pool and
 * the slot map stay as they were; the next refresh (a MOVED, or `slotsRefreshInterval`) asks another node.
 * A client that knows no slot yet (its seed answered empty: a drained node behind the seed Service, or a
 * cluster not bootstrapped) lets ioredis empty the pool as before: it then reconnects through the seed,
 * which may lead elsewhere, instead of staying with the one node it has.
 */
export function keepPoolOnEmptySlotMap(cluster: Cluster): void {
  const internals = cluster as unknown as ClusterInternals;
  const pool = internals.connectionPool;
  const reset = pool?.reset;
  if (pool === undefined || typeof reset !== 'function' || !Array.isArray(internals.slots))
    throw new Error('ioredis Cluster internals changed (connectionPool.reset, slots): update keepPoolOnEmptySlotMap');
  const knowsSlots = () => internals.slots?.some((nodes) => nodes !== undefined && nodes.length > 0) === true;
  pool.reset = (nodes) => {
    if (nodes.length === 0 && knowsSlots()) {
      cluster.emit('emptySlotMap');
      return;
    }
    reset.call(pool, nodes);
  };
}

/** The seed address of each cluster client (for logs). */
const CLUSTER_SEEDS = new WeakMap<Cluster, string>();

/**
 * The invalidation subscriber's connection on Redis Cluster: a plain connection to one node (with
 * cluster-wide PUBLISH every node delivers every message, primaries and replicas alike). When it drops,
 * each reconnect attempt goes to the next node of `nodes()` (the Cluster client's current view, then the
 * seed), so losing the node it was on costs one reconnect, not a wait for that node to come back.
 */
export function createRotatingNodeClient(
  options: RedisClientOptions,
  nodes: () => readonly { host: string; port: number }[],
): Redis {
  const client = createRedisClient(options);
  const seed = { host: client.options.host ?? '127.0.0.1', port: client.options.port ?? 6379 };
  let next = 0;
  client.options.retryStrategy = (times) => {
    const all = [...nodes(), seed];
    const target = all[next++ % all.length] as { host: string; port: number };
    // ioredis' connector reads host and port from these options at every connect.
    client.options.host = target.host;
    client.options.port = target.port;
    return reconnectDelay(times);
  };
  return client;
}

/** The nodes of a Cluster client as it knows them now (primaries and replicas). */
export function clusterNodeAddresses(cluster: Cluster): { host: string; port: number }[] {
  return cluster.nodes('all').map((n) => ({ host: n.options.host ?? '127.0.0.1', port: n.options.port ?? 6379 }));
}

/** Creates a client for one server or, with `cluster`, a Redis Cluster client. */
export function createClient(options: RedisClientOptions & { cluster: boolean }): RedisClient {
  return options.cluster ? createClusterClient(options) : createRedisClient(options);
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** `host:port` of a client, for logs and the `consistency=all` report. */
export function nodeName(client: RedisClient): string {
  if (isCluster(client)) return `cluster via ${CLUSTER_SEEDS.get(client) ?? '?'}`;
  return `${client.options.host ?? '127.0.0.1'}:${client.options.port ?? 6379}`;
}

/** Resolves when the client is ready, or rejects after `timeoutMs`. */
export function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
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
    // A MULTI whose queued commands were refused (READONLY on a demoted primary, OOM...): EXEC answers
    // EXECABORT and ioredis keeps the refusals in `previousErrors`; the first one says why.
    const previous = (e as { previousErrors?: unknown[] }).previousErrors?.[0];
    if (first === 'EXECABORT' && previous !== undefined) return toSidecarError(previous, what);
    if (first === 'OOM') return new CacheFullError(`${what}: Redis is full (maxmemory reached)`, { cause: e });
    if (first === 'WRONGTYPE')
      return new StoredRecordInvalidError(`${what}: the record in Redis was not written by a sidecar`, { cause: e });
    if (UNAVAILABLE_REPLIES.includes(first))
      return new RedisUnavailableError(`${what}: Redis answered ${first}`, { cause: e });
    return new RedisCommandError(`${what}: Redis answered an error`, { cause: e });
  }
  if (e.message.startsWith('Too many Cluster redirections')) {
    // ioredis' limit on MOVED/ASK/TRYAGAIN/CLUSTERDOWN retries; name the last answer, not "not reachable".
    const last = /Last error: (?:\w+: )?(\S+)/.exec(e.message)?.[1] ?? 'redirections';
    return new RedisUnavailableError(`${what}: Redis Cluster kept redirecting (last answer ${last})`, { cause: e });
  }
  if (e.message === 'Command timed out') {
    return new RedisUnavailableError(`${what}: Redis did not answer in time`, { cause: e });
  }
  // The client's own words (say "Connection is closed.", "connect ECONNREFUSED 10.0.0.5:6379"): which of
  // the ways of not reaching Redis it was is what an operator of the cache needs to tell them apart.
  return new RedisUnavailableError(`${what}: Redis is not reachable (${e.message})`, { cause: e });
}
