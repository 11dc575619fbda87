import { LABEL_POD_NAME, REDIS_PORT, REDIS_PORT_NAME } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { Service } from './kube-types.js';
import { selectorLabels } from './labels.js';
import { clientServiceName, podName } from './names.js';
import { childMetadata } from './owner-reference.js';
import { resolveSpec } from './resolved-spec.js';

/**
 * `<name>`: the Service clients (and sidecars) use to reach the primary, `<name>.<ns>.svc:6379`.
 * Standalone: the one pod. Replication: pod `<name>-0`, the primary.
 */
export function desiredClientService(cc: CacheCluster, _opts: DesiredOptions = {}): Service {
  const selector = selectorLabels(cc);
  if (resolveSpec(cc).topology === 'replication') selector[LABEL_POD_NAME] = podName(cc, 0);
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
