import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { PodDisruptionBudget } from './kube-types.js';
import { selectorLabels } from './labels.js';
import { podDisruptionBudgetName } from './names.js';
import { childMetadata } from './owner-reference.js';

/** `<name>`: voluntary disruptions (node drains) take at most one Redis pod at a time. */
export function desiredPodDisruptionBudget(cc: CacheCluster, _opts: DesiredOptions = {}): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMetadata(cc, podDisruptionBudgetName(cc)),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(cc) } },
  };
}
