/**
 * `GET|PUT|DELETE /v1/cache/{key}` (architecture §3).
 *
 * The key is the rest of the path, percent-decoded (so it may contain `/`); 1–1024 bytes of UTF-8, and
 * storable by the origin if there is one (PostgreSQL: no NUL), checked the same way by every method.
 * Values are raw bytes of any Content-Type (no parsing, stored as sent), up to `--max-value-bytes`.
 */
import { isUtf8 } from 'node:buffer';
import { validateHeaderValue } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SidecarConfig } from '../config-defaults.js';
import { InvalidRequestError, RedisUnavailableError } from '../errors.js';
import { validateKey } from '../key.js';
import type { SidecarMetrics } from '../metrics.js';
import { keepContentType, sentContentType } from '../plugins/content-type.js';
import { ERROR_SCHEMA, errorBody, NO_QUERY, refuseOtherMethods, type RouteConfig } from '../plugins/error-handler.js';
import type { NodeRead } from '../redis/redis-l2.js';
import type { CacheValue, TieredCache } from '../tiers/tiered-cache.js';
import { parseTTL } from '../ttl.js';
import type { WritePolicyHandler } from '../write/write-policy.js';

export interface CacheRoutesOptions {
  cache: TieredCache;
  metrics: SidecarMetrics;
  config: SidecarConfig;
  /** Reads a key on every Redis node (absent in L1-only mode). */
  readAllNodes?: (key: string) => Promise<NodeRead[]>;
  /** The write policy against the origin (absent: no origin, writes go to the tiers). */
  writer?: WritePolicyHandler;
  /** Throws InvalidKeyError for a key the origin could never store (absent: no origin). */
  originCheckKey?: (key: string) => void;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const MAX_CONTENT_TYPE_LENGTH = 256;
const EMPTY = Buffer.alloc(0);
const TIER_LABEL = { L1: 'l1', 'L1-STALE': 'l1-stale', L2: 'l2', ORIGIN: 'origin' } as const;

type KeyParams = { '*': string };

/**
 * A Content-Type fastify sends as it is: `type/subtype` of token characters, then nothing or `;…`.
 * (fastify replaces any other by application/octet-stream; this is a subset of what it keeps.)
 */
const MEDIA_TYPE = /^[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(?:;|$)/;

/**
 * Answers 200 with a stored value and the Content-Type it was stored with, byte for byte. (Header bytes are
 * ISO-8859-1 characters, one per byte, both ways: as Node, fetch and HTTP itself read them.)
 */
function sendValue(reply: FastifyReply, value: CacheValue, tier: string): void {
  const { contentType } = value;
  if (MEDIA_TYPE.test(contentType)) {
    reply.header('content-type', contentType).header('x-cache', tier).send(value.body);
    return;
  }
  // A Content-Type that is not a media type (stored as sent): written past fastify, which would replace it.
  // (One that cannot be sent at all, e.g. written into the origin's table by someone else: octet-stream.)
  if (!sendable(contentType)) {
    reply.header('content-type', DEFAULT_CONTENT_TYPE).header('x-cache', tier).send(value.body);
    return;
  }
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': contentType,
    'content-length': value.body.length,
    'x-cache': tier,
  });
  if (reply.request.method === 'HEAD') reply.raw.end();
  else reply.raw.end(value.body);
}

function sendable(headerValue: string): boolean {
  try {
    validateHeaderValue('content-type', headerValue);
    return true;
  } catch {
    return false;
  }
}

