/**
 * The bridge's HTTP server: `/healthz` (alive), `/readyz` (subscribed to the local channel and every peer
 * reachable and repaired; 503 otherwise, with the peers in the body), `/metrics`, and `/v1/peers` (each
 * peer's state as JSON: what the operator reads for the CacheCluster's `PeersReachable` condition). It
 * never listens; main.ts does.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Bridge } from './bridge.js';
import type { BridgeMetrics } from './bridge-metrics.js';

export function buildBridgeApp(options: {
  bridge: Bridge;
  metrics: BridgeMetrics;
  log: FastifyBaseLogger;
}): FastifyInstance {
  const { bridge, metrics } = options;
  const app = Fastify({
    loggerInstance: options.log,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: false,
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const ready = bridge.ready;
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'not-ready', subscribed: bridge.subscribed, peers: bridge.peers() });
  });
  app.get('/v1/peers', async () => ({ subscribed: bridge.subscribed, peers: bridge.peers() }));
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
  return app;
}
