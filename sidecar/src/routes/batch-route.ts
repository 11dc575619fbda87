/**
 * `POST /v1/batch`: many keys in one request — gets, puts (each with its own TTL and Content-Type) and
 * deletes — answered per operation, in the order of the request (batch-ops.ts has the body and the
 * checks). Operations run through the same paths as the single-key routes (the tiers for gets, the write
 * policy — or the tiers without an origin — for puts and deletes): same semantics, same error codes.
 *
 * Order and atomicity:
 *   - Operations on the same key run one after the other, in request order (a get after a put of the key
 *     reads what the put wrote, or newer). Operations on different keys run concurrently: no order among
 *     them, and a get may see a put of another key of the same batch or not.
 *   - The batch is not atomic: each operation succeeds or fails on its own (its own status and error
 *     code), and a failed one does not undo or stop the others. The response is 200 whenever the body was
 *     accepted; look at each result's status.
 *   - Under write-back the puts and deletes that start together (every first operation on a key) go to
 *     Redis in one journal script call — one group commit, one invalidation message — as far as the
 *     append batch bounds allow (write-back.ts: 128 writes and 1 MiB of values per call; a larger batch
 *     takes several calls). Each call is atomic in Redis, but writes may still be refused one by one
 *     (backlog full), and other sidecars' writes are not excluded between two calls.
 *   - Under write-through and write-around the first put or delete of each key go to the database in
 *     one call (PostgreSQL: one statement, one transaction — write-direct-many.ts), then each to Redis;
 *     later writes of a key already written in the batch go alone, after it. Without an origin each
 *     write is its own Redis transaction.
 *
 * The body is JSON whatever its Content-Type, at most {@link BATCH_MAX_BODY_BYTES} bytes (413
 * `BatchTooLarge`), with at most {@link BATCH_MAX_OPS} operations (413 `BatchTooLarge`).
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import type { SidecarConfig } from '../config-defaults.js';
import type { SidecarMetrics } from '../metrics.js';
import { jsonBodyParser, keepContentType } from '../plugins/content-type.js';
import { ERROR_SCHEMA, NO_QUERY, refuseOtherMethods, type RouteConfig } from '../plugins/error-handler.js';
import type { TieredCache } from '../tiers/tiered-cache.js';
import type { PolicyWrite, WritePolicyHandler } from '../write/write-policy.js';
import {
  BATCH_MAX_BODY_BYTES,
  BATCH_MAX_OPS,
  checkBatch,
  errorResult,
  isRefused,
  type BatchOp,
  type BatchResult,
} from './batch-ops.js';

export interface BatchRouteOptions {
  cache: TieredCache;
  metrics: SidecarMetrics;
  config: Pick<SidecarConfig, 'maxValueBytes' | 'defaultTTLSeconds'>;
  /** The write policy against the origin (absent: no origin, writes go to the tiers). */
  writer?: WritePolicyHandler;
  /** Throws InvalidKeyError for a key the origin could never store (absent: no origin). */
  originCheckKey?: (key: string) => void;
}

const TIER_LABEL = { L1: 'l1', 'L1-STALE': 'l1-stale', L2: 'l2', ORIGIN: 'origin' } as const;

