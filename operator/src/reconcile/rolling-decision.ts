/**
 * Rolling updates of topology `replication`, pure: the StatefulSet uses `updateStrategy: OnDelete`, and the
 * operator picks which pod to restart next. Replicas on an old revision first (highest ordinal first, one at a
 * time, each back Ready and in sync before the next), then a planned switchover to the most advanced replica
 * on the new revision, then the old primary (a replica by then, restarted like the others). The reconcile's
 * failover step observes the pods, asks `decideRoll`, and carries out the answer.
 */
import type { Backoff } from '../../../common/src/backoff.js';
import type { ReplicationInfo } from '../redis/replication.js';
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
  // One pod at a time: every pod must be back (and the one deleted last gone from the cache) first.
  const deleted = input.pods.find((p) => input.deletedUid !== undefined && p.uid === input.deletedUid);
  if (outdated.length === 0) {
    // No pod left on an old revision, but the one this process restarted last (a terminating pod does not
    // count as existing) is over only once it is back: existing, Ready and in sync. Before, the roll read
    // UpToDate while the old primary was still terminating after the switchover.
    if (input.deletedUid === undefined) return { action: 'none' };
    if (deleted) return { action: 'wait', why: `${deleted.pod} is being deleted` };
    if (!primary.exists || !primary.ready) return { action: 'wait', why: `the primary ${primary.pod} is not up` };
    for (const r of input.pods.filter((p) => p.pod !== input.primary)) {
      const why = notInSync(r, primary);
      if (why !== undefined) return { action: 'wait', why: `${r.pod} ${why}` };
    }
    return { action: 'none' };
  }
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

/** How long a planned switchover waits for its target to catch up with the paused primary before aborting. */
export const SWITCHOVER_CATCH_UP_MS = 5_000;
/** After an aborted switchover, the next try waits 10 s, doubling per abort up to 5 min, plus up to 2 s. */
export const SWITCHOVER_RETRY_BACKOFF: Backoff = { baseMs: 10_000, capMs: 300_000, jitterMs: 2_000 };

export type CatchUpVerdict =
  | { state: 'caught-up'; offset: number }
  | { state: 'wait' }
  /** Give up: the switchover is aborted, the old primary stays (it was never demoted). */
  | { state: 'abort'; why: string };

/**
 * A planned switchover, writes paused on the old primary (`from`): may the target (`to`) be promoted? Only once
 * its replication offset has reached the primary's, so that no write the primary acknowledged is missing on
 * it. Either side not answering, or `limitMs` passed without that: abort (never promote a target behind).
 */
export function catchUpVerdict(
  from: ReplicationInfo,
  to: ReplicationInfo,
  elapsedMs: number,
  limitMs = SWITCHOVER_CATCH_UP_MS,
): CatchUpVerdict {
  if (!from.reachable) return { state: 'abort', why: `the primary stopped answering (${from.message})` };
  if (!to.reachable) return { state: 'abort', why: `the target stopped answering (${to.message})` };
  if (from.role !== 'master') return { state: 'abort', why: `the primary reports role ${from.role}` };
  if (to.offset >= from.offset) return { state: 'caught-up', offset: to.offset };
  if (elapsedMs >= limitMs)
    return {
      state: 'abort',
      why: `the target did not catch up within ${limitMs / 1000} s (offset ${to.offset}, the primary's ${from.offset}: ${from.offset - to.offset} bytes behind)`,
    };
  return { state: 'wait' };
}

/** A roll with no progress (no pod restarted, no switchover) for this long counts as stuck. */
export const ROLL_STUCK_AFTER_MS = 120_000;

/** Condition `RollingUpdate` (topology replication). */
export interface RollCondition {
  status: 'True' | 'False';
  reason: 'UpToDate' | 'InProgress' | 'RollStuck';
  message: string;
}

/** What the operator remembers of a roll between probes. */
export interface RollTracking {
  /** Monotonic ms of the roll's last step (a pod deleted, a switchover), or when it was first seen waiting. */
  progressAt?: number | undefined;
  condition?: RollCondition | undefined;
}

/** What a probe's roll step did: nothing to roll, a step, or a wait (or a switchover back-off), with why. */
export type RollObservation = { kind: 'none' } | { kind: 'step'; message: string } | { kind: 'wait'; why: string };

/**
 * The roll's condition after a probe, pure. Up to date → False/UpToDate; a step → True/InProgress naming it; a
 * wait → the condition stays, until no step has happened for `stuckAfterMs`: True/RollStuck naming what it
 * waits for (then kept as it was first written, so that a stuck roll does not rewrite status every probe).
 */
export function trackRoll(
  prev: RollTracking,
  seen: RollObservation,
  nowMs: number,
  stuckAfterMs = ROLL_STUCK_AFTER_MS,
): RollTracking {
  if (seen.kind === 'none')
    return {
      condition: { status: 'False', reason: 'UpToDate', message: 'every Redis pod runs the current revision' },
    };
  if (seen.kind === 'step')
    return { progressAt: nowMs, condition: { status: 'True', reason: 'InProgress', message: seen.message } };
  const progressAt = prev.progressAt ?? nowMs;
  if (nowMs - progressAt >= stuckAfterMs) {
    if (prev.condition?.reason === 'RollStuck') return { progressAt, condition: prev.condition };
    return {
      progressAt,
      condition: {
        status: 'True',
        reason: 'RollStuck',
        message: `rolling update stuck, no progress for ${Math.round(stuckAfterMs / 1000)} s: ${seen.why}`,
      },
    };
  }
  if (prev.condition?.reason === 'InProgress') return { progressAt, condition: prev.condition };
  return {
    progressAt,
    condition: { status: 'True', reason: 'InProgress', message: `rolling update in progress: ${seen.why}` },
  };
}
