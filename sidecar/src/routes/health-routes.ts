/**
 * `/healthz` (the process is alive), `/readyz` (Redis reachable and subscribed, or a degraded mode the
 * operator chose; never while shutting down), `/metrics` (Prometheus text).
 */
import type { FastifyInstance } from 'fastify';
import { refuseOtherMethods } from '../plugins/error-handler.js';
import type { OnDisconnect } from '../config-defaults.js';
import type { SidecarMetrics } from '../metrics.js';
import type { TieredCache } from '../tiers/tiered-cache.js';

export interface Readiness {
  status: 'ready' | 'degraded' | 'not-ready' | 'shutting-down';
  mode: 'l1-only' | 'redis';
  redis: 'up' | 'down' | 'disabled';
  subscribed: boolean;
  /**
   * The write path's own connection (`--durability replicated` with an origin: it carries every write and
   * its WAIT); absent when there is none (writes use the command connection).
   */
  write?: 'up' | 'down';
}

/**
 * `writeUp`: whether the write connection is up (undefined: there is none). A write connection that is
 * down counts like the command connection down: every write would answer 503.
 */
export function readiness(
  cache: TieredCache,
  onDisconnect: OnDisconnect,
  shuttingDown: boolean,
  writeUp?: boolean,
): Readiness {
  const mode = cache.l1Only ? 'l1-only' : 'redis';
  const redis = cache.l1Only ? 'disabled' : cache.l2Available ? 'up' : 'down';
  // L1-only: there is no subscription (the cache treats itself as subscribed, so that L1 serves).
  const subscribed = !cache.l1Only && cache.isSubscribed;
  const write = writeUp === undefined ? undefined : writeUp ? 'up' : 'down';
  let status: Readiness['status'];
  if (shuttingDown) status = 'shutting-down';
  else if (cache.l1Only || (redis === 'up' && subscribed && write !== 'down')) status = 'ready';
  else if (onDisconnect === 'serve-stale') status = 'degraded';
  else status = 'not-ready';
  return { status, mode, redis, subscribed, ...(write === undefined ? {} : { write }) };
}

export async function healthRoutes(
  app: FastifyInstance,
  options: {
    cache: TieredCache;
    metrics: SidecarMetrics;
    onDisconnect: OnDisconnect;
    isShuttingDown: () => boolean;
    /** Whether the write connection is up; absent when the sidecar has none. */
    writeConnectionUp?: () => boolean;
  },
): Promise<void> {
  const { cache, metrics, onDisconnect, isShuttingDown, writeConnectionUp } = options;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const r = readiness(cache, onDisconnect, isShuttingDown(), writeConnectionUp?.());
    return reply.code(r.status === 'ready' || r.status === 'degraded' ? 200 : 503).send(r);
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });

  for (const url of ['/healthz', '/readyz', '/metrics']) refuseOtherMethods(app, url, ['GET', 'HEAD']);
}