export async function batchRoute(app: FastifyInstance, options: BatchRouteOptions): Promise<void> {
  const { cache, metrics, config, writer, originCheckKey } = options;
  const writeTier =
    writer === undefined ? (cache.l1Only ? 'l1' : 'l2') : writer.name === 'write-back' ? 'l2' : 'origin';

  app.addHook('onRequest', keepContentType);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BATCH_MAX_BODY_BYTES }, jsonBodyParser(app));

  /** Runs one checked operation; rejects with the error the single-key route would answer. */
  async function run(op: BatchOp, started: () => number): Promise<BatchResult> {
    if (op.op === 'get') {
      const result = await cache.get(op.key);
      if (result.tier === 'none') {
        metrics.request('batch', cache.l1Only ? 'l1' : 'l2', 'miss', started());
        return { status: 404, key: op.key, error: { code: 'NotFound', message: 'no tier holds this key' } };
      }
      metrics.request('batch', TIER_LABEL[result.tier], 'hit', started());
      const { body, contentType } = result.value;
      const utf8 = isUtf8(body);
      return {
        status: 200,
        key: op.key,
        value: body.toString(utf8 ? 'utf8' : 'base64'),
        encoding: utf8 ? 'utf8' : 'base64',
        contentType,
        tier: result.tier,
      };
    }
    if (op.op === 'put') {
      if (writer === undefined) await cache.put(op.key, op.value, op.ttlSeconds);
      else await writer.put(op.key, op.value, op.ttlSeconds);
      metrics.request('batch', writeTier, 'stored', started());
    } else {
      if (writer === undefined) await cache.delete([op.key]);
      else await writer.delete(op.key);
      metrics.request('batch', writeTier, 'deleted', started());
    }
    return { status: 204, key: op.key };
  }

  app.post(
    '/v1/batch',
    {
      config: { operation: 'batch' } satisfies RouteConfig,
      bodyLimit: BATCH_MAX_BODY_BYTES,
      schema: { querystring: NO_QUERY, response: { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } },
    },
    async (request, reply) => {
      const checked = checkBatch(request.body, {
        maxValueBytes: config.maxValueBytes,
        defaultTTLSeconds: config.defaultTTLSeconds,
        maxOps: BATCH_MAX_OPS,
        ...(originCheckKey ? { originCheckKey } : {}),
      });
      const started = () => reply.elapsedTime / 1000;
      const results: BatchResult[] = new Array<BatchResult>(checked.length);
      /** The last operation started on each key: the next one on the key waits for it. */
      const tails = new Map<string, Promise<void>>();
      const runs: Promise<void>[] = [];
      /** First writes of their keys for the policy's writeMany (one origin call). */
      const wave: { op: BatchOp; resolve: (r: BatchResult) => void; reject: (err: unknown) => void }[] = [];
      checked.forEach((op, i) => {
        if (isRefused(op)) {
          results[i] = errorResult(op.key, op.error);
          metrics.request('batch', 'none', op.error.code, started());
          return;
        }
        const settle = (r: BatchResult) => {
          results[i] = r;
        };
        const fail = (err: unknown) => {
          const r = errorResult(op.key, err);
          results[i] = r;
          if (!('error' in r) || r.status >= 500) {
            request.log.warn(
              { key: op.key, op: op.op, code: 'error' in r ? r.error.code : undefined },
              'A batch operation failed',
            );
          }
          metrics.request('batch', 'none', 'error' in r ? r.error.code : 'Internal', started());
        };
        const prev = tails.get(op.key);
        let p: Promise<void>;
        if (prev === undefined && op.op !== 'get' && writer?.writeMany !== undefined) {
          // A first write of its key, under write-through or write-around: joins the batch's origin call.
          p = new Promise<BatchResult>((resolve, reject) => wave.push({ op, resolve, reject })).then(settle, fail);
        } else {
          // The first operation on a key starts now (under write-back the batch's writes share a group
          // commit); a later one waits for the one before it.
          p = (prev === undefined ? run(op, started) : prev.then(() => run(op, started))).then(settle, fail);
        }
        tails.set(op.key, p);
        runs.push(p);
      });
      if (wave.length > 0 && writer?.writeMany !== undefined) {
        const writes = wave.map(({ op }) => op as PolicyWrite);
        writer.writeMany(writes).then(
          (outcomes) =>
            wave.forEach((w, j) => {
              const err = outcomes[j];
              if (err !== undefined) return w.reject(err);
              metrics.request('batch', writeTier, w.op.op === 'put' ? 'stored' : 'deleted', started());
              w.resolve({ status: 204, key: w.op.key });
            }),
          (err: unknown) => wave.forEach((w) => w.reject(err)),
        );
      }
      await Promise.all(runs);
      return reply.code(200).send({ results });
    },
  );

  refuseOtherMethods(app, '/v1/batch', ['POST']);
}
