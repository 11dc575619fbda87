import type { CacheCluster } from '../api/v1alpha1/types.js';
import { bridgeName, bridgeServiceName, desiredBridgeDeployment, desiredBridgeService } from './bridge.js';
import { desiredClientService, desiredReplicasService } from './client-service.js';
import { desiredConfigMap } from './config-map.js';
import type { DesiredOptions } from './desired-options.js';
import { desiredFlushCronJob } from './flush-cron-job.js';
import { desiredHeadlessService } from './headless-service.js';
import type { DesiredChild } from './kube-types.js';
import {
  flushCronJobName,
  podDisruptionBudgetName,
  replicasServiceName,
  shardStatefulSetName,
  statefulSetName,
} from './names.js';
import { desiredPodDisruptionBudget } from './pod-disruption-budget.js';
import { resolveSpec } from './resolved-spec.js';
import { desiredShardStatefulSet, desiredStatefulSet } from './stateful-set.js';

/** The most shards a CacheCluster can have (the CRD's maximum of spec.shards). */
export const MAX_SHARDS = 128;

/** A child to delete if it exists. */
export interface ChildRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface DesiredChildren {
  /**
   * In apply order: ConfigMap, headless Service, client Service, StatefulSet, replicas Service (replication),
   * PDB (more than one pod), CronJob, bridge Deployment and Service (with peers).
   */
  apply: DesiredChild[];
  /** Optional children the spec no longer asks for (deleted only if this CacheCluster controls them). */
  deleteIfPresent: ChildRef[];
}

/**
 * Every child of a CacheCluster. A standalone CacheCluster (one pod) has no PodDisruptionBudget: with one
 * pod, `maxUnavailable: 1` lets a drain evict it anyway and, while the pod is not ready, blocks the drain
 * (no disruption allowed); `minAvailable: 1` would block every drain. It would protect nothing, so it is not
 * built (and an existing one is deleted), saving an object and its writes per standalone CacheCluster.
 * Topology `cluster`: one StatefulSet per shard `0 … shards-1` (`desiredShardStatefulSet`) instead of one; the
 * client Service selects every cluster node (a seed for cluster clients); no replicas Service. A shard beyond
 * `shards` (scale-in) is not listed: the cluster step deletes its StatefulSet once its slots have moved away.
 * A topology change leaves nothing of the old topology behind: the StatefulSet `<name>` is deleted when the
 * topology becomes cluster, and every shard StatefulSet `<name>-shard-<i>` (any index the CRD allows) when it
 * stops being cluster (their pods go with them; with persistence, their claims follow the retention policy).
 * Throws `InvalidSpecError` for eviction settings the operator cannot realise.
 */
export function desiredChildren(cc: CacheCluster, opts: DesiredOptions = {}): DesiredChildren {
  const spec = resolveSpec(cc);
  const apply: DesiredChild[] = [
    desiredConfigMap(cc, opts),
    desiredHeadlessService(cc, opts),
    desiredClientService(cc, opts),
    ...(spec.topology === 'cluster'
      ? Array.from({ length: spec.shards }, (_, i) => desiredShardStatefulSet(cc, i, opts))
      : [desiredStatefulSet(cc, opts)]),
  ];
  const namespace = cc.metadata.namespace;
  const deleteIfPresent: ChildRef[] =
    spec.topology === 'cluster'
      ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace, name: statefulSetName(cc) }]
      : Array.from({ length: MAX_SHARDS }, (_, i) => ({
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          namespace,
          name: shardStatefulSetName(cc, i),
        }));
  if (spec.topology === 'replication') apply.push(desiredReplicasService(cc, opts));
  else
    deleteIfPresent.push({
      apiVersion: 'v1',
      kind: 'Service',
      namespace: cc.metadata.namespace,
      name: replicasServiceName(cc),
    });
  if (spec.pods * spec.shards > 1) apply.push(desiredPodDisruptionBudget(cc, opts));
  else
    deleteIfPresent.push({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      namespace: cc.metadata.namespace,
      name: podDisruptionBudgetName(cc),
    });
  const cronJob = desiredFlushCronJob(cc, opts);
  if (cronJob) apply.push(cronJob);
  else
    deleteIfPresent.push({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      namespace: cc.metadata.namespace,
      name: flushCronJobName(cc),
    });
  const bridge = opts.bridge;
  if (bridge && bridge.peers.length > 0) {
    apply.push(desiredBridgeDeployment(cc, bridge.peers, bridge.image), desiredBridgeService(cc));
  } else if (bridge) {
    deleteIfPresent.push(
      { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name: bridgeName(cc) },
      { apiVersion: 'v1', kind: 'Service', namespace, name: bridgeServiceName(cc) },
    );
  }
  // The bridge's Service of earlier versions, `<name>-bridge`: deleted only if this CacheCluster controls
  // it (it may be the client Service of a CacheCluster named `<name>-bridge`; cache-cluster.ts checks).
  if (bridge) deleteIfPresent.push({ apiVersion: 'v1', kind: 'Service', namespace, name: bridgeName(cc) });
  return { apply, deleteIfPresent };
}
