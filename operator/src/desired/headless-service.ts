import {
  EXPORTER_PORT,
  EXPORTER_PORT_NAME,
  REDIS_CLUSTER_BUS_PORT,
  REDIS_CLUSTER_BUS_PORT_NAME,
  REDIS_PORT,
  REDIS_PORT_NAME,
} from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { Service, ServicePort } from './kube-types.js';
import { selectorLabels } from './labels.js';
import { headlessServiceName } from './names.js';
import { childMetadata } from './owner-reference.js';
import { resolveSpec } from './resolved-spec.js';

/**
 * `<name>-headless`: the StatefulSet's governing Service. Every pod gets the DNS name
 * `<name>-<i>.<name>-headless.<ns>.svc`, published before the pod is ready so that replicas can find
 * the primary while it starts. Carries the exporter's `metrics` port when the exporter runs, and the cluster bus
 * port with topology cluster (one headless Service for every shard's StatefulSet).
 */
export function desiredHeadlessService(cc: CacheCluster, _opts: DesiredOptions = {}): Service {
  const ports: ServicePort[] = [
    { name: REDIS_PORT_NAME, port: REDIS_PORT, targetPort: REDIS_PORT_NAME, protocol: 'TCP' },
  ];
  if (resolveSpec(cc).topology === 'cluster')
    ports.push({
      name: REDIS_CLUSTER_BUS_PORT_NAME,
      port: REDIS_CLUSTER_BUS_PORT,
      targetPort: REDIS_CLUSTER_BUS_PORT_NAME,
      protocol: 'TCP',
    });
  if (resolveSpec(cc).exporter) {
    ports.push({ name: EXPORTER_PORT_NAME, port: EXPORTER_PORT, targetPort: EXPORTER_PORT_NAME, protocol: 'TCP' });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(cc, headlessServiceName(cc)),
    spec: {
      type: 'ClusterIP',
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: selectorLabels(cc),
      ports,
    },
  };
}
