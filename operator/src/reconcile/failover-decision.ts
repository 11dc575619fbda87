/**
 * Failover decisions for topology `replication`, pure (no I/O, the elapsed time is passed in): is the primary
 * up, lost or past `spec.failover.afterSeconds`; which replica is healthy enough to promote and which has the
 * highest replication offset; and which role changes and label moves come next, in a safe order. The
 * reconcile's failover step (`failover-step.ts`) observes, asks these functions, and carries the answer out.
 */
import { PLACEHOLDER_PRIMARY, ROLE_PRIMARY, ROLE_REPLICA } from '../api/v1alpha1/constants.js';
import type { FailoverInProgress } from '../api/v1alpha1/types.js';
import type { ReplicationInfo } from '../redis/replication.js';

/** A replica's link to the lost primary may have been down this much longer than the primary was seen lost. */
export const LINK_DOWN_SLACK_SECONDS = 10;

/** What the operator observed of one Redis pod of the StatefulSet. */
export interface ObservedRedisPod {
  pod: string;
  /** The Pod object exists (the informer cache has it). */
  exists: boolean;
  /** Its Ready condition is True. */
  ready: boolean;
  /** Its `cache.ripplecache.io/role` label, if any. */
  roleLabel: string | undefined;
  /** Where Redis on other pods (and the operator) reaches it: what `REPLICAOF` is given. */
  address: { host: string; port: number };
  info: ReplicationInfo;
}

/** The recorded primary is up: its pod is Ready, and its Redis answers and reports role master. */
export function primaryUp(p: ObservedRedisPod | undefined): boolean {
  return p !== undefined && p.exists && p.ready && p.info.reachable && p.info.role === 'master';
}

/**
 * The pod's Redis (re)started and has no role from the operator yet: it runs as a replica of the placeholder
 * primary (`redis.conf`), with no master link, so it refuses SYNC/PSYNC from other replicas (`-NOMASTERLINK`).
 */
export function unassigned(info: ReplicationInfo): boolean {
  return (
    info.reachable &&
    info.role === 'replica' &&
    info.masterHost === PLACEHOLDER_PRIMARY.host &&
    info.masterPort === PLACEHOLDER_PRIMARY.port
  );
}

/** Why the recorded primary counts as lost (for status and logs). */
export function lostReason(p: ObservedRedisPod | undefined, name: string): string {
  if (p === undefined || !p.exists) return `pod ${name} does not exist`;
  if (!p.info.reachable) return `Redis on ${name} is unreachable (${p.info.message})`;
  if (unassigned(p.info)) return `Redis on ${name} restarted (it follows no primary; its data may be gone)`;
  if (!p.ready) return `pod ${name} is not Ready`;
  return `Redis on ${name} reports role ${p.info.role}, not master`;
}

/** One replica judged as a promotion candidate. */
export interface CandidateVerdict {
  pod: string;
  eligible: boolean;
  offset: number;
  /** Why it is not eligible. */
  why?: string;
}

function sameAddress(info: ReplicationInfo, addr: { host: string; port: number }): boolean {
  return info.reachable && info.role === 'replica' && info.masterHost === addr.host && info.masterPort === addr.port;
}

/**
 * "Healthy enough" to be promoted: the pod exists and is Ready; its Redis answers the operator; it is a replica
 * of the lost primary (its configured master is the lost primary's address); it is not loading a full sync;
 * it holds the primary's history (its replication ID is the one the primary was last seen with, or, when this
 * operator never saw the primary up, it replicated something: offset above 0); and its link to the primary is
 * up, or went down no more than `LINK_DOWN_SLACK_SECONDS` before the primary was seen lost (a replica cut off
 * long before holds old data).
 */
