/** The operator's HTTP server: /metrics (Prometheus text), /healthz (liveness), /readyz (readiness). */
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface ProbeServerOptions {
  registry: Registry;
  logger: Logger;
  /** True once informers have synced (and, with leader election, for a standby too). */
  ready: () => boolean;
}

export function buildProbeServer(opts: ProbeServerOptions) {
  const app = Fastify({
    loggerInstance: opts.logger.child({ logger: 'http' }),
    // Not the top-level disableRequestLogging, deprecated in fastify 5 (FSTDEP023, a non-JSON line on stderr).
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('Content-Type', opts.registry.contentType);
    return opts.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (opts.ready()) return { status: 'ready' };
    reply.code(503);
    return { error: { code: 'NotReady', message: 'informers have not synced yet' } };
  });
  return app;
}
