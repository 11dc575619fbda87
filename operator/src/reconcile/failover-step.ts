/**
 * The reconcile's failover step (topology `replication`): observe every Redis pod (its Pod object from the
 * informer cache, `INFO replication` from Redis), ask `decideFailover` / `planRoles`, and carry out the answer
 * through the injected deps (Redis through the operator's Redis adapter, labels and status through the API,
 * every write behind the leadership fence). A failover is recorded in `status.failover` before its first
 * change and after each step, so a killed operator or a new leader finishes it: every step is idempotent.
 */
import type { Logger } from 'pino';
import {
  API_VERSION,
  CONDITION_PRIMARY_AVAILABLE,
  KIND,
  LABEL_ROLE,
  PLURAL,
  REDIS_PORT,
  ROLE_PRIMARY,
} from '../api/v1alpha1/constants.js';
import type { CacheCluster, FailoverInProgress, FailoverRecord, FailoverStep } from '../api/v1alpha1/types.js';
import { podHost, podName, statefulSetName } from '../desired/names.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import type { KubeApi, KubeObject } from '../k8s/kube-client.js';
import type { PodEndpoint } from '../redis/live-config.js';
import type { ReplicationInfo } from '../redis/replication.js';
import { findCondition, formatTime } from '../status/conditions.js';
import { decideFailover, planRoles, primaryUp, type RoleChange } from './failover-decision.js';
import { backoffDelay } from '../../../common/src/backoff.js';
import {
  catchUpVerdict,
  decideRoll,
  SWITCHOVER_RETRY_BACKOFF,
  trackRoll,
  type CatchUpVerdict,
  type RollCondition,
  type RollingPod,
  type RollObservation,
  type RollTracking,
} from './rolling-decision.js';

/** The label the StatefulSet controller puts on each pod: the revision of the template it was made from. */
const LABEL_REVISION = 'controller-revision-hash';
/** How long a planned switchover holds back writes on the old primary at most (it ends by itself). */
export const SWITCHOVER_PAUSE_MS = 10_000;

/** What the failover step needs besides the reconcile's deps. */
export interface ReplicationDeps {
  /** `INFO replication`, time boxed to `timeoutMs` when given (never longer than the operator's Redis timeout). */
  readReplication: (ep: PodEndpoint, password?: string, timeoutMs?: number) => Promise<ReplicationInfo>;
  promote: (ep: PodEndpoint, password?: string) => Promise<void>;
  /** `REPLICAOF`; with `demote`, the pod's client connections are closed in the same transaction. */
  follow: (
    ep: PodEndpoint,
    primary: { host: string; port: number },
    password?: string,
    opts?: { demote?: boolean },
  ) => Promise<void>;
  /** Sets (or with null removes) the role label of a Redis pod. */
  labelPod: (namespace: string, pod: string, role: string | null) => Promise<void>;
  /** `CLIENT PAUSE ms WRITE` / `CLIENT UNPAUSE` (a planned switchover). */
  pauseWrites: (ep: PodEndpoint, ms: number, password?: string) => Promise<void>;
  unpauseWrites: (ep: PodEndpoint, password?: string) => Promise<void>;
  /** Deletes a Redis pod if it is still the one with `uid` (a rolling update restarts it). */
  deletePod: (namespace: string, pod: string, uid: string) => Promise<void>;
  /** A monotonic clock in milliseconds (the loss countdown never uses the wall clock). */
  clock: () => number;
  /** What this process knows per CacheCluster key, newer than its (possibly lagging) informer cache. */
  memory: Map<string, FailoverMemory>;
  /** Test hook: awaited after each recorded failover step (e.g. to stop an operator in the middle). */
  afterFailoverStep?: (key: string, step: FailoverStep) => Promise<void>;
}

/**
 * This process's own record of one CacheCluster's primary. Set only from what this process wrote or saw, so it
 * is never older than the informer cache's copy of the status (only the leader writes, and a process that lost
 * leadership exits).
 */
