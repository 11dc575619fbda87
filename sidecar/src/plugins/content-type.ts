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
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { InvalidRequestError } from '../errors.js';

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

/**
 * fastify's JSON parser (with its prototype-poisoning protection: a `__proto__` or `constructor.prototype`
 * property is refused), for routes whose body is JSON whatever its Content-Type, with errors that say what
 * is wrong: JSON's own syntax error, or the refused property (which fastify reports as "not valid JSON").
 */
export function jsonBodyParser(app: FastifyInstance) {
  const parse = app.getDefaultJsonParser('error', 'error');
  return (request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void): void => {
    void parse(request, body, (err: Error | null, value?: unknown) => {
      if (!err || body.length === 0) {
        done(err, value);
        return;
      }
      try {
        JSON.parse(body);
      } catch (syntax) {
        // Only the position: V8's message quotes the body, which may hold values (rejections are logged).
        const at = /at position (\d+)/.exec((syntax as Error).message)?.[1];
        const where = at === undefined ? '' : ` (at character ${at})`;
        done(new InvalidRequestError(`the body is not valid JSON${where}`, 'InvalidBody'));
        return;
      }
      done(
        new InvalidRequestError(
          'the body has a "__proto__" or "constructor.prototype" property, which is refused',
          'InvalidBody',
        ),
      );
    });
  };
}
