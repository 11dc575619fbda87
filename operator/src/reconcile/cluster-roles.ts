/**
 * Pure decision of the role labels of topology `cluster` (`cache.ripplecache.io/role: primary|replica` on each
 * Redis pod of each shard), from what the cluster step observed and planned (`planCluster`'s `shards`, i.e. what
 * `status.shards[]` shows):
 *
 * - `primary` on the shard's primary: the pod that answered, reports itself master and owns the shard's slots,
 *   and that Redis Cluster has not flagged `fail` (`ShardStatus.primary`).
 * - `replica` on the pods that answered and report themselves replicas of that primary (`ShardStatus.replicas`).
 * - No label on every other pod: one the operator could not reach, one whose shard has no live primary (a shard
 *   `primaryLost` while Redis Cluster fails over), one following another node. A role that is not known now is
 *   not kept: the pod may have been failed over while it was out of sight, and a kept label would then show
 *   two primaries for its shard to `kubectl get pods -l` and to Prometheus relabelling. No label means
 *   "not known", which is true.
 *
 * Order, so that a shard never has two pods labelled primary even with a lagging informer cache: first every
 * change that takes a primary label away (`demote`), then the primary labels (`promote`), then the rest. When a
 * shard gets its primary label, every other pod of that shard is first set to its role (replica or none)
 * whatever the cache says its label is: a label this operator wrote a moment ago may not be in the cache yet.
 * The caller carries out `promote` only if every `demote` succeeded.
 */
import { ROLE_PRIMARY, ROLE_REPLICA } from '../api/v1alpha1/constants.js';
import type { ShardStatus } from '../api/v1alpha1/types.js';

/** One Redis pod of a shard StatefulSet as the informer cache shows it. */
export interface ClusterRolePod {
  pod: string;
  shard: number;
  /** The Pod object exists (a pod without one has no label to change). */
  exists: boolean;
  /** Its `cache.ripplecache.io/role` label, if any. */
  roleLabel: string | undefined;
}

export type ClusterRole = typeof ROLE_PRIMARY | typeof ROLE_REPLICA;

/** Set the role label of `pod` to `role`; null removes it. */
export interface ClusterRoleChange {
  pod: string;
  role: ClusterRole | null;
}

export interface ClusterRolePlan {
  /** Take primary labels away (to `replica` or none). Every one must succeed before `promote`. */
  demote: ClusterRoleChange[];
  /** Label each shard's primary, at most one pod per shard. */
  promote: ClusterRoleChange[];
  /** Replica labels added, and replica labels removed. */
  rest: ClusterRoleChange[];
}

/** The role each pod should carry: see the module comment. */
export function desiredClusterRoles(
  shards: ReadonlyArray<Pick<ShardStatus, 'index' | 'primary' | 'replicas'>>,
): Map<string, ClusterRole> {
  const roles = new Map<string, ClusterRole>();
  for (const s of shards) {
    if (s.primary === undefined) continue;
    roles.set(s.primary, ROLE_PRIMARY);
    for (const r of s.replicas) if (r !== s.primary) roles.set(r, ROLE_REPLICA);
  }
  return roles;
}

/** The label changes that bring `pods` to the roles of `shards`, in a safe order (see the module comment). */
export function planClusterRoles(
  shards: ReadonlyArray<Pick<ShardStatus, 'index' | 'primary' | 'replicas'>>,
  pods: readonly ClusterRolePod[],
): ClusterRolePlan {
  const want = desiredClusterRoles(shards);
  const present = pods.filter((p) => p.exists);
  // A pod is the primary of its own shard only (a shard's pods are its StatefulSet's).
  const primaryOf = new Map<number, string>();
  for (const s of shards) {
    const p = s.primary === undefined ? undefined : present.find((x) => x.pod === s.primary);
    if (p && p.shard === s.index) primaryOf.set(s.index, p.pod);
  }
  const roleOf = (p: ClusterRolePod): ClusterRole | null => {
    const r = want.get(p.pod);
    if (r === ROLE_PRIMARY) return primaryOf.get(p.shard) === p.pod ? ROLE_PRIMARY : null;
    return r ?? null;
  };
  const plan: ClusterRolePlan = { demote: [], promote: [], rest: [] };
  const promoted = new Set<number>();
  for (const p of present) {
    if (roleOf(p) === ROLE_PRIMARY && p.roleLabel !== ROLE_PRIMARY) {
      plan.promote.push({ pod: p.pod, role: ROLE_PRIMARY });
      promoted.add(p.shard);
    }
  }
  for (const p of present) {
    const role = roleOf(p);
    if (role === ROLE_PRIMARY) continue;
    if (p.roleLabel === ROLE_PRIMARY || promoted.has(p.shard)) plan.demote.push({ pod: p.pod, role });
    else if ((p.roleLabel ?? null) !== role) plan.rest.push({ pod: p.pod, role });
  }
  return plan;
}
