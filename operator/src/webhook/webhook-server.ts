/**
 * The webhook's HTTPS server, on fastify: `POST /inject-sidecar` answers AdmissionReviews, `GET /healthz`
 * says it is up; every error is `{"error":{"code","message"}}`. The certificate can be replaced while
 * serving (rotation): new connections get it through the https server's `setSecureContext`. Logs go
 * through the operator's pino logger; requests themselves are not logged, admissions are.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyError } from 'fastify';
import type { Logger } from 'pino';
import { BadAdmissionReviewError, type AdmissionResult } from './admission.js';

/** The path the MutatingWebhookConfiguration calls. */
export const WEBHOOK_PATH = '/inject-sidecar';
/** Largest AdmissionReview accepted (a Pod is at most ~1.5 MB in etcd; a review can carry it twice). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Time allowed for a request's headers, and for the whole request. */
const HEADERS_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How long an idle keep-alive connection stays open: node's default, which the server had before fastify. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface TlsPair {
  cert: string;
  key: string;
}

export interface WebhookServerOptions {
  host: string;
  port: number;
  tls: TlsPair;
  /** Answers one decoded AdmissionReview. */
  review: (body: unknown) => Promise<AdmissionResult>;
  log: Logger;
}

export interface WebhookServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Serves new connections with another certificate. */
  setCertificate(tls: TlsPair): void;
  close(): Promise<void>;
}

const tlsOptions = (tls: TlsPair) => ({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' as const });
const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** The fastify app, not listening (tests use `inject()`); {@link startWebhookServer} listens. */
export function buildWebhookApp(opts: Omit<WebhookServerOptions, 'host' | 'port'>) {
  const { log } = opts;
  const app = Fastify({
    https: tlsOptions(opts.tls),
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger) => logger,
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    exposeHeadRoutes: false,
    return503OnClosing: false,
  });
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;

  // Any content type: the body is JSON whatever the request says (the API server sends application/json).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string) as unknown);
    } catch (err) {
      done(new BadAdmissionReviewError(err instanceof Error ? err.message : String(err)), undefined);
    }
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    void reply.code(404).send(errorBody('NotFound', `no route ${request.method} ${path}`));
  });

  app.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err instanceof BadAdmissionReviewError) return reply.code(400).send(errorBody(err.code, err.message));
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(400).send(errorBody('BadAdmissionReview', `request body larger than ${MAX_BODY_BYTES} bytes`));
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(400).send(errorBody('BadAdmissionReview', err.message));
    log.error({ err: err.message }, 'Failed to answer an AdmissionReview');
    return reply.code(500).send(errorBody('InternalError', 'the webhook failed; see the operator log'));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.all(WEBHOOK_PATH, async (request, reply) => {
    if (request.method !== 'POST')
      return reply.code(405).send(errorBody('MethodNotAllowed', `use POST ${WEBHOOK_PATH}`));
    const result = await opts.review(request.body);
    const fields = { pod: result.pod, cacheCluster: result.cacheCluster, outcome: result.outcome };
    if (result.outcome === 'injected') log.info(fields, 'Injected the sidecar');
    else if (result.outcome === 'denied' || result.outcome === 'error')
      log.warn({ ...fields, reason: result.message }, 'Denied a pod');
    else log.debug(fields, 'Admitted a pod unchanged');
    return reply.code(200).send(result.review);
  });
  return app;
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const app = buildWebhookApp(opts);
  await app.listen({ host: opts.host, port: opts.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    setCertificate: (tls) => app.server.setSecureContext(tlsOptions(tls)),
    close: () => app.close(),
  };
}
