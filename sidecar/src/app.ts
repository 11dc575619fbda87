/**
 * Builds the sidecar: L1, the Redis connections (command + subscriber), the invalidation machinery,
 * metrics and the HTTP routes. Never listens (`main.ts` does); tests use `app.inject()` or listen on
 * port 0 themselves. Closing the app (`app.close()`) stops the timers, drains the write-back flusher (at
 * most `writeBackDrainMs`) and closes the origin and Redis connections.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify';
import type { SidecarConfig } from './config-defaults.js';
import { redactUrl } from './config.js';
import { InvalidationPublisher } from './invalidation/invalidation-publisher.js';
import { InvalidationReceiver } from './invalidation/invalidation-receiver.js';
import { createL1Store } from './l1/create-l1-store.js';
import { createSidecarMetrics, type SidecarMetrics } from './metrics.js';
import { bodyLimitFor, defaultBodyLimit, frameworkErrors, installErrorHandling } from './plugins/error-handler.js';
import type { Redis } from 'ioredis';
import { clientErrorHandler, httpServerFactory } from './plugins/http-server.js';
import { InvalidationSubscriber } from './redis/invalidation-subscriber.js';
import {
  clusterNodeAddresses,
  createClient,
  createRedisClient,
  createRotatingNodeClient,
  isCluster,
  nodeName,
  type RedisClient,
} from './redis/redis-client.js';
import { RedisL2 } from './redis/redis-l2.js';
import { batchRoute } from './routes/batch-route.js';
import { cacheRoutes } from './routes/cache-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { invalidateRoute } from './routes/invalidate-route.js';
import type { RespBackend } from './resp/resp-commands.js';
import { validateKey } from './key.js';
import { TieredCache, type CacheValue } from './tiers/tiered-cache.js';
import { createWritePath, type WritePath } from './write/create-write-path.js';
import { keyLayout } from './write/key-layout.js';

export interface BuildAppOptions {
  config: SidecarConfig;
  /**
   * fastify's logger: `false`, pino options, or (with `loggerInstance`) a pino logger. Default: pino at
   * `config.logLevel` on stdout.
   */
  logger?: FastifyServerOptions['logger'];
  loggerInstance?: FastifyBaseLogger;
  /** Clock for L1 expiry, in ms. Default `Date.now`. */
  clock?: () => number;
  /** This sidecar's id in invalidation messages. Default `<hostname>-<pid>-<random>`. */
  senderId?: string;
  /** Also export Node.js process metrics. Default false (main.ts turns it on). */
  defaultMetrics?: boolean;
  /** The `version` label of `ripplecache_sidecar_build_info`. Default `unknown` (main.ts reads package.json). */
  version?: string;
  /** PING period of the subscriber connection, in ms. Default 1000. */
  heartbeatMs?: number;
  /** Period of the incremental sweep of expired L1 entries, in ms. Default 1000. */
  sweepIntervalMs?: number;
  /**
   * Longest the write-back flusher may spend draining the journal when the app closes, in ms; what is
   * left stays in the journal for another sidecar. Default 7000 (main.ts gives the whole shutdown 10 s).
   */
  writeBackDrainMs?: number;
  /**
   * Called with a message when Redis refuses the configuration for good (the `/db` of `--redis` does not
   * exist there): ioredis would otherwise go on over database 0. main.ts exits 2. Default: only logged.
   */
  onFatal?: (message: string) => void;
}

/** What the app exposes to main.ts, tests and benchmarks. */
export interface SidecarRuntime {
  readonly config: SidecarConfig;
  readonly cache: TieredCache;
  readonly metrics: SidecarMetrics;
  readonly receiver: InvalidationReceiver;
  readonly senderId: string;
  /** The origin, write policy and write-back flusher (absent without `--origin`). */
  readonly writePath: WritePath | undefined;
  /** What the RESP front (resp/resp-server.ts) runs its commands on: the same objects as the HTTP routes. */
  readonly respBackend: RespBackend;
  /** Makes /readyz fail; in-flight and new requests are still served until the app is closed. */
  beginShutdown(): void;
  readonly shuttingDown: boolean;
  /** Whether the write connection (`--durability replicated`) is up; absent when there is none. */
  readonly writeConnectionUp?: () => boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    ripplecache: SidecarRuntime;
  }
}

