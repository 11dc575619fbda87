/**
 * The operator's HTTP server: /metrics (Prometheus text), /healthz (liveness), /readyz (readiness).
 *
 * Plain `node:http`, not fastify: three GET routes need no framework, and importing fastify cost the idle
 * operator about 18-20 MiB of RSS (measured alone in a bare Node 20 process; README, Performance). The
 * webhook server, loaded only with --webhook-listen, still uses fastify.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface ProbeServerOptions {
  registry: Registry;
  logger: Logger;
  /** True once informers have synced (and, with leader election, for a standby too). */
  ready: () => boolean;
}

export interface ProbeServer {
  listen(opts: { host: string; port: number }): Promise<void>;
  close(): Promise<void>;
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const json = (res: ServerResponse, code: number, body: unknown) =>
  send(res, code, 'application/json; charset=utf-8', JSON.stringify(body));

export function buildProbeServer(opts: ProbeServerOptions): ProbeServer {
  const log = opts.logger.child({ logger: 'http' });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
    if (!known) {
      json(res, 404, { error: { code: 'NotFound', message: `no route ${req.method ?? ''} ${path}` } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      json(res, 405, { error: { code: 'MethodNotAllowed', message: `${path} answers GET only` } });
      return;
    }
    if (path === '/metrics') send(res, 200, opts.registry.contentType, await opts.registry.metrics());
    else if (path === '/healthz') json(res, 200, { status: 'ok' });
    else if (opts.ready()) json(res, 200, { status: 'ready' });
    else json(res, 503, { error: { code: 'NotReady', message: 'informers have not synced yet' } });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.message : String(err), url: req.url }, 'Probe request failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'Internal', message: 'internal error' } });
      else res.destroy();
    });
  });
  // As fastify did: keep an idle keep-alive connection 72 s (longer than the usual load-balancer idle time).
  server.keepAliveTimeout = 72_000;
  return {
    listen: ({ host, port }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
