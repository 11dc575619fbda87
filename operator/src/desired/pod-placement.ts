/**
 * What `spec.podTemplate` adds to the Redis pods: extra labels and annotations (never the operator's or
 * the StatefulSet controller's keys) and the placement fields of core/v1 PodSpec (nodeSelector,
 * tolerations, affinity, topologySpreadConstraints, priorityClassName, imagePullSecrets). Only these named
 * fields are copied, so a podTemplate can never reach the security context, the containers, the volumes
 * or the host namespaces (Pod Security `restricted` stays as `pod-security.ts` sets it).
 */
import { DEFAULTS } from '../api/v1alpha1/types.js';
import type { CacheCluster, PodAffinity } from '../api/v1alpha1/types.js';
import { RESERVED_KEY_PREFIX, RESERVED_POD_LABELS } from '../api/v1alpha1/constants.js';
import type { PodSpec } from './kube-types.js';
import { selectorLabels } from './labels.js';

/** The placement fields of the pod spec, as `podPlacement` returns them. */
export type PodPlacement = Pick<
  PodSpec,
  'nodeSelector' | 'tolerations' | 'affinity' | 'topologySpreadConstraints' | 'priorityClassName' | 'imagePullSecrets'
>;

/** Whether `spec.podTemplate.metadata` may not set `key` on a pod (as a label, or as an annotation). */
export function isReservedPodKey(key: string, kind: 'label' | 'annotation'): boolean {
  return key.startsWith(RESERVED_KEY_PREFIX) || (kind === 'label' && RESERVED_POD_LABELS.includes(key));
}

/**
 * `user` without the reserved keys, then `own` over it. The CRD rejects reserved keys; this keeps the
 * operator's labels (the Services' and the StatefulSet's selectors) even for an object stored before that.
 */
export function mergePodMetadata(
  user: Record<string, string> | undefined,
  own: Record<string, string>,
  kind: 'label' | 'annotation',
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(user ?? {})) if (!isReservedPodKey(k, kind)) out[k] = v;
  return { ...out, ...own };
}

/**
 * The default pod anti-affinity: prefer (weight 100) nodes without another Redis pod of the same
 * CacheCluster, so that one node's loss takes at most one of its pods when there are nodes enough.
 */
export function defaultPodAntiAffinity(cc: CacheCluster): PodAffinity {
  return {
    preferredDuringSchedulingIgnoredDuringExecution: [
      {
        weight: 100,
        podAffinityTerm: {
          labelSelector: { matchLabels: selectorLabels(cc) },
          topologyKey: DEFAULTS.antiAffinityTopologyKey,
        },
      },
    ],
  };
}

/**
 * The placement of the Redis pods: the podTemplate's fields (copies, never shared with the spec), the
 * default anti-affinity unless `affinity.podAntiAffinity` is set (an empty object turns it off), and each
 * topology spread constraint without a labelSelector counting this CacheCluster's Redis pods.
 */
export function podPlacement(cc: CacheCluster): PodPlacement {
  const t = structuredClone(cc.spec.podTemplate?.spec ?? {});
  const out: PodPlacement = {};
  if (t.nodeSelector !== undefined && Object.keys(t.nodeSelector).length > 0) out.nodeSelector = t.nodeSelector;
  if (t.tolerations?.length) out.tolerations = t.tolerations;
  const affinity = t.affinity ?? {};
  const podAntiAffinity = affinity.podAntiAffinity ?? defaultPodAntiAffinity(cc);
  out.affinity = {
    ...(affinity.nodeAffinity !== undefined ? { nodeAffinity: affinity.nodeAffinity } : {}),
    ...(affinity.podAffinity !== undefined ? { podAffinity: affinity.podAffinity } : {}),
    ...(Object.keys(podAntiAffinity).length > 0 ? { podAntiAffinity } : {}),
  };
  if (Object.keys(out.affinity).length === 0) delete out.affinity;
  if (t.topologySpreadConstraints?.length)
    out.topologySpreadConstraints = t.topologySpreadConstraints.map((c) =>
      c.labelSelector !== undefined ? c : { ...c, labelSelector: { matchLabels: selectorLabels(cc) } },
    );
  if (t.priorityClassName !== undefined) out.priorityClassName = t.priorityClassName;
  if (t.imagePullSecrets?.length) out.imagePullSecrets = t.imagePullSecrets.map((s) => ({ name: s.name }));
  return out;
}

/** The pull secrets alone, for other pods running the Redis image (the flush CronJob's). */
export function imagePullSecrets(cc: CacheCluster): Array<{ name: string }> | undefined {
  const secrets = cc.spec.podTemplate?.spec?.imagePullSecrets;
  return secrets?.length ? secrets.map((s) => ({ name: s.name })) : undefined;
}