export interface FailoverMemory {
  primary: string;
  failover: FailoverInProgress | undefined;
  lastFailover: FailoverRecord | undefined;
  /** The primary was seen up. */
  established: boolean;
  /** Monotonic ms when the primary was first seen lost, without a break since. */
  lostSince: number | undefined;
  /** The primary's replication ID when last seen up: a promotion candidate must hold it. */
  primaryReplid?: string | undefined;
  /** The primary's replication offset when last seen up: the failover's fromOffset once it is lost. */
  primaryOffset?: number | undefined;
  /** The pod this process made the primary at a first start (a later promotion of it is a restart). */
  promotedAtFirstStart?: string | undefined;
  /** The uid of the pod a rolling update deleted last (not deleted again while the cache still shows it). */
  rollDeletedUid?: string | undefined;
  /** Why the rolling update waited last (logged at info when it changes). */
  rollWaiting?: string | undefined;
  /** The roll's progress and condition `RollingUpdate` (RollStuck after no progress for ROLL_STUCK_AFTER_MS). */
  roll?: RollTracking | undefined;
  /** Planned switchovers aborted in a row (their target did not catch up), and when the next may start. */
  switchoverAborts?: number | undefined;
  switchoverRetryAt?: number | undefined;
}

/** `PrimaryAvailable` as the failover step found it. */
export interface PrimaryAvailability {
  status: 'True' | 'False';
  reason:
    | 'PrimaryUp'
    | 'FailoverCompleted'
    | 'WaitingForPrimary'
    | 'PrimaryLost'
    | 'FailoverBlocked'
    /** The primary answers but refuses the operator's password: alive, never failed over. */
    | 'AuthenticationFailed';
  message: string;
}

export interface FailoverOutcome {
  primary: string;
  failover: FailoverInProgress | undefined;
  lastFailover: FailoverRecord | undefined;
  availability: PrimaryAvailability;
  /** Condition `RollingUpdate`, once a probe has looked at the roll (undefined: leave it as it is). */
  roll?: RollCondition | undefined;
  /** When to look again at the latest. */
  retryInMs: number;
  /**
   * The primary refused the password (a rotation not carried to it yet): nothing was changed. Once the live
   * config step has made the pods accept the current password, the step is worth running again at once.
   */
  authFailed?: boolean;
  /**
   * Pods whose Redis did not answer this step's probe (an auth refusal is an answer): the live config step
   * gives them the probe's time box (`probeTimeoutMs`), so that a frozen pod does not hold up the next probe.
   */
  unanswered?: string[];
}

/** How often a replication CacheCluster is probed: a quarter of afterSeconds, between 250 ms and 1 s. */
export function probeIntervalMs(afterSeconds: number): number {
  return Math.min(1000, Math.max(250, Math.round((afterSeconds * 1000) / 4)));
}

interface StepContext {
  deps: {
    kube: KubeApi;
    now: () => Date;
    log: Logger;
    replication: ReplicationDeps;
    cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
  };
  cc: CacheCluster;
  key: string;
  log: Logger;
  password: string | undefined;
  pods: RollingPod[];
}

