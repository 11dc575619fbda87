import type { CacheCluster } from '../api/v1alpha1/types.js';
import { desiredClientService } from './client-service.js';
import { desiredConfigMap } from './config-map.js';
import type { DesiredOptions } from './desired-options.js';
import { desiredFlushCronJob } from './flush-cron-job.js';
import { desiredHeadlessService } from './headless-service.js';
import type { DesiredChild } from './kube-types.js';
import { flushCronJobName } from './names.js';
import { desiredPodDisruptionBudget } from './pod-disruption-budget.js';
import { resolveSpec } from './resolved-spec.js';
import { desiredStatefulSet } from './stateful-set.js';

/** A child to delete if it exists. */
export interface ChildRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface DesiredChildren {
  /** In apply order: ConfigMap, headless Service, client Service, StatefulSet, PDB, CronJob. */
  apply: DesiredChild[];
  /** Optional children the spec no longer asks for. */
  deleteIfPresent: ChildRef[];
}

/**
 * Every child of a CacheCluster. Topology `cluster` is accepted but not supported: nothing is built or
 * deleted for it (status reports Failed / Unsupported), so switching to it never destroys a running cache.
 * Throws `InvalidSpecError` for eviction settings the operator cannot realise.
 */
export function desiredChildren(cc: CacheCluster, opts: DesiredOptions = {}): DesiredChildren {
  if (resolveSpec(cc).topology === 'cluster') return { apply: [], deleteIfPresent: [] };
  const apply: DesiredChild[] = [
    desiredConfigMap(cc, opts),
    desiredHeadlessService(cc, opts),
    desiredClientService(cc, opts),
    desiredStatefulSet(cc, opts),
    desiredPodDisruptionBudget(cc, opts),
  ];
  const deleteIfPresent: ChildRef[] = [];
  const cronJob = desiredFlushCronJob(cc, opts);
  if (cronJob) apply.push(cronJob);
  else
    deleteIfPresent.push({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      namespace: cc.metadata.namespace,
      name: flushCronJobName(cc),
    });
  return { apply, deleteIfPresent };
}
