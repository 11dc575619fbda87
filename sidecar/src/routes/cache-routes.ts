/**
 * `GET|PUT|DELETE /v1/cache/{key}` (architecture §3).
 *
 * The key is the rest of the path, percent-decoded (so it may contain `/`); 1–1024 bytes of UTF-8.
 * Values are raw bytes of any Content-Type (no parsing), up to `--max-value-bytes`.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SidecarConfig } from '../config.js';
import { InvalidRequestError, RedisUnavailableError } from '../errors.js';
import { validateKey } from '../key.js';
import type { SidecarMetrics } from '../metrics.js';
import {
  ERROR_SCHEMA,
  errorBody,
  MAX_TTL_SECONDS,
  methodNotAllowed,
  type RouteConfig,
} from '../plugins/error-handler.js';
import type { NodeRead } from '../redis/redis-l2.js';
import type { TieredCache } from '../tiers/tiered-cache.js';
import type { WritePolicyHandler } from '../write/write-policy.js';

export interface CacheRoutesOptions {
  cache: TieredCache;
  metrics: SidecarMetrics;
  config: SidecarConfig;
  /** Reads a key on every Redis node (absent in L1-only mode). */
  readAllNodes?: (key: string) => Promise<NodeRead[]>;
  /** The write policy against the origin (absent: no origin, writes go to the tiers). */
  writer?: WritePolicyHandler;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const MAX_CONTENT_TYPE_LENGTH = 256;
const EMPTY = Buffer.alloc(0);
const TIER_LABEL = { L1: 'l1', 'L1-STALE': 'l1-stale', L2: 'l2', ORIGIN: 'origin' } as const;

type KeyParams = { '*': string };

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
  const { cache, metrics, config, readAllNodes, writer } = options;
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
        },
        response: { 200: CONSISTENCY_SCHEMA, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
      },
    },
    (request, reply) => {
      // Not async: an L1 hit is answered synchronously, without a promise.
      const key = request.params['*'];
      validateKey(key);
      if (request.query.consistency === 'all') return consistencyAll(key, reply);
      const value = cache.getL1(key);
      if (value === undefined) return getBeyondL1(key, reply);
      l1Hit.record(reply.elapsedTime / 1000);
      reply.header('content-type', value.contentType).header('x-cache', 'L1').send(value.body);
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
    return reply
      .header('content-type', result.value.contentType)
      .header('x-cache', result.tier)
      .send(result.value.body);
  }

  app.put<{ Params: KeyParams; Querystring: { ttl?: number } }>(
    '/v1/cache/*',
    {
      config: { operation: 'put' } satisfies RouteConfig,
      bodyLimit: config.maxValueBytes,
      schema: {
        querystring: {
          type: 'object',
          properties: { ttl: { type: 'integer', minimum: 1, maximum: MAX_TTL_SECONDS } },
        },
        response: { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
      },
    },
    async (request, reply) => {
      const key = request.params['*'];
      validateKey(key);
      const body = (request.body as Buffer | undefined) ?? EMPTY;
      const contentType = request.headers['content-type'] ?? DEFAULT_CONTENT_TYPE;
      if (contentType.length > MAX_CONTENT_TYPE_LENGTH) {
        throw new InvalidRequestError(`the Content-Type is longer than ${MAX_CONTENT_TYPE_LENGTH} characters`);
      }
      const ttl = request.query.ttl ?? config.defaultTTLSeconds;
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
      schema: { response: { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } },
    },
    async (request, reply) => {
      const key = request.params['*'];
      validateKey(key);
      if (writer === undefined) await cache.delete([key]);
      else await writer.delete(key);
      metrics.request('delete', writeTier, 'deleted', reply.elapsedTime / 1000);
      return reply.code(204).send();
    },
  );

  app.route({ method: ['POST', 'PATCH'], url: '/v1/cache/*', handler: methodNotAllowed('GET, HEAD, PUT, DELETE') });

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
