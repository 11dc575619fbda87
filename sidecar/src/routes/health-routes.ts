/**
 * `/healthz` (the process is alive), `/readyz` (Redis reachable and subscribed, or a degraded mode the
 * operator chose; never while shutting down), `/metrics` (Prometheus text).
 */
import type { FastifyInstance } from 'fastify';
import type { OnDisconnect } from '../config-defaults.js';
import type { SidecarMetrics } from '../metrics.js';
import type { TieredCache } from '../tiers/tiered-cache.js';

export interface Readiness {
  status: 'ready' | 'degraded' | 'not-ready' | 'shutting-down';
  mode: 'l1-only' | 'redis';
  redis: 'up' | 'down' | 'disabled';
  subscribed: boolean;
}

export function readiness(cache: TieredCache, onDisconnect: OnDisconnect, shuttingDown: boolean): Readiness {
  const mode = cache.l1Only ? 'l1-only' : 'redis';
  const redis = cache.l1Only ? 'disabled' : cache.l2Available ? 'up' : 'down';
  const subscribed = cache.isSubscribed;
  let status: Readiness['status'];
  if (shuttingDown) status = 'shutting-down';
  else if (cache.l1Only || (redis === 'up' && subscribed)) status = 'ready';
  else if (onDisconnect === 'serve-stale') status = 'degraded';
  else status = 'not-ready';
  return { status, mode, redis, subscribed };
}

export async function healthRoutes(
  app: FastifyInstance,
  options: { cache: TieredCache; metrics: SidecarMetrics; onDisconnect: OnDisconnect; isShuttingDown: () => boolean },
): Promise<void> {
  const { cache, metrics, onDisconnect, isShuttingDown } = options;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const r = readiness(cache, onDisconnect, isShuttingDown());
    return reply.code(r.status === 'ready' || r.status === 'degraded' ? 200 : 503).send(r);
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
}
