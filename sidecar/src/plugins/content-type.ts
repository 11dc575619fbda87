/**
 * No request is refused for its Content-Type. fastify answers 415 on its own, before any body parser runs,
 * when the header is present but empty or not a valid media type (`text`, `;;;`); the API instead stores
 * PUT bodies as opaque bytes under the Content-Type exactly as sent, and reads `POST /v1/invalidate` as
 * JSON whatever it is labelled.
 *
 * {@link keepContentType} is an `onRequest` hook for routes that take a body: it remembers the header as
 * sent and shows fastify `application/octet-stream` instead, which the routes' catch-all parsers accept.
 * Routes read the header as sent with {@link sentContentType}. (It is a per-route hook, not a global one:
 * GET and HEAD never have their body parsed, and the L1 hit path stays free of hooks.)
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/** What fastify is shown as the Content-Type of a request that sent one. */
const NEUTRAL_CONTENT_TYPE = 'application/octet-stream';

const sent = new WeakMap<IncomingMessage, string>();

export function keepContentType(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const headers = request.raw.headers;
  const contentType = headers['content-type'];
  if (contentType !== undefined) {
    sent.set(request.raw, contentType);
    headers['content-type'] = NEUTRAL_CONTENT_TYPE;
  }
  done();
}

/**
 * The Content-Type header as the client sent it (Node has already trimmed the surrounding whitespace);
 * `undefined` when it sent none or an empty one.
 */
export function sentContentType(request: FastifyRequest): string | undefined {
  const contentType = sent.get(request.raw) ?? request.raw.headers['content-type'];
  return contentType === '' ? undefined : contentType;
}