/** Expired L1 slots visited per sweep. */
const SWEEP_BUDGET = 1000;
/** Longest URL-encoded key: 1024 bytes, each as %XX. */
const MAX_ENCODED_KEY_LENGTH = 3 * 1024;

export function defaultSenderId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const clock = options.clock ?? Date.now;
  const senderId = options.senderId ?? defaultSenderId();
  const bodyLimit = defaultBodyLimit(config.maxValueBytes);

  const app = Fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : { logger: options.logger ?? { level: config.logLevel } }),
    // Per-request log lines would dominate the cost of an L1 hit; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (it costs more than an L1 hit); error logs carry the request id.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_ENCODED_KEY_LENGTH + 16 },
    frameworkErrors: frameworkErrors(config.maxValueBytes),
    // Requests refused before fastify sees them (parse errors, no Host, oversize Expect: 100-continue) get
    // the API's JSON errors too; the cache routes' body limit is the value limit.
    serverFactory: httpServerFactory((url) => bodyLimitFor(url, config.maxValueBytes)),
    clientErrorHandler,
    // Reject unknown properties instead of silently dropping them; coerce query strings to numbers but
    // never a scalar into an array.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
  });
  const log = app.log;

  const l1 = createL1Store<CacheValue>(config.l1.policy, {
    maxEntries: config.l1.maxEntries,
    maxBytes: config.l1.maxBytes,
  });

  let primary: RedisClient | undefined;
  let subscriberClient: Redis | undefined;
  /** The write path's own connection under durability replicated (its WAITs would block reads). */
  let writeClient: RedisClient | undefined;
  // Records, journals and version counters: one place each on one primary, one bucket per hash tag on a
  // Redis Cluster (write/key-layout.ts).
  const layout = keyLayout(config.redisCluster);
  let l2: RedisL2 | undefined;
  // Filled in once the metrics exist (they read the cache, the cache reports to them).
  let metrics: SidecarMetrics | undefined;
  const redisError = () => metrics?.redisError();

  if (config.redis !== undefined) {
    const cluster = config.redisCluster;
    const commandClient = createClient({
      url: config.redis,
      password: config.redisPassword,
      timeoutMs: config.redisTimeoutMs,
      name: 'ripplecache-sidecar',
      cluster,
    });
    primary = commandClient;
    const subscriberOptions = {
      url: config.redis,
      password: config.redisPassword,
      timeoutMs: config.redisTimeoutMs,
      name: 'ripplecache-sidecar-sub',
    };
    // On Redis Cluster the subscription is a plain connection to one node (cluster-wide PUBLISH reaches
    // every node) that moves to another node when it drops (redis-client.ts createRotatingNodeClient).
    subscriberClient = isCluster(commandClient)
      ? createRotatingNodeClient(subscriberOptions, () => clusterNodeAddresses(commandClient))
      : createRedisClient(subscriberOptions);
    watchConnection(primary, 'command', log, options.onFatal);
    watchConnection(subscriberClient, 'subscriber', log, options.onFatal);
    if (config.durability === 'replicated' && config.origin !== undefined) {
      writeClient = createClient({
        url: config.redis,
        password: config.redisPassword,
        timeoutMs: config.redisTimeoutMs + config.durabilityTimeoutMs,
        name: 'ripplecache-sidecar-write',
        cluster,
      });
      watchConnection(writeClient, 'write', log, options.onFatal);
    }
    l2 = new RedisL2({
      primary,
      layout,
      channel: config.channel,
      replicaUrls: config.redisReplicas,
      password: config.redisPassword,
      timeoutMs: config.redisTimeoutMs,
      onError: redisError,
    });
  }

  let cache: TieredCache | undefined;
  let writePath: WritePath | undefined;
  metrics = createSidecarMetrics(
    {
      l1Entries: () => l1.size,
      l1Bytes: () => l1.bytes,
      redisUp: () => (primary?.status === 'ready' ? 1 : 0),
      subscribed: () => (cache !== undefined && !cache.l1Only && cache.isSubscribed ? 1 : 0),
      ...(config.origin !== undefined && config.writePolicy === 'write-back'
        ? { writeBackPending: () => (writePath as WritePath).pending() }
        : {}),
    },
    {
      defaultMetrics: options.defaultMetrics ?? false,
      cacheCluster: config.cacheCluster,
      version: options.version ?? 'unknown',
      origin: config.origin !== undefined,
    },
  );

  // One publisher for the tiers and the write policies: one sequence of messages per sidecar — on Redis
  // Cluster one per bucket, since different buckets' messages come from different shards (issue 15).
  const publisher = new InvalidationPublisher(
    senderId,
    layout.buckets.length > 1 ? (key) => layout.bucketOf(key).index : undefined,
  );
  if (config.origin !== undefined) {
    const m = metrics;
    writePath = createWritePath({
      originUrl: config.origin,
      originTable: config.originTable,
      writePolicy: config.writePolicy,
      writeBack: { ...config.writeBack, claimTimeoutMs: config.writeBackClaimTimeoutMs },
      defaultTTLSeconds: config.defaultTTLSeconds,
      redis: writeClient ?? primary,
      layout,
      ...(writeClient
        ? { durability: { timeoutMs: config.durabilityTimeoutMs, events: metrics.replicaWaitEvents } }
        : {}),
      channel: config.channel,
      senderId,
      publisher,
      invalidateLocal: (keys) => cache?.invalidateKeys(keys),
      onPublished: () => m.tierEvents.published(),
      onRedisError: redisError,
      originEvents: m.originEvents,
      flusherEvents: m.flusherEvents,
      log,
      clock,
    });
  }

  cache = new TieredCache({
    l1,
    ...(l2 ? { l2 } : {}),
    publisher,
    clock,
    l1MaxTTLMs: config.l1.maxTTLSeconds * 1000,
    onDisconnect: config.onDisconnect,
    events: metrics.tierEvents,
    ...(writePath ? { readThrough: writePath.readThrough, readThroughTTLMs: config.defaultTTLSeconds * 1000 } : {}),
  });
  const tiered = cache;

  const receiver = new InvalidationReceiver(senderId, tiered, {
    ...metrics.receiverEvents,
    gap: (sender, missed) => {
      metrics?.receiverEvents.gap(sender, missed);
      log.warn({ sender, missed }, 'Detected a gap in invalidation messages; dropped L1');
    },
    malformed: (error) => {
      metrics?.receiverEvents.malformed(error);
      log.warn({ reason: error.message }, 'Received a malformed invalidation message; dropped L1');
    },
  });

  let subscriber: InvalidationSubscriber | undefined;
  if (subscriberClient !== undefined) {
    subscriber = new InvalidationSubscriber({
      client: subscriberClient,
      channel: config.channel,
      receiver,
      log,
      heartbeatMs: options.heartbeatMs ?? 1000,
      onError: redisError,
    });
    subscriber.start();
  }

  const sweep = setInterval(() => tiered.sweep(SWEEP_BUDGET), options.sweepIntervalMs ?? 1000);
  sweep.unref();

  // Keys the origin could never store (PostgreSQL: NUL) are InvalidKey for every route, not only PUT.
  const origin = writePath?.origin;
  const originCheckKey = origin ? { originCheckKey: (key: string) => origin.checkKey(key) } : {};
  const respBackend: RespBackend = {
    cache: tiered,
    ...(writePath ? { writer: writePath.policy } : {}),
    checkKey:
      origin === undefined
        ? validateKey
        : (key: string) => {
            validateKey(key);
            origin.checkKey(key);
          },
    metrics,
    defaultTTLSeconds: config.defaultTTLSeconds,
    maxValueBytes: config.maxValueBytes,
    password: config.respPassword,
    version: options.version ?? 'unknown',
  };

  let shuttingDown = false;
  const runtime: SidecarRuntime = {
    config,
    cache: tiered,
    metrics,
    receiver,
    senderId,
    writePath,
    respBackend,
    beginShutdown: () => {
      shuttingDown = true;
    },
    get shuttingDown() {
      return shuttingDown;
    },
    ...(writeClient ? { writeConnectionUp: () => writeClient?.status === 'ready' } : {}),
  };
  app.decorate('ripplecache', runtime);

  installErrorHandling(app, metrics, config.maxValueBytes);
  await app.register(cacheRoutes, {
    cache: tiered,
    metrics,
    config,
    ...(l2 ? { readAllNodes: (key: string) => l2.readAllNodes(key) } : {}),
    ...(writePath ? { writer: writePath.policy } : {}),
    ...originCheckKey,
  });
  await app.register(invalidateRoute, { cache: tiered, metrics, ...originCheckKey });
  await app.register(batchRoute, {
    cache: tiered,
    metrics,
    config,
    ...(writePath ? { writer: writePath.policy } : {}),
    ...originCheckKey,
  });
  await app.register(healthRoutes, {
    cache: tiered,
    metrics,
    onDisconnect: config.onDisconnect,
    isShuttingDown: () => shuttingDown,
    ...(runtime.writeConnectionUp ? { writeConnectionUp: runtime.writeConnectionUp } : {}),
  });

  app.addHook('onClose', async () => {
    shuttingDown = true;
    clearInterval(sweep);
    if (writePath !== undefined) {
      const drained = await writePath.close(options.writeBackDrainMs ?? 7000);
      if (writePath.flusher !== undefined) {
        if (drained) log.info({ origin: writePath.origin.description }, 'Drained the write-back journal');
        else
          log.warn(
            { origin: writePath.origin.description },
            'Stopped before the write-back journal was drained; another sidecar will finish it',
          );
      }
    }
    await subscriber?.stop();
    await l2?.close();
    await Promise.all(
      [primary, subscriberClient, writeClient].flatMap((c) => (c ? [c.quit().catch(() => c.disconnect())] : [])),
    );
  });

  log.info(
    {
      mode: l2 ? 'redis' : 'l1-only',
      redis: config.redis === undefined ? undefined : redactUrl(config.redis),
      redisCluster: config.redisCluster,
      keyLayout: layout.name,
      channel: config.channel,
      l1: config.l1,
      onDisconnect: config.onDisconnect,
      writePolicy: config.writePolicy,
      durability: writeClient
        ? `replicated (WAIT 1 ${config.durabilityTimeoutMs} ms)`
        : config.durability === 'replicated'
          ? 'replicated (no effect without --origin: only versioned writes wait)'
          : 'primary',
      origin: writePath?.origin.description,
      sender: senderId,
    },
    'Built the sidecar',
  );
  writePath?.start();
  return app;
}