export function judgeCandidate(
  p: ObservedRedisPod,
  lostPrimary: { host: string; port: number },
  lostForSeconds: number,
  primaryReplid?: string,
): CandidateVerdict {
  const info = p.info;
  const offset = info.reachable ? info.offset : 0;
  const no = (why: string): CandidateVerdict => ({ pod: p.pod, eligible: false, offset, why });
  if (!p.exists) return no('pod does not exist');
  if (!info.reachable) return no(`unreachable (${info.message})`);
  if (!p.ready) return no('pod not Ready');
  if (info.role !== 'replica') return no(`role ${info.role}, not a replica of the lost primary`);
  if (unassigned(info)) return no('restarted, it follows no primary (its data may be gone)');
  if (!sameAddress(info, lostPrimary))
    return no(`replicates from ${info.masterHost ?? '?'}:${info.masterPort ?? '?'}, not from the lost primary`);
  if (info.syncInProgress) return no('a full sync is in progress (its data is incomplete)');
  if (primaryReplid !== undefined && info.replid !== primaryReplid)
    return no(
      `does not hold the primary's history (replication ID ${info.replid}, the primary's was ${primaryReplid})`,
    );
  if (primaryReplid === undefined && offset <= 0) return no('has not replicated anything (offset 0)');
  const downFor = info.linkUp ? 0 : (info.linkDownSinceSeconds ?? Number.POSITIVE_INFINITY);
  if (downFor > lostForSeconds + LINK_DOWN_SLACK_SECONDS)
    return no(
      Number.isFinite(downFor)
        ? `its link to the primary has been down for ${downFor} s (the primary is lost for ${Math.round(lostForSeconds)} s)`
        : 'its link to the primary has not been up since it started',
    );
  return { pod: p.pod, eligible: true, offset };
}

/** The eligible replica with the highest offset (the lowest ordinal on a tie), or every verdict when none is. */
export function chooseCandidate(
  replicas: ObservedRedisPod[],
  lostPrimary: { host: string; port: number },
  lostForSeconds: number,
  primaryReplid?: string,
): { to: string; offset: number } | { blocked: CandidateVerdict[] } {
  const verdicts = replicas.map((p) => judgeCandidate(p, lostPrimary, lostForSeconds, primaryReplid));
  const eligible = verdicts.filter((v) => v.eligible);
  if (eligible.length === 0) return { blocked: verdicts };
  const best = eligible.reduce((a, b) => (b.offset > a.offset ? b : a));
  return { to: best.pod, offset: best.offset };
}

export function describeBlocked(verdicts: CandidateVerdict[]): string {
  if (verdicts.length === 0) return 'no replica to promote (spec.replicas is 0)';
  return `no replica is healthy enough to promote: ${verdicts.map((v) => `${v.pod}: ${v.why ?? 'eligible'}`).join('; ')}`;
}

/**
 * The recorded primary restarted (it is `unassigned`) and no replica can be promoted: may it be made the primary
 * again with what it holds (its data from disk with persistence, else nothing)? Only when no other pod may hold
 * writes it lacks: every other pod answers, runs as a replica (not a master), and its replication offset is not
 * above the primary's. A cluster whose primary was never up (its first start) skips the pods that do not answer
 * yet: they never held anything. Answers why not, or undefined when it may.
 */
export function cannotRestartInPlace(
  primary: ObservedRedisPod | undefined,
  others: ObservedRedisPod[],
  established: boolean,
): string | undefined {
  if (primary === undefined || !primary.exists) return 'its pod does not exist';
  if (!primary.info.reachable) return `it is unreachable (${primary.info.message})`;
  if (!unassigned(primary.info)) return `it runs as ${primary.info.role}, not restarted`;
  const own = primary.info.offset;
  for (const p of others) {
    if (!p.info.reachable) {
      if (established) return `${p.pod} is unreachable and may hold writes ${primary.pod} lacks`;
      continue;
    }
    if (p.info.role === 'master') return `${p.pod} runs as a master`;
    if (p.info.offset > own)
      return `${p.pod} holds a higher replication offset (${p.info.offset}) than ${primary.pod} (${own})`;
  }
  return undefined;
}

export interface FailoverDecisionInput {
  /** The recorded primary (`status.primary`, else pod 0). */
  primary: string;
  /** The primary was seen up before (by this process, or status says so): a cluster still coming up never fails over. */
  established: boolean;
  /** A failover recorded in status and not completed. */
  inProgress: FailoverInProgress | undefined;
  pods: ObservedRedisPod[];
  /** How long the primary has been seen lost without a break (undefined when it is up). */
  lostForMs: number | undefined;
  afterMs: number;
  /** The primary's replication ID when last seen up (unknown to a process that never saw it up). */
  primaryReplid?: string | undefined;
  /**
   * The primary's replication offset when last seen up (unknown to a process that never saw it up): the
   * failover's `fromOffset` when the lost primary does not answer now.
   */
  primaryOffset?: number | undefined;
  /**
   * This process already made the recorded primary the primary at a first start. Found unassigned again
   * before it was seen up (its readiness can lag), it restarted: a restart, not a first start.
   */
  promotedAtFirstStart?: boolean | undefined;
}

