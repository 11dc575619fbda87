/**
 * Turns every error into `{"error":{"code","message"}}` with a stable code (errors.ts): thrown
 * SidecarErrors, fastify's own errors (body too large, schema validation, bad URL encoding), unknown
 * routes, and anything unexpected (500, logged; its message is not shown to the client).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  BatchTooLargeError,
  BodyTooLargeError,
  describeError,
  InvalidKeyError,
  InvalidRequestError,
  InvalidTTLError,
  NotFoundError,
  SidecarError,
  ValueTooLargeError,
  type ErrorCode,
} from '../errors.js';
import type { Operation, SidecarMetrics } from '../metrics.js';
import { TTL_RULE } from '../ttl.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

/** JSON schema of the error body, for route response schemas. */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

/** The query string of a route that takes no parameter: any is refused by name (a typo is not ignored). */
export const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

/** Route config: which operation a route is, for metrics. */
export interface RouteConfig {
  operation?: Operation;
}

const CACHE_PREFIX = '/v1/cache/';
const BATCH_PATH = '/v1/batch';
const INVALIDATE_PATH = '/v1/invalidate';
/** Bytes of a `POST /v1/batch` body at most (JSON; base64 values take 4/3 of their size). */
export const BATCH_MAX_BODY_BYTES = 16 * 1024 * 1024;
/**
 * Bytes of a `POST /v1/invalidate` body at most: 1000 keys of 1024 bytes, each byte a JSON `\u00XX` escape
 * at worst (6 MiB), with room to spare.
 */
export const INVALIDATE_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Bytes of a body at most on every other URL (routes that take none, unknown routes). */
export function defaultBodyLimit(maxValueBytes: number): number {
  return Math.max(maxValueBytes, 2 * 1024 * 1024);
}

/**
 * The body limit of a request URL, and the error a body over it gets: the same for a request refused
 * at `Expect: 100-continue` (http-server.ts) and one whose body fastify cut off.
 */
export function bodyLimitFor(url: string, maxValueBytes: number): { limit: number; error: () => SidecarError } {
  const path = url.split('?', 1)[0] ?? '';
  if (path.startsWith(CACHE_PREFIX)) {
    return {
      limit: maxValueBytes,
      error: () => new ValueTooLargeError(`the value is larger than the limit of ${maxValueBytes} bytes`),
    };
  }
  if (path === BATCH_PATH) {
    return {
      limit: BATCH_MAX_BODY_BYTES,
      error: () => new BatchTooLargeError(`the batch body is larger than the limit of ${BATCH_MAX_BODY_BYTES} bytes`),
    };
  }
  const limit = path === INVALIDATE_PATH ? INVALIDATE_MAX_BODY_BYTES : defaultBodyLimit(maxValueBytes);
  return { limit, error: () => new BodyTooLargeError(`the body is larger than the limit of ${limit} bytes`) };
}

