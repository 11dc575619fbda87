/**
 * Names and DNS names of a CacheCluster's children. Replicas and the primary are always addressed
 * through the headless Service's DNS, never through pod IPs.
 */
import { REDIS_PORT } from '../api/v1alpha1/constants.js';
import type { CacheClusterMetadata } from '../api/v1alpha1/types.js';

/** Anything that names a CacheCluster. */
export type CacheClusterRef = { metadata: Pick<CacheClusterMetadata, 'name' | 'namespace'> };

/** `<name>-config`: `redis.conf` and `sidecar.yaml`. */
export function configMapName(cc: CacheClusterRef): string {
  return `${cc.metadata.name}-config`;
}

/** `<name>-headless`: the StatefulSet's governing Service; gives every pod a stable DNS name. */
export function headlessServiceName(cc: CacheClusterRef): string {
  return `${cc.metadata.name}-headless`;
}

/** `<name>`: the Service that reaches the primary. */
export function clientServiceName(cc: CacheClusterRef): string {
  return cc.metadata.name;
}

/** `<name>-replicas`: the Service that reaches the ready replicas (topology replication). */
export function replicasServiceName(cc: CacheClusterRef): string {
  return `${cc.metadata.name}-replicas`;
}

/** `<name>-replicas.<ns>.svc`: the replicas Service's DNS name. */
export function replicasServiceHost(cc: CacheClusterRef): string {
  return `${replicasServiceName(cc)}.${cc.metadata.namespace}.svc`;
}

/** `<name>`. */
export function statefulSetName(cc: CacheClusterRef): string {
  return cc.metadata.name;
}

/** `<name>`. */
export function podDisruptionBudgetName(cc: CacheClusterRef): string {
  return cc.metadata.name;
}

/** `<name>-flush`. */
export function flushCronJobName(cc: CacheClusterRef): string {
  return `${cc.metadata.name}-flush`;
}

/** `<name>-<ordinal>`. */
export function podName(cc: CacheClusterRef, ordinal: number): string {
  return `${cc.metadata.name}-${ordinal}`;
}

/** `<name>-<ordinal>.<name>-headless.<ns>.svc`: a pod's stable DNS name. */
export function podHost(cc: CacheClusterRef, ordinal: number): string {
  return `${podName(cc, ordinal)}.${headlessServiceName(cc)}.${cc.metadata.namespace}.svc`;
}

/** `<name>.<ns>.svc`: the client Service's DNS name. */
export function serviceHost(cc: CacheClusterRef): string {
  return `${clientServiceName(cc)}.${cc.metadata.namespace}.svc`;
}

/** `<name>.<ns>.svc:6379`, as `status.endpoints.service` shows it. */
export function serviceEndpoint(cc: CacheClusterRef): string {
  return `${serviceHost(cc)}:${REDIS_PORT}`;
}

/** Topology cluster: `<name>-shard-<shard>`, the StatefulSet of one shard (its primary and replicas). */
export function shardStatefulSetName(cc: CacheClusterRef, shard: number): string {
  return `${cc.metadata.name}-shard-${shard}`;
}

/** Topology cluster: `<name>-shard-<shard>-<ordinal>`. */
export function shardPodName(cc: CacheClusterRef, shard: number, ordinal: number): string {
  return `${shardStatefulSetName(cc, shard)}-${ordinal}`;
}