export type FailoverDecision =
  /** The primary is up (or the cluster has not come up yet): keep labels and replicas in order. */
  | { action: 'steady'; primary: string; up: boolean }
  /** The primary is lost, not yet for `afterMs`. */
  | { action: 'wait'; primary: string; why: string; retryInMs: number }
  /** Lost for `afterMs` and no replica is healthy enough: nothing is promoted. */
  | { action: 'blocked'; primary: string; why: string }
  /**
   * The recorded primary restarted and comes back as the primary (`REPLICAOF NO ONE` on it): the first start of
   * a cluster (every pod starts as a replica of the placeholder), a cluster without replicas, or no replica
   * promotable and none holding more than it (`cannotRestartInPlace`).
   */
  | { action: 'promote-in-place'; primary: string; why: string; firstStart: boolean }
  /** Start a failover (record it in status first). */
  | { action: 'start'; failover: Omit<FailoverInProgress, 'startedAt' | 'step'> }
  /** Finish the recorded failover. */
  | { action: 'continue'; failover: FailoverInProgress }
  /**
   * The recorded failover's target is no longer healthy enough: it continues towards another replica (no client
   * has written to the target yet: the primary label moves last).
   */
  | { action: 'retarget'; failover: FailoverInProgress; to: string; toOffset: number }
  /** The recorded failover's target is no longer healthy enough and no other replica is. */
  | { action: 'blocked-in-progress'; failover: FailoverInProgress; why: string };

/** What to do now about the primary. */
export function decideFailover(input: FailoverDecisionInput): FailoverDecision {
  const byName = new Map(input.pods.map((p) => [p.pod, p]));
  const f = input.inProgress;
  if (f !== undefined) {
    const to = byName.get(f.to);
    const from = byName.get(f.from);
    const toHealthy =
      to !== undefined &&
      to.exists &&
      to.ready &&
      to.info.reachable &&
      // Promoted already, or still a healthy replica of the lost primary.
      (to.info.role === 'master' || (from !== undefined && judgeCandidate(to, from.address, Infinity).eligible));
    if (toHealthy) return { action: 'continue', failover: f };
    const others = input.pods.filter((p) => p.pod !== f.from && p.pod !== f.to);
    const lostAddr = from?.address ?? { host: '', port: 0 };
    const choice = chooseCandidate(others, lostAddr, Infinity);
    if ('blocked' in choice)
      return {
        action: 'blocked-in-progress',
        failover: f,
        why: `the failover target ${f.to} is ${lostReason(to, f.to)}; ${describeBlocked(choice.blocked)}`,
      };
    return { action: 'retarget', failover: f, to: choice.to, toOffset: choice.offset };
  }
  const primary = byName.get(input.primary);
  const replicas = input.pods.filter((p) => p.pod !== input.primary);
  if (!primaryUp(primary) && !input.established && primary?.exists === true && unassigned(primary.info)) {
    const why = cannotRestartInPlace(primary, replicas, false);
    if (why === undefined)
      return input.promotedAtFirstStart === true
        ? {
            action: 'promote-in-place',
            primary: input.primary,
            why: `${input.primary} restarted before it was seen up as the primary`,
            firstStart: false,
          }
        : { action: 'promote-in-place', primary: input.primary, why: 'the first primary', firstStart: true };
  }
  if (primaryUp(primary) || !input.established || input.lostForMs === undefined)
    return { action: 'steady', primary: input.primary, up: primaryUp(primary) };
  const why = lostReason(primary, input.primary);
  // No replica to wait for: a restarted lone primary comes back at once (with its data from disk, if any).
  if (replicas.length === 0 && cannotRestartInPlace(primary, replicas, true) === undefined)
    return { action: 'promote-in-place', primary: input.primary, why: `${why}; no replica`, firstStart: false };
  if (input.lostForMs < input.afterMs)
    return { action: 'wait', primary: input.primary, why, retryInMs: input.afterMs - input.lostForMs };
  const lostAddr = primary?.address ?? { host: '', port: 0 };
  const choice = chooseCandidate(replicas, lostAddr, input.lostForMs / 1000, input.primaryReplid);
  if ('blocked' in choice) {
    const blocked = `${why}; ${describeBlocked(choice.blocked)}`;
    if (primary !== undefined && unassigned(primary.info)) {
      const notInPlace = cannotRestartInPlace(primary, replicas, true);
      if (notInPlace === undefined)
        return {
          action: 'promote-in-place',
          primary: input.primary,
          why: `${blocked}; no other pod holds more than it`,
          firstStart: false,
        };
      return {
        action: 'blocked',
        primary: input.primary,
        why: `${blocked}; not making ${input.primary} the primary again: ${notInPlace}`,
      };
    }
    return { action: 'blocked', primary: input.primary, why: blocked };
  }
  // As it answers now, else as last seen up (a lost primary is seldom reachable).
  const fromOffset = primary?.info.reachable ? primary.info.offset : input.primaryOffset;
  return {
    action: 'start',
    failover: {
      from: input.primary,
      to: choice.to,
      toOffset: choice.offset,
      ...(fromOffset !== undefined ? { fromOffset } : {}),
    },
  };
}

