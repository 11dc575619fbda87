/**
 * `POST /v1/invalidate` with `{"keys":[...]}` or `{"all":true}`, and optionally `"tier":"all"` to remove
 * the keys from Redis too (default `"tier":"l1"`: every sidecar's L1 only).
 *
 * The body is read as JSON whatever its Content-Type (`curl -d` labels it
 * `application/x-www-form-urlencoded`); a body that is not JSON is 400 `InvalidBody`.
 */
import type { FastifyInstance } from 'fastify';
import { validateKey } from '../key.js';
import type { SidecarMetrics } from '../metrics.js';
import { jsonBodyParser, keepContentType } from '../plugins/content-type.js';
import { InvalidRequestError } from '../errors.js';
import {
  ERROR_SCHEMA,
  NO_QUERY,
  INVALIDATE_MAX_BODY_BYTES,
  refuseOtherMethods,
  type RouteConfig,
} from '../plugins/error-handler.js';
import type { TieredCache } from '../tiers/tiered-cache.js';

/** Keys per request at most. */
export const MAX_INVALIDATE_KEYS = 1000;

type Body = { keys?: unknown[]; all?: true; tier?: 'l1' | 'all' };

export async function invalidateRoute(
  app: FastifyInstance,
  options: {
    cache: TieredCache;
    metrics: SidecarMetrics;
    /** Throws InvalidKeyError for a key the origin could never store (absent: no origin). */
    originCheckKey?: (key: string) => void;
  },
): Promise<void> {
  const { cache, metrics, originCheckKey } = options;
  // Both series start at 0 (tier "l1" is recorded as l1, tier "all" as l2).
  metrics.series('invalidate', 'l1', 'invalidated');
  metrics.series('invalidate', 'l2', 'invalidated');

  // Every route of this plugin: whatever the Content-Type, the body goes to fastify's JSON parser (with
  // its prototype-poisoning protection).
  app.addHook('onRequest', keepContentType);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: INVALIDATE_MAX_BODY_BYTES }, jsonBodyParser(app));

  app.post<{ Body: Body }>(
    '/v1/invalidate',
    {
      config: { operation: 'invalidate' } satisfies RouteConfig,
      bodyLimit: INVALIDATE_MAX_BODY_BYTES,
      schema: {
        querystring: NO_QUERY,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            // Items are checked in the handler: ajv's coercion (on for query strings) would turn `true`
            // or `1` into the key "true" or "1".
            keys: { type: 'array', minItems: 1, maxItems: MAX_INVALIDATE_KEYS },
            // No `type` on these two, so that nothing is coerced: only a JSON true / "l1" / "all" pass.
            all: { const: true },
            tier: { enum: ['l1', 'all'] },
          },
          oneOf: [{ required: ['keys'] }, { required: ['all'] }],
        },
        response: {
          200: {
            type: 'object',
            properties: {
              keys: { type: 'integer' },
              all: { type: 'boolean' },
              tier: { type: 'string' },
              published: { type: 'boolean' },
            },
          },
          '4xx': ERROR_SCHEMA,
          '5xx': ERROR_SCHEMA,
        },
      },
    },
    async (request, reply) => {
      const { tier = 'l1' } = request.body;
      let keys: string[] | undefined;
      if (request.body.keys) {
        request.body.keys.forEach((key, i) => {
          if (typeof key !== 'string') throw new InvalidRequestError(`keys[${i}] must be a string`, 'InvalidBody');
          validateKey(key);
          originCheckKey?.(key);
        });
        keys = [...new Set(request.body.keys as string[])]; // each key once
      }
      const target = keys ? { keys } : { all: true as const };
      const published = await cache.invalidate(target, tier === 'all');
      metrics.request('invalidate', tier === 'all' ? 'l2' : 'l1', 'invalidated', reply.elapsedTime / 1000);
      return { ...(keys ? { keys: keys.length } : { all: true }), tier, published };
    },
  );

  refuseOtherMethods(app, '/v1/invalidate', ['POST']);
}
