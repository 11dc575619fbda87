/**
 * `ripplecache-bridge`: the cross-cluster invalidation bridge (see bridge.ts), shipped in the sidecar's
 * image and package. Config → Redis clients → bridge → HTTP server → signals.
 *
 * Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad flag or environment variable.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { configOrExit } from '../config-values.js';
import { redactUrl } from '../config.js';
import { describeError } from '../errors.js';
import {
  clusterNodeAddresses,
  createClient,
  createRedisClient,
  createRotatingNodeClient,
  isCluster,
} from '../redis/redis-client.js';
import { keyLayout } from '../write/key-layout.js';
import { Bridge } from './bridge.js';
import { buildBridgeApp } from './bridge-app.js';
import { parseBridgeConfig } from './bridge-config.js';
import { packageVersion } from '../../../common/src/version.js';
import { createBridgeMetrics } from './bridge-metrics.js';

const SHUTDOWN_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  const config = configOrExit('ripplecache-bridge', () => parseBridgeConfig(process.argv.slice(2), process.env));
  if (config === undefined) return;
  const log = pino({ level: config.logLevel });
  const senderId = `bridge/${config.cluster}/${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const local = createClient({
    url: config.redis,
    password: config.redisPassword,
    timeoutMs: config.redisTimeoutMs,
    name: 'ripplecache-bridge',
    cluster: config.redisCluster,
  });
  const subscriberOptions = {
    url: config.redis,
    password: config.redisPassword,
    timeoutMs: config.redisTimeoutMs,
    name: 'ripplecache-bridge-sub',
  };
  // On a Redis Cluster, a plain connection to one node (a cluster-wide PUBLISH reaches every node's
  // subscribers) that moves to another node of the cluster when it drops.
  const subscriber = isCluster(local)
    ? createRotatingNodeClient(subscriberOptions, () => clusterNodeAddresses(local))
    : createRedisClient(subscriberOptions);
  const peers = config.peers.map((p) => ({
    name: p.name,
    channel: p.channel,
    layout: keyLayout(p.cluster === true),
    client: createClient({
      url: p.url,
      password: p.password,
      timeoutMs: config.redisTimeoutMs,
      name: `ripplecache-bridge-from-${config.cluster}`,
      cluster: p.cluster === true,
    }),
  }));
  // Every password the bridge knows, never to appear in a reported error (URLs' credentials are taken out too).
  const secrets = [config.redis, ...config.peers.map((p) => p.url)]
    .map(urlPassword)
    .concat(config.redisPassword ?? '', ...config.peers.map((p) => p.password ?? ''))
    .filter((s) => s !== '');
  const metrics = createBridgeMetrics(
    peers.map((p) => p.name),
    { defaultMetrics: true, version: packageVersion() },
  );
  const bridge = new Bridge({
    cluster: config.cluster,
    senderId,
    channel: config.channel,
    local,
    localLayout: keyLayout(config.redisCluster),
    subscriber,
    peers,
    maxBatch: config.maxBatch,
    maxPending: config.maxPending,
    tombstoneTtlMs: config.tombstoneTtlMs,
    metrics,
    log,
    secrets,
  });
  const app = buildBridgeApp({ bridge, metrics, log });
  log.info(
    {
      cluster: config.cluster,
      redis: redactUrl(config.redis),
      redisCluster: config.redisCluster,
      channel: config.channel,
      peers: config.peers.map((p) => ({
        name: p.name,
        url: redactUrl(p.url),
        channel: p.channel,
        cluster: p.cluster === true,
      })),
      senderId,
    },
    'Started the bridge',
  );
  bridge.start();

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'Received a termination signal; stopping');
    setTimeout(() => process.exit(1), SHUTDOWN_TIMEOUT_MS).unref();
    try {
      await bridge.stop();
      await app.close();
      for (const c of [local, subscriber, ...peers.map((p) => p.client)]) c.disconnect();
      log.info('Stopped');
      process.exit(0);
    } catch (err) {
      log.error({ error: describeError(err) }, 'Failed to shut down cleanly');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    log.fatal({ error: describeError(err), listen: config.listen }, 'Failed to listen');
    process.exit(1);
  }
}

/** The password of a redis:// URL ('' when none). */
function urlPassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ripplecache-bridge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