/** One change to make, in the order given. */
export type RoleChange =
  | { op: 'label'; pod: string; role: typeof ROLE_PRIMARY | typeof ROLE_REPLICA | null }
  | { op: 'promote'; pod: string }
  | {
      op: 'follow';
      pod: string;
      primary: string;
      address: { host: string; port: number };
      /** The pod runs as a master: its client connections are closed with the change (see `follow`). */
      demote?: true;
    };

function follows(p: ObservedRedisPod, addr: { host: string; port: number }): boolean {
  return sameAddress(p.info, addr);
}

/**
 * The changes that bring the pods to "`primary` is the primary": first the primary label off every other pod
 * (never two pods labelled primary), then every other reachable pod that runs as a master or follows another pod
 * made a replica of it (an old primary that came back included, before anything can send it primary traffic), then the primary's label (only once it
 * reports role master), then the replica labels: `replica` on pods that follow it with their link up and no
 * sync loading, no label on reachable pods that do not (yet). Unreachable pods keep their label (not Ready, no
 * Service sends them traffic) except the primary label, which only the primary keeps.
 */
export function planRoles(primaryName: string, pods: ObservedRedisPod[], opts: { promote: boolean }): RoleChange[] {
  const changes: RoleChange[] = [];
  const primary = pods.find((p) => p.pod === primaryName);
  for (const p of pods)
    if (p.pod !== primaryName && p.roleLabel === ROLE_PRIMARY) changes.push({ op: 'label', pod: p.pod, role: null });
  if (!primary || !primary.info.reachable) return changes;
  const isMaster = primary.info.role === 'master';
  if (!isMaster && opts.promote) changes.push({ op: 'promote', pod: primaryName });
  if (!isMaster && !opts.promote) return changes;
  // A pod is repointed when it runs as a master, replicates from another pod of the cluster, or (re)started as a
  // replica of the placeholder. A replica of another address that is no pod's (set up by hand, or through a
  // proxy) is left alone: it is not the operator's to move.
  const otherPods = pods.filter((p) => p.pod !== primaryName);
  for (const p of pods) {
    if (p.pod === primaryName || !p.info.reachable || follows(p, primary.address)) continue;
    const fromAnotherPod = otherPods.some((o) => follows(p, o.address));
    // A pod that (re)started follows the placeholder: it gets its role here, before any label.
    if (p.info.role === 'master' || fromAnotherPod || unassigned(p.info))
      changes.push({
        op: 'follow',
        pod: p.pod,
        primary: primaryName,
        address: primary.address,
        ...(p.info.role === 'master' ? { demote: true as const } : {}),
      });
  }
  if (primary.roleLabel !== ROLE_PRIMARY) changes.push({ op: 'label', pod: primaryName, role: ROLE_PRIMARY });
  for (const p of pods) {
    if (p.pod === primaryName || !p.info.reachable) continue;
    const inSync = follows(p, primary.address) && p.info.reachable && p.info.linkUp === true && !p.info.syncInProgress;
    const want = inSync ? ROLE_REPLICA : null;
    if ((p.roleLabel ?? null) !== want && !(want === null && p.roleLabel === ROLE_PRIMARY))
      changes.push({ op: 'label', pod: p.pod, role: want });
  }
  return changes;
}
