/**
 * Pieces shared by the tests of a replication CacheCluster on simulated pods (failover, failover under
 * writes, rolling updates): the local redis-servers standing in for its pods, and a sampler of the pods
 * labelled primary.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { LABEL_ROLE, PLACEHOLDER_PRIMARY } from '../../operator/src/api/v1alpha1/constants.js';
import { startRedis, type RedisProcess } from './redis.js';

export interface LocalReplicationPods {
  /** Pod i's redis-server: 0 the primary, the others its replicas. */
  redis: RedisProcess[];
  /** Pod name → local address, for the pod simulator and the Service stand-in. */
  addresses: Record<string, { host: string; port: number }>;
  /** `namespace/pod` → `host:port`, the operator's `--pod-address-override`s. */
  overrides: Record<string, string>;
}

/**
 * Starts one redis-server per pod of `name` (pods `name-0` … `name-(pods-1)`), 1… replicas of 0. With
 * `asPods`, every one starts as the real pods do (redis.conf's `replicaof` the placeholder primary, no role): the
 * operator then makes the first primary and its replicas. With `password`, each runs with it (requirepass and
 * masterauth).
 */
export async function startReplicationPods(
  namespace: string,
  name: string,
  pods: number,
  opts: { asPods?: boolean; password?: string } = {},
): Promise<LocalReplicationPods> {
  const placeholder = ['--replicaof', PLACEHOLDER_PRIMARY.host, String(PLACEHOLDER_PRIMARY.port)];
  // With `password`: requirepass and masterauth, as the pods' entrypoint sets them from the auth Secret.
  const auth = opts.password !== undefined ? { password: opts.password } : {};
  const primary = await startRedis(opts.asPods ? { args: placeholder, ...auth } : auth);
  const redis = [primary];
  for (let i = 1; i < pods; i++)
    redis.push(
      await startRedis({
        args: opts.asPods ? placeholder : ['--replicaof', '127.0.0.1', String(primary.port)],
        ...auth,
      }),
    );
  const addresses: Record<string, { host: string; port: number }> = {};
  const overrides: Record<string, string> = {};
  redis.forEach((r, i) => {
    addresses[`${name}-${i}`] = { host: '127.0.0.1', port: r.port };
    overrides[`${namespace}/${name}-${i}`] = `127.0.0.1:${r.port}`;
  });
  return { redis, addresses, overrides };
}

/**
 * Lists the pods of `name` labelled primary every 50 ms until `stop()`, which answers the most seen at
 * once, how many samples were taken (failed lists are not samples) and over how long.
 */
export function samplePrimaries(
  core: CoreV1Api,
  namespace: string,
  name: string,
): { stop(): Promise<{ max: number; samples: number; elapsedMs: number }> } {
  const started = Date.now();
  let max = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const list = await core
        .listNamespacedPod({ namespace, labelSelector: `cache.ripplecache.io/cluster=${name},${LABEL_ROLE}=primary` })
        .catch(() => undefined);
      if (list) {
        samples++;
        max = Math.max(max, list.items.length);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { max, samples, elapsedMs: Date.now() - started };
    },
  };
}
