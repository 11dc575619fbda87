/**
 * The webhook's HTTPS server (node:https): `POST /inject-sidecar` answers AdmissionReviews,
 * `GET /healthz` says it is up. The certificate can be replaced while serving (rotation).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { BadAdmissionReviewError, type AdmissionResult } from './admission.js';

/** The path the MutatingWebhookConfiguration calls. */
export const WEBHOOK_PATH = '/inject-sidecar';
/** Largest AdmissionReview accepted (a Pod is at most ~1.5 MB in etcd; a review can carry it twice). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

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

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadAdmissionReviewError(`request body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.log;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path !== WEBHOOK_PATH)
      return send(res, 404, { error: { code: 'NotFound', message: `no route ${req.method} ${path}` } });
    if (req.method !== 'POST')
      return send(res, 405, { error: { code: 'MethodNotAllowed', message: `use POST ${WEBHOOK_PATH}` } });
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req)) as unknown;
    } catch (err) {
      return send(res, 400, {
        error: { code: 'BadAdmissionReview', message: err instanceof Error ? err.message : String(err) },
      });
    }
    try {
      const result = await opts.review(body);
      const fields = { pod: result.pod, cacheCluster: result.cacheCluster, outcome: result.outcome };
      if (result.outcome === 'injected') log.info(fields, 'Injected the sidecar');
      else if (result.outcome === 'denied' || result.outcome === 'error')
        log.warn({ ...fields, reason: result.message }, 'Denied a pod');
      else log.debug(fields, 'Admitted a pod unchanged');
      return send(res, 200, result.review);
    } catch (err) {
      if (err instanceof BadAdmissionReviewError)
        return send(res, 400, { error: { code: err.code, message: err.message } });
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'Failed to answer an AdmissionReview');
      return send(res, 500, { error: { code: 'InternalError', message: 'the webhook failed; see the operator log' } });
    }
  };
  const server: Server = createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'Webhook request failed');
      if (!res.headersSent) send(res, 500, { error: { code: 'InternalError', message: 'internal error' } });
    });
  });
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate: (tls) => server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
