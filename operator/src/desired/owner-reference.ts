import { API_VERSION, KIND } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { commonLabels } from './labels.js';
import type { ChildMetadata, OwnerReference } from './kube-types.js';

/** The controller owner reference every child carries, so that deleting the CacheCluster deletes it. */
export function ownerReference(cc: CacheCluster): OwnerReference {
  const uid = cc.metadata.uid;
  if (!uid) {
    throw new Error(
      `CacheCluster ${cc.metadata.namespace}/${cc.metadata.name} has no metadata.uid; an owner reference needs one`,
    );
  }
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cc.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** `metadata` of a child: its name, the CacheCluster's namespace, the common labels, the owner reference. */
export function childMetadata(cc: CacheCluster, name: string, extraLabels: Record<string, string> = {}): ChildMetadata {
  return {
    name,
    namespace: cc.metadata.namespace,
    labels: { ...commonLabels(cc), ...extraLabels },
    ownerReferences: [ownerReference(cc)],
  };
}
