/**
 * `ripplecache-sidecar`: composition root. Config → app → listen (the API, then the optional metrics and
 * probe listener) → signals.
 *
 * Exit codes: 0 after a clean shutdown, 1 on a runtime failure (cannot listen, shutdown timed out),
 * 2 on a bad flag, environment variable or config file.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { formatListen, loadConfig } from './config.js';
import { configOrExit } from './config-values.js';
import { describeError } from './errors.js';
import { listenHttp, type HttpListeners } from './http-listeners.js';
import { buildMetricsApp } from './metrics-app.js';
import { RespServer } from './resp/resp-server.js';
import { packageVersion } from '../../common/src/version.js';

/** Longest a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** Longest the RESP front waits for its connections to get their last replies at shutdown. */
const RESP_DRAIN_MS = 2000;

async function main(): Promise<void> {
  const config = configOrExit('ripplecache-sidecar', () => loadConfig());
  if (config === undefined) return;
  const app = await buildApp({
    config,
    defaultMetrics: true,
    version: packageVersion(),
    onFatal: (message) => {
      process.stderr.write(`ripplecache-sidecar: ${message}\n`);
      process.exit(2);
    },
  });
  // The metrics and probe listener (--metrics-listen): same registry and readiness, none of the cache API.
  const metricsApp: FastifyInstance | undefined =
    config.metricsListen === undefined ? undefined : await buildMetricsApp(app);
  // The RESP front (--listen-resp): the same backend as the HTTP routes.
  const resp: RespServer | undefined =
    config.listenResp.length === 0
      ? undefined
      : new RespServer({
          addresses: config.listenResp,
          socketMode: config.socketMode,
          backend: app.ripplecache.respBackend,
          log: app.log,
        });
  let http: HttpListeners | undefined;

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'Received a termination signal; draining');
    app.ripplecache.beginShutdown();
    const timer = setTimeout(() => {
      app.log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'Shutdown timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    // Keep-alive connections that finish their last request while we drain would otherwise hold the
    // listener open until their keep-alive timeout: close each as soon as it is idle.
    const reaper = setInterval(() => {
      app.server.closeIdleConnections();
      metricsApp?.server.closeIdleConnections();
    }, 100);
    reaper.unref();
    try {
      // The RESP front first (its commands need the Redis connections app.close() ends): no new
      // connections, the commands already sent are answered. Then the extra HTTP listeners (their socket
      // files are removed), then the API.
      await resp?.close(RESP_DRAIN_MS);
      await http?.close();
      // The metrics listener closes last: while the API drains (write-back journal), /readyz keeps
      // answering "shutting-down" and /metrics stays scrapable.
      await app.close();
      await metricsApp?.close();
      app.log.info('Stopped');
      process.exit(0);
    } catch (err) {
      app.log.error({ error: describeError(err) }, 'Failed to shut down cleanly');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    http = await listenHttp(app, config.listen, config.socketMode);
    await resp?.start();
  } catch (err) {
    app.log.fatal(
      {
        error: describeError(err),
        listen: config.listen.map(formatListen),
        listenResp: config.listenResp.map(formatListen),
      },
      'Failed to listen',
    );
    await http?.close().catch(() => {});
    await app.close().catch(() => {});
    await metricsApp?.close().catch(() => {});
    process.exit(1);
  }
  if (metricsApp !== undefined && config.metricsListen !== undefined && !stopping) {
    // After the API: a probe that finds this listener ready finds the API listening too.
    try {
      await metricsApp.listen({ host: config.metricsListen.host, port: config.metricsListen.port });
      app.log.info({ metricsListen: config.metricsListen }, 'Started the metrics and probe listener');
    } catch (err) {
      app.log.fatal(
        { error: describeError(err), metricsListen: config.metricsListen },
        'Failed to listen for metrics and probes',
      );
      await app.close().catch(() => {});
      await metricsApp.close().catch(() => {});
      process.exit(1);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ripplecache-sidecar: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
