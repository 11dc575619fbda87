/**
 * Rolling updates of topology `replication`, pure: the StatefulSet uses `updateStrategy: OnDelete`, and the
 * operator picks which pod to restart next. Replicas on an old revision first (highest ordinal first, one at a
 * time, each back Ready and in sync before the next), then a planned switchover to the most advanced replica
 * on the new revision, then the old primary (a replica by then, restarted like the others). The reconcile's
 * failover step observes the pods, asks `decideRoll`, and carries out the answer.
 */
import type { ObservedRedisPod } from './failover-decision.js';

/** A restarted replica counts as in sync once its offset is at most this far behind the primary's. */
export const IN_SYNC_LAG_BYTES = 64 * 1024;

/** A Redis pod as observed, with the StatefulSet revision it runs (`controller-revision-hash`). */
export interface RollingPod extends ObservedRedisPod {
  revision: string | undefined;
  /** The Pod object's uid (a pod this process deleted is not counted again while the cache still shows it). */
  uid?: string | undefined;
}

export interface RollInput {
  /** The recorded primary, seen up. */
  primary: string;
  /** The StatefulSet's `status.updateRevision` (undefined while the controller has not computed it). */
  updateRevision: string | undefined;
  /** The StatefulSet controller has observed the current spec (`status.observedGeneration >= generation`). */
  stsObserved: boolean;
  pods: RollingPod[];
  /** The uid of the pod this process deleted last, if any. */
  deletedUid?: string | undefined;
}

export type RollDecision =
  /** Every pod runs the update revision (or there is nothing to decide on yet). */
  | { action: 'none' }
  /** A pod is on its way back (missing, not Ready, not in sync): nothing else restarts meanwhile. */
  | { action: 'wait'; why: string }
  /** Restart this pod (delete it; the StatefulSet controller recreates it on the update revision). */
  | { action: 'delete'; pod: string; uid: string | undefined; why: string }
  /** Every replica is up to date and in sync, the primary is not: hand the primary role to `to` first. */
  | { action: 'switchover'; from: string; to: string; toOffset: number; fromOffset: number };

/** Why a replica is not in sync with the primary, or undefined when it is. */
export function notInSync(p: RollingPod, primary: RollingPod): string | undefined {
  if (!p.exists) return 'does not exist';
  if (!p.ready) return 'is not Ready';
  const info = p.info;
  if (!info.reachable) return `is unreachable (${info.message})`;
  if (info.role !== 'replica') return `reports role ${info.role}`;
  if (info.masterHost !== primary.address.host || info.masterPort !== primary.address.port)
    return 'does not replicate from the primary yet';
  if (info.linkUp !== true) return 'has its link to the primary down';
  if (info.syncInProgress) return 'is loading a full sync';
  const primaryOffset = primary.info.reachable ? primary.info.offset : 0;
  if (primaryOffset - info.offset > IN_SYNC_LAG_BYTES)
    return `is ${primaryOffset - info.offset} bytes behind the primary`;
  return undefined;
}

function ordinal(pod: string): number {
  return Number(pod.slice(pod.lastIndexOf('-') + 1));
}

/** What to restart next, if anything. */
export function decideRoll(input: RollInput): RollDecision {
  const rev = input.updateRevision;
  if (rev === undefined || !input.stsObserved) return { action: 'none' };
  const primary = input.pods.find((p) => p.pod === input.primary);
  if (!primary) return { action: 'none' };
  const outdated = input.pods.filter((p) => p.exists && p.revision !== undefined && p.revision !== rev);
  if (outdated.length === 0) return { action: 'none' };
  // One pod at a time: every pod must be back (and the one deleted last gone from the cache) first.
  const deleted = input.pods.find((p) => input.deletedUid !== undefined && p.uid === input.deletedUid);
  if (deleted) return { action: 'wait', why: `${deleted.pod} is being deleted` };
  if (!primary.exists || !primary.ready || !primary.info.reachable || primary.info.role !== 'master')
    return { action: 'wait', why: `the primary ${primary.pod} is not up` };
  const replicas = input.pods.filter((p) => p.pod !== input.primary);
  for (const r of replicas) {
    const why = notInSync(r, primary);
    if (why !== undefined) return { action: 'wait', why: `${r.pod} ${why}` };
  }
  const oldReplicas = replicas.filter((p) => outdated.includes(p)).sort((a, b) => ordinal(b.pod) - ordinal(a.pod));
  const next = oldReplicas[0];
  if (next) return { action: 'delete', pod: next.pod, uid: next.uid, why: `replica ${next.pod} runs an old revision` };
  // Only the primary is outdated.
  const upToDate = replicas.filter((p) => p.revision === rev);
  if (upToDate.length === 0)
    return {
      action: 'delete',
      pod: primary.pod,
      uid: primary.uid,
      why: `the primary ${primary.pod} runs an old revision and there is no replica to switch over to (spec.replicas is 0)`,
    };
  const best = upToDate.reduce((a, b) =>
    (b.info.reachable ? b.info.offset : 0) > (a.info.reachable ? a.info.offset : 0) ? b : a,
  );
  return {
    action: 'switchover',
    from: primary.pod,
    to: best.pod,
    toOffset: best.info.reachable ? best.info.offset : 0,
    fromOffset: primary.info.offset,
  };
}