const CONSISTENCY_SCHEMA = {
  type: 'object',
  required: ['key', 'consistent', 'values', 'nodes'],
  properties: {
    key: { type: 'string' },
    consistent: { type: 'boolean' },
    values: {
      type: 'array',
      items: {
        type: 'object',
        required: ['value', 'encoding', 'contentType', 'nodes'],
        properties: {
          value: { type: 'string' },
          encoding: { type: 'string', enum: ['utf8', 'base64'] },
          contentType: { type: 'string' },
          nodes: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['node', 'role', 'status'],
        properties: {
          node: { type: 'string' },
          role: { type: 'string' },
          status: { type: 'string' },
          ttlMs: { type: 'integer' },
          error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  },
} as const;

export async function cacheRoutes(app: FastifyInstance, options: CacheRoutesOptions): Promise<void> {
  const { cache, metrics, config, readAllNodes, writer, originCheckKey } = options;
  /** The same key rule for every method: a key no PUT could store is refused as such by GET and DELETE too. */
  const checkKey =
    originCheckKey === undefined
      ? validateKey
      : (key: string) => {
          validateKey(key);
          originCheckKey(key);
        };
  /** The tier label of writes: the origin under write-through/write-around, Redis (the journal) under write-back. */
  const writeTier =
    writer === undefined ? (cache.l1Only ? 'l1' : 'l2') : writer.name === 'write-back' ? 'l2' : 'origin';

  // Values are opaque bytes whatever their Content-Type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxValueBytes }, (_req, body, done) =>
    done(null, body),
  );

  const l1Hit = metrics.series('get', 'l1', 'hit');
  // The other series every configuration answers, created now so that they start at 0 rather than missing.
  if (!cache.l1Only) metrics.series('get', 'l2', 'hit');
  metrics.series('get', cache.l1Only ? 'l1' : 'l2', 'miss');
  metrics.series('put', writeTier, 'stored');
  metrics.series('delete', writeTier, 'deleted');

  app.get<{ Params: KeyParams; Querystring: { consistency?: 'all' } }>(
    '/v1/cache/*',
    {
      config: { operation: 'get' } satisfies RouteConfig,
      schema: {
        querystring: {
          type: 'object',
          properties: { consistency: { type: 'string', enum: ['all'] } },
          additionalProperties: false,
        },
        response: { 200: CONSISTENCY_SCHEMA, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
      },
    },
    (request, reply) => {
      // Not async: an L1 hit is answered synchronously, without a promise.
      const key = request.params['*'];
      checkKey(key);
      if (request.query.consistency === 'all') return consistencyAll(key, reply);
      const value = cache.getL1(key);
      if (value === undefined) return getBeyondL1(key, reply);
      l1Hit.record(reply.elapsedTime / 1000);
      sendValue(reply, value, 'L1');
      return undefined;
    },
  );

  async function getBeyondL1(key: string, reply: FastifyReply) {
    const result = await cache.getBeyondL1(key);
    const seconds = reply.elapsedTime / 1000;
    if (result.tier === 'none') {
      metrics.request('get', cache.l1Only ? 'l1' : 'l2', 'miss', seconds);
      return reply.code(404).send(errorBody('NotFound', 'no tier holds this key'));
    }
    metrics.request('get', TIER_LABEL[result.tier], 'hit', seconds);
    sendValue(reply, result.value, result.tier);
    return reply;
  }

  app.put<{ Params: KeyParams; Querystring: { ttl?: string } }>(
    '/v1/cache/*',
    {
      config: { operation: 'put' } satisfies RouteConfig,
      bodyLimit: config.maxValueBytes,
      onRequest: keepContentType,
      schema: {
        // A string, checked by parseTTL: ajv's coercion would take `1e3`, `0x10`, ` 5` and `Infinity`.
        querystring: { type: 'object', properties: { ttl: { type: 'string' } }, additionalProperties: false },
        response: { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
      },
    },
    async (request, reply) => {
      const key = request.params['*'];
      checkKey(key);
      const ttl = parseTTL(request.query.ttl) ?? config.defaultTTLSeconds;
      const body = (request.body as Buffer | undefined) ?? EMPTY;
      // Stored as sent, not parsed: a malformed media type is the client's business, and a GET answers it
      // back byte for byte (Node only lets header values through that can be sent again).
      const contentType = sentContentType(request) ?? DEFAULT_CONTENT_TYPE;
      if (contentType.length > MAX_CONTENT_TYPE_LENGTH) {
        throw new InvalidRequestError(`the Content-Type is longer than ${MAX_CONTENT_TYPE_LENGTH} characters`);
      }
      if (writer === undefined) await cache.put(key, { body, contentType }, ttl);
      else await writer.put(key, { body, contentType }, ttl);
      metrics.request('put', writeTier, 'stored', reply.elapsedTime / 1000);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: KeyParams }>(
    '/v1/cache/*',
    {
      config: { operation: 'delete' } satisfies RouteConfig,
      onRequest: keepContentType,
      schema: { querystring: NO_QUERY, response: { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } },
    },
    async (request, reply) => {
      const key = request.params['*'];
      checkKey(key);
      if (writer === undefined) await cache.delete([key]);
      else await writer.delete(key);
      metrics.request('delete', writeTier, 'deleted', reply.elapsedTime / 1000);
      return reply.code(204).send();
    },
  );

  refuseOtherMethods(app, '/v1/cache/*', ['GET', 'HEAD', 'PUT', 'DELETE']);

  async function consistencyAll(key: string, reply: FastifyReply) {
    let reads: NodeRead[];
    if (readAllNodes === undefined) {
      const hit = await cache.get(key);
      reads = [
        hit.value === undefined
          ? { node: 'l1', role: 'primary', status: 'missing' }
          : { node: 'l1', role: 'primary', status: 'value', record: { ...hit.value, pttlMs: -1 } },
      ];
    } else {
      reads = await readAllNodes(key);
      if (reads.every((r) => r.status === 'error')) {
        throw new RedisUnavailableError('no Redis node could be read');
      }
    }
    const groups = new Map<
      string,
      { value: string; encoding: 'utf8' | 'base64'; contentType: string; nodes: string[] }
    >();
    for (const r of reads) {
      if (r.status !== 'value' || r.record === undefined) continue;
      const { body, contentType } = r.record;
      const id = `${contentType}\u0000${body.toString('base64')}`;
      let group = groups.get(id);
      if (group === undefined) {
        const utf8 = isUtf8(body);
        group = {
          value: body.toString(utf8 ? 'utf8' : 'base64'),
          encoding: utf8 ? 'utf8' : 'base64',
          contentType,
          nodes: [],
        };
        groups.set(id, group);
      }
      group.nodes.push(r.node);
    }
    const answered = reads.filter((r) => r.status !== 'error');
    const consistent =
      answered.length === reads.length &&
      (groups.size === 0 || (groups.size === 1 && answered.every((r) => r.status === 'value')));
    metrics.request(
      'consistency',
      readAllNodes ? 'l2' : 'l1',
      groups.size > 0 ? 'hit' : 'miss',
      reply.elapsedTime / 1000,
    );
    return {
      key,
      consistent,
      values: [...groups.values()],
      nodes: reads.map((r) => ({
        node: r.node,
        role: r.role,
        status: r.status,
        ...(r.record && r.record.pttlMs >= 0 ? { ttlMs: r.record.pttlMs } : {}),
        ...(r.error ? { error: r.error } : {}),
      })),
    };
  }
}

/** For tests: the request type with a key param. */
export type CacheRequest = FastifyRequest<{ Params: KeyParams }>;