/** Maps any error to a SidecarError; `undefined` for an unexpected one (a 500). */
export function toApiError(
  err: FastifyError | Error,
  request: FastifyRequest,
  maxValueBytes: number,
): SidecarError | undefined {
  if (err instanceof SidecarError) return err;
  const fe = err as FastifyError;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bodyLimitFor(request.url, maxValueBytes).error();
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return request.url.startsWith(CACHE_PREFIX)
        ? new InvalidKeyError(
            fe.code === 'FST_ERR_BAD_URL'
              ? 'the key is not valid percent-encoded UTF-8'
              : 'the key is longer than 1024 bytes of UTF-8',
          )
        : new InvalidRequestError('the URL is not valid');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      // Routes that take a body accept any Content-Type (content-type.ts); only a request for no route
      // with a malformed one gets here: it is the 404 it would be with any other Content-Type.
      return request.is404
        ? new NotFoundError(`no route ${request.method} ${request.url.split('?', 1)[0] ?? ''}`)
        : new InvalidRequestError('the Content-Type is not a valid media type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidRequestError('the body is not valid JSON', 'InvalidBody');
  }
  if (fe.validation) {
    const where = fe.validationContext;
    const unknown = fe.validation.find((v) => v.keyword === 'additionalProperties');
    const name = unknown?.params?.additionalProperty;
    if (unknown !== undefined && typeof name === 'string') {
      const path = unknown.instancePath.replace(/^\//, '').replaceAll('/', '.');
      if (where === 'querystring') return new InvalidRequestError(`unknown query parameter ${JSON.stringify(name)}`);
      return new InvalidRequestError(
        `${where ?? 'request'}${path === '' ? '' : `.${path}`} has an unknown property ${JSON.stringify(name)}`,
        where === 'body' ? 'InvalidBody' : 'InvalidRequest',
      );
    }
    const message = `${where ?? 'request'}${fe.message.replace(/^[a-z]+/, '')}`;
    if (
      where === 'querystring' &&
      fe.validation.some((v) => v.instancePath === '/ttl' || v.params?.missingProperty === 'ttl')
    ) {
      return new InvalidTTLError(TTL_RULE);
    }
    return new InvalidRequestError(message, where === 'body' ? 'InvalidBody' : 'InvalidRequest');
  }
  if (err instanceof SyntaxError && fe.statusCode === 400)
    return new InvalidRequestError('the body is not valid JSON', 'InvalidBody');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new InvalidRequestError(fe.message);
  }
  return undefined;
}

export function installErrorHandling(app: FastifyInstance, metrics: SidecarMetrics, maxValueBytes: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const apiError = toApiError(err, request, maxValueBytes);
    const operation = (request.routeOptions.config as RouteConfig | undefined)?.operation;
    if (apiError === undefined) {
      request.log.error(
        {
          error: describeError(err, { stack: true }),
          reqId: request.id,
          method: request.method,
          route: request.routeOptions.url,
        },
        'Failed to handle a request',
      );
      if (operation) metrics.request(operation, 'none', 'Internal', reply.elapsedTime / 1000);
      return reply.code(500).send(errorBody('Internal', 'internal error'));
    }
    const where = { reqId: request.id, method: request.method, route: request.routeOptions.url };
    if (apiError.statusCode >= 500)
      request.log.warn({ ...where, error: describeError(apiError) }, 'Failed to serve a request');
    else request.log.debug({ ...where, code: apiError.code, message: apiError.message }, 'Rejected a request');
    if (operation) metrics.request(operation, 'none', apiError.code, reply.elapsedTime / 1000);
    if (apiError.statusCode === 503) reply.header('retry-after', '1');
    return reply.code(apiError.statusCode).send(errorBody(apiError.code, apiError.message));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('NotFound', `no route ${request.method} ${request.url.split('?', 1)[0] ?? ''}`));
  });
}

/** fastify's `frameworkErrors` option: errors raised before routing (bad URL encoding, long params). */
export function frameworkErrors(maxValueBytes: number) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(err, request, maxValueBytes) ?? new InvalidRequestError('bad request');
    reply.code(apiError.statusCode).send(errorBody(apiError.code, apiError.message));
  };
}

/** The methods fastify routes (the others never reach a route: 404). */
const ROUTED_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS'] as const;
type RoutedMethod = (typeof ROUTED_METHODS)[number];

/**
 * Answers 405 `MethodNotAllowed`, with an `Allow` header, for every method `url` has no route for. The
 * answer is given before the body is read or parsed, so that a body of any Content-Type or size gets it.
 */
export function refuseOtherMethods(app: FastifyInstance, url: string, allowed: readonly RoutedMethod[]): void {
  const allow = allowed.join(', ');
  app.route({
    method: ROUTED_METHODS.filter((m) => !allowed.includes(m)),
    url,
    onRequest: async (request, reply) => {
      reply
        .code(405)
        .header('allow', allow)
        .send(errorBody('MethodNotAllowed', `${request.method} is not allowed here; use ${allow}`));
      return reply;
    },
    handler: async () => undefined,
  });
}
