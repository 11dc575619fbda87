/**
 * The optional second listener (`--metrics-listen`): `GET /metrics`, `/healthz` and `/readyz` only, for
 * Prometheus and the kubelet's httpGet probes, which reach the pod IP but not the API's loopback address.
 * It serves nothing of the cache API (which has no authentication and stays on 127.0.0.1): every other
 * path is a 404 JSON error. It shares the sidecar's metrics registry and readiness (including
 * "shutting-down" once `beginShutdown()` was called) with the API listener. Like {@link buildApp}, it
 * never listens; `main.ts` does, and closes it with the rest on SIGTERM.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { BodyTooLargeError } from './errors.js';
import { frameworkErrors, installErrorHandling } from './plugins/error-handler.js';
import { clientErrorHandler, httpServerFactory } from './plugins/http-server.js';
import { healthRoutes } from './routes/health-routes.js';

/** Builds the metrics/probe server for the sidecar `app` (as built by `buildApp`), logging through its logger. */
export async function buildMetricsApp(app: FastifyInstance): Promise<FastifyInstance> {
  const runtime = app.ripplecache;
  const { config, metrics, cache } = runtime;
  const server = Fastify({
    loggerInstance: app.log,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger) => logger,
    // Only GETs without a body are served here.
    bodyLimit: 1024,
    return503OnClosing: false,
    frameworkErrors: frameworkErrors(config.maxValueBytes),
    serverFactory: httpServerFactory(() => ({
      limit: 1024,
      error: () => new BodyTooLargeError('the body is larger than the limit of 1024 bytes'),
    })),
    clientErrorHandler,
  });
  installErrorHandling(server, metrics, config.maxValueBytes);
  await server.register(healthRoutes, {
    cache,
    metrics,
    onDisconnect: config.onDisconnect,
    isShuttingDown: () => runtime.shuttingDown,
    ...(runtime.writeConnectionUp ? { writeConnectionUp: runtime.writeConnectionUp } : {}),
  });
  return server;
}
