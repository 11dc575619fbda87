import { LABEL_ROLE, REDIS_PORT, REDIS_PORT_NAME, ROLE_PRIMARY, ROLE_REPLICA } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { Service } from './kube-types.js';
import { selectorLabels } from './labels.js';
import { clientServiceName, replicasServiceName } from './names.js';
import { childMetadata } from './owner-reference.js';
import { resolveSpec } from './resolved-spec.js';

/**
 * `<name>`: the Service clients (and sidecars) use to reach the primary, `<name>.<ns>.svc:6379`.
 * Standalone: the one pod. Replication: the pod labelled `cache.ripplecache.io/role: primary`, which only the
 * operator writes (on one pod at most: on failover it removes the label from the old primary first).
 * Cluster: every Redis Cluster node of every shard. Any node is a valid seed: a cluster client (ioredis
 * Cluster) asks it for CLUSTER SLOTS and then connects to each node's announced address.
 */
export function desiredClientService(cc: CacheCluster, _opts: DesiredOptions = {}): Service {
  const selector = selectorLabels(cc);
  if (resolveSpec(cc).topology === 'replication') selector[LABEL_ROLE] = ROLE_PRIMARY;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(cc, clientServiceName(cc)),
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: REDIS_PORT_NAME, port: REDIS_PORT, targetPort: REDIS_PORT_NAME, protocol: 'TCP' }],
    },
  };
}

/**
 * `<name>-replicas` (topology replication only): the ready pods labelled `cache.ripplecache.io/role: replica`,
 * i.e. replicating from the current primary with their link up. Sidecars read from it (`--redis-replica`).
 */
export function desiredReplicasService(cc: CacheCluster, _opts: DesiredOptions = {}): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(cc, replicasServiceName(cc)),
    spec: {
      type: 'ClusterIP',
      selector: { ...selectorLabels(cc), [LABEL_ROLE]: ROLE_REPLICA },
      ports: [{ name: REDIS_PORT_NAME, port: REDIS_PORT, targetPort: REDIS_PORT_NAME, protocol: 'TCP' }],
    },
  };
}
