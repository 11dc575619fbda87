/**
 * Turns every error into `{"error":{"code","message"}}` with a stable code (errors.ts): thrown
 * SidecarErrors, fastify's own errors (body too large, schema validation, bad URL encoding), unknown
 * routes, and anything unexpected (500, logged; its message is not shown to the client).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  BatchTooLargeError,
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

/** Route config: which operation a route is, for metrics. */
export interface RouteConfig {
  operation?: Operation;
}

const CACHE_PREFIX = '/v1/cache/';
const BATCH_PATH = '/v1/batch';
/** Bytes of a `POST /v1/batch` body at most (JSON; base64 values take 4/3 of their size). */
export const BATCH_MAX_BODY_BYTES = 16 * 1024 * 1024;

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
      if (request.url.startsWith(BATCH_PATH)) {
        return new BatchTooLargeError(`the batch body is larger than the limit of ${BATCH_MAX_BODY_BYTES} bytes`);
      }
      return new ValueTooLargeError(`the value is larger than the limit of ${maxValueBytes} bytes`);
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
        { err: describeError(err), reqId: request.id, method: request.method, route: request.routeOptions.url },
        'Failed to handle a request',
      );
      if (operation) metrics.request(operation, 'none', 'Internal', reply.elapsedTime / 1000);
      return reply.code(500).send(errorBody('Internal', 'internal error'));
    }
    const where = { reqId: request.id, method: request.method, route: request.routeOptions.url };
    if (apiError.statusCode >= 500)
      request.log.warn({ ...where, err: describeError(apiError) }, 'Failed to serve a request');
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

/** A handler answering 405 with an `Allow` header. */
export function methodNotAllowed(allow: string) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    reply
      .code(405)
      .header('allow', allow)
      .send(errorBody('MethodNotAllowed', `${request.method} is not allowed here; use ${allow}`));
  };
}