function isReady(pod: KubeObject | undefined): boolean {
  const conds = (pod?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions;
  return conds?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The time box of the failover step's `INFO replication` probes: the probe interval, at least 500 ms. A frozen
 * primary (its Redis accepts connections and never answers) is found unreachable that soon, not after the
 * operator's Redis timeout (`--redis-timeout-ms`, which may be longer than `afterSeconds`).
 */
export function probeTimeoutMs(afterSeconds: number): number {
  return Math.max(500, probeIntervalMs(afterSeconds));
}

/**
 * Observes every Redis pod: the Pod in the informer cache and `INFO replication` (concurrently, each time boxed
 * to `probeTimeoutMs`).
 */
export async function observeRedisPods(
  deps: {
    cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
    podAddress: (namespace: string, pod: string, dnsName: string, port: number) => { host: string; port: number };
    replication: ReplicationDeps;
  },
  cc: CacheCluster,
  password: string | undefined,
): Promise<RollingPod[]> {
  const ns = cc.metadata.namespace;
  const spec = resolveSpec(cc);
  const timeoutMs = probeTimeoutMs(spec.failoverAfterSeconds);
  const pods: Promise<RollingPod>[] = [];
  for (let i = 0; i < spec.pods; i++) {
    const name = podName(cc, i);
    const pod = deps.cached('Pod', ns, name);
    const address = deps.podAddress(ns, name, podHost(cc, i), REDIS_PORT);
    pods.push(
      deps.replication.readReplication({ pod: name, ...address }, password, timeoutMs).then((info) => ({
        pod: name,
        exists: pod !== undefined && !pod.metadata?.deletionTimestamp,
        ready: isReady(pod),
        roleLabel: pod?.metadata?.labels?.[LABEL_ROLE],
        address,
        info,
        revision: pod?.metadata?.labels?.[LABEL_REVISION],
        uid: pod?.metadata?.uid,
      })),
    );
  }
  return Promise.all(pods);
}

function initialMemory(cc: CacheCluster): FailoverMemory {
  const s = cc.status ?? {};
  const cond = findCondition(s.conditions, CONDITION_PRIMARY_AVAILABLE);
  return {
    primary: s.failover ? s.failover.from : (s.primary ?? podName(cc, 0)),
    failover: s.failover,
    lastFailover: s.lastFailover,
    established: cond !== undefined && cond.reason !== 'WaitingForPrimary',
    lostSince: undefined,
  };
}

async function applyChange(ctx: StepContext, c: RoleChange): Promise<void> {
  const { deps, cc, password } = ctx;
  const r = deps.replication;
  const ep = (pod: string): PodEndpoint => {
    const p = ctx.pods.find((x) => x.pod === pod)!;
    return { pod, host: p.address.host, port: p.address.port };
  };
  switch (c.op) {
    case 'label':
      await r.labelPod(cc.metadata.namespace, c.pod, c.role);
      ctx.log.info({ pod: c.pod, role: c.role }, c.role ? 'Labelled Redis pod with its role' : 'Removed role label');
      return;
    case 'promote':
      await r.promote(ep(c.pod), password);
      ctx.log.info({ pod: c.pod }, 'Promoted replica to primary (REPLICAOF NO ONE)');
      return;
    case 'follow':
      await r.follow(ep(c.pod), c.address, password, { demote: c.demote === true });
      ctx.log.info(
        { pod: c.pod, primary: c.primary, ...(c.demote ? { clientsDisconnected: true } : {}) },
        c.demote
          ? 'Made Redis pod a replica of the primary (REPLICAOF) and closed its client connections'
          : 'Made Redis pod a replica of the primary (REPLICAOF)',
      );
      return;
  }
}

/** Role changes outside a failover: a pod that cannot be changed now is retried on the next probe. */
async function applyAll(ctx: StepContext, changes: RoleChange[]): Promise<void> {
  for (const c of changes) {
    try {
      await applyChange(ctx, c);
    } catch (err) {
      // The primary label must be gone before anything else happens: that failure stops the step.
      if (c.op === 'label' && c.role === null) throw err;
      if ((err as { code?: string }).code === 'NotLeader') throw err;
      ctx.log.warn({ err: err instanceof Error ? err.message : String(err), change: c }, 'Could not change role');
    }
  }
}

async function recordFailover(ctx: StepContext, f: FailoverInProgress): Promise<void> {
  const { cc, deps } = ctx;
  await deps.kube.patchStatus(
    { apiVersion: API_VERSION, kind: KIND, plural: PLURAL, namespace: cc.metadata.namespace, name: cc.metadata.name },
    { failover: f },
  );
  const mem = deps.replication.memory.get(ctx.key);
  if (mem) mem.failover = f;
}

async function stepDone(ctx: StepContext, f: FailoverInProgress, step: FailoverStep): Promise<FailoverInProgress> {
  const next = { ...f, step };
  if (f.step !== step) await recordFailover(ctx, next);
  ctx.log.info({ from: f.from, to: f.to, step }, 'Failover step done');
  await ctx.deps.replication.afterFailoverStep?.(ctx.key, step);
  return next;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Posts an Event on the CacheCluster; a failure to post is logged, never fatal. */
async function recordEvent(
  ctx: StepContext,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
): Promise<void> {
  const { cc } = ctx;
  await ctx.deps.kube
    .event({
      involved: {
        apiVersion: API_VERSION,
        kind: KIND,
        namespace: cc.metadata.namespace,
        name: cc.metadata.name,
        uid: cc.metadata.uid,
      },
      type,
      reason,
      message,
    })
    .catch((err: unknown) => ctx.log.warn({ err: errMessage(err) }, 'Could not record event'));
}

function endpoint(ctx: StepContext, pod: string): PodEndpoint {
  const p = ctx.pods.find((x) => x.pod === pod)!;
  return { pod, host: p.address.host, port: p.address.port };
}

/**
 * A planned switchover, before the promotion: `CLIENT PAUSE WRITE` on the old primary (still up), then wait
 * until the target's offset reaches the primary's, so that no write the old primary acknowledged is missing
 * on the target. Bounded: the pause ends by itself; a target not caught up within SWITCHOVER_CATCH_UP_MS (or a
 * side that stops answering) aborts the switchover (`catchUpVerdict`): it is never promoted behind.
 */
async function pauseAndCatchUp(
  ctx: StepContext,
  f: FailoverInProgress,
): Promise<Exclude<CatchUpVerdict, { state: 'wait' }>> {
  const r = ctx.deps.replication;
  await r.pauseWrites(endpoint(ctx, f.from), SWITCHOVER_PAUSE_MS, ctx.password);
  const started = r.clock();
  for (;;) {
    const [from, to] = await Promise.all([
      r.readReplication(endpoint(ctx, f.from), ctx.password),
      r.readReplication(endpoint(ctx, f.to), ctx.password),
    ]);
    const verdict = catchUpVerdict(from, to, r.clock() - started);
    if (verdict.state === 'caught-up') {
      ctx.log.info({ from: f.from, to: f.to, offset: verdict.offset }, 'Switchover target caught up with the primary');
      return verdict;
    }
    if (verdict.state === 'abort') return verdict;
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * A planned switchover whose target did not catch up: the old primary was never demoted, so it stays the
 * primary. Writes are unpaused, its primary label put back (no other pod has one: the target was not
 * promoted), the failover cleared from status, an Event `SwitchoverAborted` with both offsets, and the next try
 * waits (SWITCHOVER_RETRY_BACKOFF, longer after each abort in a row).
 */
async function abortSwitchover(ctx: StepContext, f: FailoverInProgress, why: string): Promise<void> {
  const { deps, cc, log } = ctx;
  const r = deps.replication;
  await r
    .unpauseWrites(endpoint(ctx, f.from), ctx.password)
    .catch((err: unknown) => log.warn({ err: errMessage(err) }, 'Could not unpause the primary'));
  await r.labelPod(cc.metadata.namespace, f.from, ROLE_PRIMARY);
  await deps.kube.patchStatus(
    { apiVersion: API_VERSION, kind: KIND, plural: PLURAL, namespace: cc.metadata.namespace, name: cc.metadata.name },
    { failover: null },
  );
  const mem = r.memory.get(ctx.key);
  const aborts = (mem?.switchoverAborts ?? 0) + 1;
  const delayMs = backoffDelay(SWITCHOVER_RETRY_BACKOFF, aborts - 1);
  if (mem) {
    mem.failover = undefined;
    mem.switchoverAborts = aborts;
    mem.switchoverRetryAt = r.clock() + delayMs;
  }
  const [from, to] = await Promise.all([
    r.readReplication(endpoint(ctx, f.from), ctx.password),
    r.readReplication(endpoint(ctx, f.to), ctx.password),
  ]);
  const offsets =
    `${f.from} at offset ${from.reachable ? from.offset : 'unknown'}, ` +
    `${f.to} at offset ${to.reachable ? to.offset : 'unknown'}`;
  const message =
    `switchover from ${f.from} to ${f.to} aborted: ${why}; ${f.from} stays the primary (${offsets}); ` +
    `retrying in ${Math.round(delayMs / 1000)} s`;
  log.warn({ from: f.from, to: f.to, why, aborts, retryInMs: delayMs }, 'Switchover aborted');
  await recordEvent(ctx, 'Warning', 'SwitchoverAborted', message);
}

/**
 * Runs a recorded failover to its end, each step idempotent: (1) the primary label off every pod (the lost
 * primary first: from here no pod is labelled primary, so nothing sends it primary traffic); (2) `REPLICAOF NO
 * ONE` on the target unless it already reports master; (3) `REPLICAOF target` on every other reachable pod,
 * the lost primary included if it answers again; (4) the primary label on the target, replica labels.
 */
async function runFailover(ctx: StepContext, f: FailoverInProgress): Promise<FailoverRecord | undefined> {
  const { pods } = ctx;
  const changes = planRoles(f.to, pods, { promote: true });
  const unlabel = changes.filter(
    (c) => c.op === 'label' && c.role === null && pods.find((p) => p.pod === c.pod)?.roleLabel === ROLE_PRIMARY,
  );
  for (const c of unlabel) await applyChange(ctx, c);
  f = await stepDone(ctx, f, 'Unlabelled');
  const promotes = changes.filter((c) => c.op === 'promote');
  const from = pods.find((p) => p.pod === f.from);
  const paused = f.reason === 'Planned' && promotes.length > 0 && from?.info.reachable === true;
  if (paused) {
    const verdict = await pauseAndCatchUp(ctx, f);
    if (verdict.state === 'abort') {
      await abortSwitchover(ctx, f, verdict.why);
      return undefined;
    }
  }
  for (const c of promotes) await applyChange(ctx, c);
  f = await stepDone(ctx, f, 'Promoted');
  await applyAll(
    ctx,
    changes.filter((c) => c.op === 'follow'),
  );
  f = await stepDone(ctx, f, 'Repointed');
  // The old primary follows the target now: writes held back fail READONLY at once instead of at the timeout.
  if (paused)
    await ctx.deps.replication
      .unpauseWrites(endpoint(ctx, f.from), ctx.password)
      .catch((err: unknown) => ctx.log.warn({ err: errMessage(err) }, 'Could not unpause the old primary'));
  // The target now reports master (promoted above, or before): label it primary, then the replicas.
  const rest = changes.filter((c) => c.op === 'label' && !unlabel.includes(c));
  const primaryLabel = rest.filter((c) => c.op === 'label' && c.pod === f.to);
  for (const c of primaryLabel) await applyChange(ctx, c);
  await applyAll(
    ctx,
    rest.filter((c) => !primaryLabel.includes(c)),
  );
  return {
    from: f.from,
    to: f.to,
    toOffset: f.toOffset,
    ...(f.fromOffset !== undefined ? { fromOffset: f.fromOffset } : {}),
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
    startedAt: f.startedAt,
    completedAt: formatTime(ctx.deps.now()),
  };
}

function steadyMessage(mem: FailoverMemory): PrimaryAvailability {
  return mem.lastFailover
    ? {
        status: 'True',
        reason: 'FailoverCompleted',
        message: `${mem.primary} is the primary since a ${mem.lastFailover.reason === 'Planned' ? 'planned switchover' : 'failover'} from ${mem.lastFailover.from} at ${mem.lastFailover.completedAt}`,
      }
    : { status: 'True', reason: 'PrimaryUp', message: `${mem.primary} runs as the primary` };
}

/** Carries out a recorded failover (or planned switchover), then records its completion and an event. */
async function completeFailover(ctx: StepContext, mem: FailoverMemory, f: FailoverInProgress): Promise<void> {
  const { deps, cc, log } = ctx;
  const record = await runFailover(ctx, f);
  if (record === undefined) return;
  if (record.reason === 'Planned') mem.switchoverAborts = 0;
  // The new primary on record at once (a new leader reads it from here), the failover no longer in progress.
  await deps.kube.patchStatus(
    {
      apiVersion: API_VERSION,
      kind: KIND,
      plural: PLURAL,
      namespace: cc.metadata.namespace,
      name: cc.metadata.name,
    },
    // The record replaces the last one whole: a merge patch would keep its optional fields (a switchover's
    // `reason: Planned`, an earlier `fromOffset`).
    {
      primary: record.to,
      failover: null,
      lastFailover: {
        ...record,
        ...(record.fromOffset === undefined ? { fromOffset: null } : {}),
        ...(record.reason === undefined ? { reason: null } : {}),
      },
    },
  );
  mem.primary = record.to;
  mem.failover = undefined;
  mem.lastFailover = record;
  mem.lostSince = undefined;
  mem.established = true;
  mem.primaryReplid = undefined;
  mem.primaryOffset = undefined;
  const took = (Date.parse(record.completedAt) - Date.parse(record.startedAt)) / 1000;
  const planned = record.reason === 'Planned';
  const message = planned
    ? `switched over from ${record.from} to ${record.to} (replication offset ${record.toOffset}) for a rolling ` +
      `update: ${record.from} restarts as a replica; took ${took} s`
    : `promoted ${record.to} (replication offset ${record.toOffset}) in place of ${record.from}` +
      (record.fromOffset !== undefined
        ? ` (last seen at offset ${record.fromOffset})`
        : ' (offset unknown: unreachable)') +
      `; took ${took} s after detection`;
  if (planned) log.info({ ...record }, 'Switchover completed');
  else log.warn({ ...record }, 'Failover completed');
  await recordEvent(ctx, 'Normal', planned ? 'SwitchoverCompleted' : 'FailoverCompleted', message);
}

/**
 * A rolling update (the StatefulSet is OnDelete): restart the next pod on an old revision, or switch the primary
 * over to an up-to-date replica first (recorded in status.failover, with reason Planned, like a failover).
 */
async function rollStep(ctx: StepContext, mem: FailoverMemory): Promise<void> {
  const seen = await rollAction(ctx, mem);
  const before = mem.roll?.condition;
  mem.roll = trackRoll(mem.roll ?? {}, seen, ctx.deps.replication.clock());
  const after = mem.roll.condition;
  if (after?.reason === 'RollStuck' && before?.reason !== 'RollStuck')
    ctx.log.warn({ why: after.message }, 'Rolling update stuck');
}

function rollDecision(ctx: StepContext, mem: FailoverMemory) {
  const sts = ctx.deps.cached('StatefulSet', ctx.cc.metadata.namespace, statefulSetName(ctx.cc));
  const stsStatus = sts?.status as { updateRevision?: string; observedGeneration?: number } | undefined;
  return decideRoll({
    primary: mem.primary,
    updateRevision: stsStatus?.updateRevision,
    stsObserved: (stsStatus?.observedGeneration ?? -1) >= (sts?.metadata?.generation ?? 0),
    pods: ctx.pods,
    deletedUid: mem.rollDeletedUid,
  });
}

/**
 * While the primary is not up the roll cannot go on (nothing is restarted), but condition `RollingUpdate` must
 * still say whether pods run an old revision: waiting (RollStuck in time), never a stale UpToDate.
 */
function rollPaused(ctx: StepContext, mem: FailoverMemory, why: string): void {
  const seen: RollObservation = rollDecision(ctx, mem).action === 'none' ? { kind: 'none' } : { kind: 'wait', why };
  mem.roll = trackRoll(mem.roll ?? {}, seen, ctx.deps.replication.clock());
}

async function rollAction(ctx: StepContext, mem: FailoverMemory): Promise<RollObservation> {
  const { deps, cc, log } = ctx;
  const ns = cc.metadata.namespace;
  const decision = rollDecision(ctx, mem);
  switch (decision.action) {
    case 'none':
      mem.rollWaiting = undefined;
      // The roll is over (the last restarted pod back and in sync): a later crash is no roll.
      mem.rollDeletedUid = undefined;
      return { kind: 'none' };
    case 'wait':
      if (mem.rollWaiting !== decision.why) log.info({ why: decision.why }, 'Rolling update: waiting');
      mem.rollWaiting = decision.why;
      return { kind: 'wait', why: decision.why };
    case 'delete': {
      if (decision.uid === undefined) return { kind: 'wait', why: `${decision.pod} has no uid in the cache yet` };
      log.info({ pod: decision.pod, why: decision.why }, 'Rolling update: restarting pod');
      await deps.replication.deletePod(ns, decision.pod, decision.uid);
      mem.rollDeletedUid = decision.uid;
      await recordEvent(ctx, 'Normal', 'RollingUpdate', `restarting ${decision.pod}: ${decision.why}`);
      return { kind: 'step', message: `rolling update in progress: restarted ${decision.pod} (${decision.why})` };
    }
    case 'switchover': {
      const retryAt = mem.switchoverRetryAt ?? 0;
      if (deps.replication.clock() < retryAt)
        return {
          kind: 'wait',
          why:
            `the switchover from ${decision.from} to ${decision.to} was aborted ${mem.switchoverAborts ?? 0} ` +
            `time(s) in a row (its target did not catch up); waiting before the next try`,
        };
      const f: FailoverInProgress = {
        from: decision.from,
        to: decision.to,
        toOffset: decision.toOffset,
        fromOffset: decision.fromOffset,
        reason: 'Planned',
        step: 'Started',
        startedAt: formatTime(deps.now()),
      };
      log.info({ from: f.from, to: f.to }, 'Rolling update: switching the primary over before restarting it');
      await recordFailover(ctx, f);
      await deps.replication.afterFailoverStep?.(ctx.key, 'Started');
      await completeFailover(ctx, mem, f);
      if (mem.failover === undefined && mem.primary === decision.to)
        return { kind: 'step', message: `rolling update in progress: switched the primary over to ${decision.to}` };
      return { kind: 'wait', why: `the switchover from ${decision.from} to ${decision.to} was aborted` };
    }
  }
}

function outcomeOf(
  mem: FailoverMemory,
  availability: PrimaryAvailability,
  retryInMs: number,
  pods: RollingPod[],
): FailoverOutcome {
  const unanswered = pods.filter((p) => !p.info.reachable && !p.info.authFailed).map((p) => p.pod);
  return {
    primary: mem.primary,
    failover: mem.failover,
    lastFailover: mem.lastFailover,
    availability,
    ...(mem.roll?.condition !== undefined ? { roll: mem.roll.condition } : {}),
    retryInMs,
    ...(unanswered.length > 0 ? { unanswered } : {}),
  };
}

/**
 * Step: keep the primary and its replicas in order, detect a lost primary, and fail over after
 * `spec.failover.afterSeconds`. Only for topology replication with a StatefulSet.
 */
export async function failoverStep(
  deps: StepContext['deps'] & Parameters<typeof observeRedisPods>[0],
  cc: CacheCluster,
  key: string,
  log: Logger,
  password: string | undefined,
): Promise<FailoverOutcome> {
  const r = deps.replication;
  const spec = resolveSpec(cc);
  const afterMs = spec.failoverAfterSeconds * 1000;
  const probeMs = probeIntervalMs(spec.failoverAfterSeconds);
  let mem = r.memory.get(key);
  if (!mem) {
    mem = initialMemory(cc);
    r.memory.set(key, mem);
  }
  // A primary found lost counts as lost since the probe was sent: it did not answer from then on.
  const probedAt = r.clock();
  const pods = await observeRedisPods(deps, cc, password);
  const ctx: StepContext = { deps, cc, key, log, password, pods };

  // The primary answered, refusing the password (a rotated auth Secret not carried to it yet, or an unknown
  // password): it is alive. Never a lost primary, never a failover; nothing is changed until the operator can
  // authenticate (the live config step carries a rotation to the pods, then this step runs again).
  const primaryInfo = pods.find((p) => p.pod === mem.primary)?.info;
  if (!mem.failover && primaryInfo && !primaryInfo.reachable && primaryInfo.authFailed) {
    mem.lostSince = undefined;
    const why = `Redis on ${mem.primary} refuses the operator's password (${primaryInfo.message})`;
    rollPaused(ctx, mem, why);
    return {
      ...outcomeOf(
        mem,
        { status: 'False', reason: 'AuthenticationFailed', message: `${why}; not failing over` },
        probeMs,
        pods,
      ),
      authFailed: true,
    };
  }

  if (!mem.failover) {
    const primary = pods.find((p) => p.pod === mem.primary);
    if (primaryUp(primary)) {
      mem.lostSince = undefined;
      mem.established = true;
      if (primary?.info.reachable) {
        mem.primaryReplid = primary.info.replid;
        mem.primaryOffset = primary.info.offset;
      }
    } else mem.lostSince ??= probedAt;
  }
  const decision = decideFailover({
    primary: mem.primary,
    established: mem.established,
    inProgress: mem.failover,
    pods,
    lostForMs: mem.lostSince === undefined ? undefined : r.clock() - mem.lostSince,
    afterMs,
    primaryReplid: mem.primaryReplid,
    primaryOffset: mem.primaryOffset,
    promotedAtFirstStart: mem.promotedAtFirstStart === mem.primary,
  });
  const outcome = (availability: PrimaryAvailability, retryInMs = probeMs): FailoverOutcome =>
    outcomeOf(mem, availability, retryInMs, pods);

  switch (decision.action) {
    case 'steady': {
      const changes = planRoles(mem.primary, pods, { promote: false });
      await applyAll(ctx, changes);
      if (!decision.up) {
        rollPaused(ctx, mem, `waiting for the primary ${mem.primary}`);
        return outcome({
          status: 'False',
          reason: 'WaitingForPrimary',
          message: `waiting for ${mem.primary} to run as the primary`,
        });
      }
      // Roles in order: a rolling update may restart the next pod, or switch the primary over.
      if (changes.length === 0) await rollStep(ctx, mem);
      return outcome(steadyMessage(mem));
    }
    case 'wait':
      rollPaused(ctx, mem, `the primary ${decision.primary} is lost: ${decision.why}`);
      return outcome(
        {
          status: 'False',
          reason: 'PrimaryLost',
          message: `primary ${decision.primary} is lost: ${decision.why}; failover after ${spec.failoverAfterSeconds} s`,
        },
        Math.min(probeMs, Math.max(50, decision.retryInMs)),
      );
    case 'promote-in-place': {
      // Promote, repoint the others (a pod that restarted empty too), label: planRoles orders it.
      const changes = planRoles(mem.primary, pods, { promote: true });
      if (decision.firstStart) log.info({ primary: mem.primary }, 'First start: making the primary');
      else log.warn({ primary: mem.primary, why: decision.why }, 'Making the restarted primary the primary again');
      await applyAll(ctx, changes);
      if (decision.firstStart) mem.promotedAtFirstStart = mem.primary;
      else
        await recordEvent(
          ctx,
          'Warning',
          'PrimaryRestarted',
          `${mem.primary} is the primary again with the data it restarted with: ${decision.why}`,
        );
      return outcome({
        status: 'False',
        reason: decision.firstStart ? 'WaitingForPrimary' : 'PrimaryLost',
        message: `making ${mem.primary} the primary: ${decision.why}`,
      });
    }
    case 'blocked':
    case 'blocked-in-progress': {
      const why = decision.why;
      log.warn({ primary: mem.primary, why }, 'Primary lost and no replica can be promoted');
      rollPaused(ctx, mem, `the primary ${mem.primary} is lost and cannot be failed over`);
      return outcome({ status: 'False', reason: 'FailoverBlocked', message: `not failing over: ${why}` });
    }
    case 'start':
    case 'retarget':
    case 'continue': {
      let f: FailoverInProgress;
      if (decision.action === 'start') {
        f = { ...decision.failover, step: 'Started', startedAt: formatTime(deps.now()) };
        log.warn(
          { from: f.from, to: f.to, toOffset: f.toOffset, fromOffset: f.fromOffset },
          'Primary lost: failing over',
        );
        await recordFailover(ctx, f);
      } else if (decision.action === 'retarget') {
        f = { ...decision.failover, to: decision.to, toOffset: decision.toOffset, step: 'Started' };
        log.warn({ from: f.from, to: f.to }, 'Failover target no longer healthy: failing over to another replica');
        await recordFailover(ctx, f);
      } else f = decision.failover;
      await r.afterFailoverStep?.(key, 'Started');
      await completeFailover(ctx, mem, f);
      return outcome(steadyMessage(mem), probeMs);
    }
  }
}