/** Logs the connection's state changes (not every failed reconnect attempt). */
function watchConnection(
  client: RedisClient,
  role: string,
  log: FastifyBaseLogger,
  onFatal?: (message: string) => void,
): void {
  let wasReady = false;
  let lastError = '';
  client.on('ready', () => {
    wasReady = true;
    lastError = '';
    log.info({ redis: nodeName(client), connection: role }, 'Connected to Redis');
  });
  client.on('close', () => {
    if (wasReady) log.warn({ redis: nodeName(client), connection: role }, 'Lost the connection to Redis; reconnecting');
    wasReady = false;
  });
  // A refresh answered by a node that holds no slot (a drained shard): ignored (keepPoolOnEmptySlotMap).
  client.on('emptySlotMap', () =>
    log.info(
      { redis: nodeName(client), connection: role },
      'A Redis Cluster node answered an empty slot map (a drained or new node); kept the slot map as it was',
    ),
  );
  client.on('error', (err: Error) => {
    // The SELECT of the URL's database failed: ioredis goes on to 'ready' over database 0. Before that
    // (this runs during the connection's handshake), stop.
    if (onFatal !== undefined && /DB index is out of range/i.test(err.message)) {
      onFatal(`--redis: ${nodeName(client)} has no database of that number (Redis: ${err.message})`);
      return;
    }
    // ioredis reports every failed reconnect; log each distinct error once per outage.
    if (err.message !== lastError)
      log.warn({ redis: nodeName(client), connection: role, error: err.message }, 'Redis connection error');
    lastError = err.message;
  });
}
