/**
 * The HTTP server under fastify, and the answers given before a request reaches fastify, all in the API's
 * error format `{"error":{"code","message"}}`:
 *
 * - a request Node's parser refuses (malformed request line, header or chunk; headers over the limit; a
 *   request that took too long): 400 `BadRequest`, 431 `HeadersTooLarge` or 408 `RequestTimeout`
 *   ({@link clientErrorHandler});
 * - an HTTP/1.1 request without `Host`: 400 `BadRequest` (Node's own check answers without a body);
 * - `Expect: 100-continue` with a `Content-Length` over the body limit of the request's URL: the 413 a body
 *   over that limit gets (`ValueTooLarge`, `BatchTooLarge` or `BodyTooLarge`) instead of `100 Continue`, so
 *   that the client never sends the body; under the limit, `100 Continue` and the request goes on to fastify;
 * - a `CONNECT` request (this is not a proxy): 400 `BadRequest`;
 * - any other expectation: 417 `ExpectationFailed`.
 *
 * Each of these answers has `Connection: close` and a `Content-Length`, and the connection is then closed
 * with a FIN, not a reset.
 */
import {
  createServer,
  maxHeaderSize,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCode, type SidecarError } from '../errors.js';

/**
 * After answering a request the parser refused, the connection is kept reading (and discarding) for at
 * most this long, waiting for the client to close it: closing with unread data would send a reset, which
 * can reach the client before it has read the answer.
 */
const LINGER_MS = 5000;

/** The options of fastify that the server needs (fastify passes its own, with its defaults applied). */
interface FastifyServerOptions {
  keepAliveTimeout?: number;
  requestTimeout?: number;
  connectionTimeout?: number;
  maxRequestsPerSocket?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The error body, serialised. */
export function errorJson(code: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Answers through a response object: the error body, `Connection: close`. */
function answer(res: ServerResponse, code: ErrorCode, message: string): void {
  const body = errorJson(code, message);
  res.writeHead(ERROR_CODES[code], {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/**
 * fastify's `serverFactory`: a plain `http.Server` set up as fastify sets up its own, plus the checks
 * above. `bodyLimit(url)` is the largest body fastify will accept for the URL and the error for one over it.
 */
export function httpServerFactory(bodyLimit: (url: string) => { limit: number; error: () => SidecarError }) {
  return (handler: Handler, options: FastifyServerOptions): Server => {
    // Node's own Host check answers a 400 without a body; the wrapper below answers it instead.
    const server = createServer({ requireHostHeader: false }, (req, res) => {
      if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
        answer(res, 'BadRequest', 'an HTTP/1.1 request must have a Host header');
        return;
      }
      handler(req, res);
    });
    // As fastify does for the servers it creates.
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
    if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout;
    if (options.connectionTimeout !== undefined) server.setTimeout(options.connectionTimeout);
    if (options.maxRequestsPerSocket !== undefined && options.maxRequestsPerSocket > 0)
      server.maxRequestsPerSocket = options.maxRequestsPerSocket;

    // With a listener, Node leaves `Expect: 100-continue` to us (and emits no 'request' for it).
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const { limit, error } = bodyLimit(req.url ?? '/');
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > limit) {
        const e = error();
        answer(res, e.code, e.message);
        return;
      }
      res.writeContinue();
      server.emit('request', req, res);
    });
    server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
      answer(res, 'ExpectationFailed', 'the only expectation understood is Expect: 100-continue');
    });
    // Without a listener Node closes a CONNECT request's connection without a word.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      answerInTurn(socket, rawErrorResponse('BadRequest', 'CONNECT is not supported: this is not a proxy'));
    });
    return server;
  };
}

/** What to answer for an error of Node's HTTP parser. */
export function clientErrorAnswer(err: Error & { code?: string; reason?: unknown }): {
  code: ErrorCode;
  message: string;
} {
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return { code: 'HeadersTooLarge', message: `the request's headers are larger than ${maxHeaderSize} bytes` };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { code: 'RequestTimeout', message: 'the request was not received in time' };
  const reason = typeof err.reason === 'string' ? err.reason : err.message;
  return { code: 'BadRequest', message: `the request is not valid HTTP/1.1 (${err.code ?? 'error'}: ${reason})` };
}

/** The full HTTP response for {@link clientErrorAnswer}, to write on a bare socket. */
export function rawErrorResponse(code: ErrorCode, message: string): string {
  const status = ERROR_CODES[code];
  const body = errorJson(code, message);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** Sockets already answered: Node's parser keeps reporting its error for every chunk that follows. */
const answered = new WeakSet<Duplex>();

/**
 * fastify's `clientErrorHandler` (Node's `clientError` event): answers the request Node's parser refused,
 * then ends the connection cleanly.
 */
export function clientErrorHandler(
  this: FastifyInstance | { log: FastifyBaseLogger },
  err: Error & { code?: string },
  socket: Duplex,
): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { code, message } = clientErrorAnswer(err);
  this.log.debug({ code, error: err.code, message: err.message }, 'Refused a request Node could not parse');
  answerInTurn(socket, rawErrorResponse(code, message));
}

type HttpSocket = Duplex & { _httpMessage?: ServerResponse | null };

/**
 * Writes the answer once the connection's earlier responses are out: a request pipelined behind ones
 * still being answered must not have its error arrive as their answer. Then ends the connection.
 */
function answerInTurn(socket: HttpSocket, response: string): void {
  // The response Node is writing on this connection (Node's own field; its clientError default reads it).
  const inFlight = socket._httpMessage;
  if (inFlight && inFlight.req.complete && !inFlight.writableFinished) {
    // The error is in a later request: answer after this one (and any other queued behind it).
    inFlight.once('close', () => setImmediate(() => answerInTurn(socket, response)));
    return;
  }
  // A response already under way (to the request whose body failed) cannot be followed by another.
  if (socket.destroyed || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  socket.end(response);
  // Node's parser goes on reading and discarding; close for good if the client never does.
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}
