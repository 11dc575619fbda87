/** The labels on a CacheCluster's children, and the selector of its Redis pods. */
import {
  COMPONENT_SERVER,
  LABEL_CLUSTER,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_MANAGED_BY_VALUE,
  LABEL_NAME,
  LABEL_NAME_VALUE,
} from '../api/v1alpha1/constants.js';
import type { CacheClusterRef } from './names.js';

/** On every child: `app.kubernetes.io/{name,instance,managed-by}` and `cache.ripplecache.io/cluster`. */
export function commonLabels(cc: CacheClusterRef): Record<string, string> {
  return {
    [LABEL_NAME]: LABEL_NAME_VALUE,
    [LABEL_INSTANCE]: cc.metadata.name,
    [LABEL_MANAGED_BY]: LABEL_MANAGED_BY_VALUE,
    [LABEL_CLUSTER]: cc.metadata.name,
  };
}

/**
 * Selects the Redis pods of one CacheCluster, and nothing else (not the flush CronJob's pods, not
 * another tool's `app.kubernetes.io/instance`). Part of the StatefulSet's immutable selector: never change.
 */
export function selectorLabels(cc: CacheClusterRef): Record<string, string> {
  return { [LABEL_CLUSTER]: cc.metadata.name, [LABEL_COMPONENT]: COMPONENT_SERVER };
}

/** The labels of the Redis pods. */
export function serverPodLabels(cc: CacheClusterRef): Record<string, string> {
  return { ...commonLabels(cc), ...selectorLabels(cc) };
}

/** `selectorLabels` as a label selector string (`k=v,k=v`), as the `/scale` subresource reports it. */
export function selectorString(cc: CacheClusterRef): string {
  return Object.entries(selectorLabels(cc))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
