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
import { podHost, podName } from '../desired/names.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import type { KubeApi, KubeObject } from '../k8s/kube-client.js';
import type { PodEndpoint } from '../redis/live-config.js';
import type { ReplicationInfo } from '../redis/replication.js';
import { findCondition, formatTime } from '../status/conditions.js';
import { decideFailover, planRoles, primaryUp, type ObservedRedisPod, type RoleChange } from './failover-decision.js';

/** What the failover step needs besides the reconcile's deps. */
export interface ReplicationDeps {
  readReplication: (ep: PodEndpoint, password?: string) => Promise<ReplicationInfo>;
  promote: (ep: PodEndpoint, password?: string) => Promise<void>;
  follow: (ep: PodEndpoint, primary: { host: string; port: number }, password?: string) => Promise<void>;
  /** Sets (or with null removes) the role label of a Redis pod. */
  labelPod: (namespace: string, pod: string, role: string | null) => Promise<void>;
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
}

/** `PrimaryAvailable` as the failover step found it. */
export interface PrimaryAvailability {
  status: 'True' | 'False';
  reason: 'PrimaryUp' | 'FailoverCompleted' | 'WaitingForPrimary' | 'PrimaryLost' | 'FailoverBlocked';
  message: string;
}

export interface FailoverOutcome {
  primary: string;
  failover: FailoverInProgress | undefined;
  lastFailover: FailoverRecord | undefined;
  availability: PrimaryAvailability;
  /** When to look again at the latest. */
  retryInMs: number;
}

/** How often a replication CacheCluster is probed: a quarter of afterSeconds, between 250 ms and 1 s. */
export function probeIntervalMs(afterSeconds: number): number {
  return Math.min(1000, Math.max(250, Math.round((afterSeconds * 1000) / 4)));
}

interface StepContext {
  deps: { kube: KubeApi; now: () => Date; log: Logger; replication: ReplicationDeps };
  cc: CacheCluster;
  key: string;
  log: Logger;
  password: string | undefined;
  pods: ObservedRedisPod[];
}

function isReady(pod: KubeObject | undefined): boolean {
  const conds = (pod?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions;
  return conds?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Observes every Redis pod: the Pod in the informer cache and `INFO replication` (concurrently). */
export async function observeRedisPods(
  deps: {
    cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
    podAddress: (namespace: string, pod: string, dnsName: string, port: number) => { host: string; port: number };
    replication: ReplicationDeps;
  },
  cc: CacheCluster,
  password: string | undefined,
): Promise<ObservedRedisPod[]> {
  const ns = cc.metadata.namespace;
  const spec = resolveSpec(cc);
  const pods: Promise<ObservedRedisPod>[] = [];
  for (let i = 0; i < spec.pods; i++) {
    const name = podName(cc, i);
    const pod = deps.cached('Pod', ns, name);
    const address = deps.podAddress(ns, name, podHost(cc, i), REDIS_PORT);
    pods.push(
      deps.replication.readReplication({ pod: name, ...address }, password).then((info) => ({
        pod: name,
        exists: pod !== undefined && !pod.metadata?.deletionTimestamp,
        ready: isReady(pod),
        roleLabel: pod?.metadata?.labels?.[LABEL_ROLE],
        address,
        info,
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
      await r.follow(ep(c.pod), c.address, password);
      ctx.log.info({ pod: c.pod, primary: c.primary }, 'Made Redis pod a replica of the primary (REPLICAOF)');
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

/**
 * Runs a recorded failover to its end, each step idempotent: (1) the primary label off every pod (the lost
 * primary first: from here no pod is labelled primary, so nothing sends it primary traffic); (2) `REPLICAOF NO
 * ONE` on the target unless it already reports master; (3) `REPLICAOF target` on every other reachable pod,
 * the lost primary included if it answers again; (4) the primary label on the target, replica labels.
 */
async function runFailover(ctx: StepContext, f: FailoverInProgress): Promise<FailoverRecord> {
  const { pods } = ctx;
  const changes = planRoles(f.to, pods, { promote: true });
  const unlabel = changes.filter(
    (c) => c.op === 'label' && c.role === null && pods.find((p) => p.pod === c.pod)?.roleLabel === ROLE_PRIMARY,
  );
  for (const c of unlabel) await applyChange(ctx, c);
  f = await stepDone(ctx, f, 'Unlabelled');
  for (const c of changes.filter((c) => c.op === 'promote')) await applyChange(ctx, c);
  f = await stepDone(ctx, f, 'Promoted');
  await applyAll(
    ctx,
    changes.filter((c) => c.op === 'follow'),
  );
  f = await stepDone(ctx, f, 'Repointed');
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
    startedAt: f.startedAt,
    completedAt: formatTime(ctx.deps.now()),
  };
}

function steadyMessage(mem: FailoverMemory): PrimaryAvailability {
  return mem.lastFailover
    ? {
        status: 'True',
        reason: 'FailoverCompleted',
        message: `${mem.primary} is the primary since a failover from ${mem.lastFailover.from} at ${mem.lastFailover.completedAt}`,
      }
    : { status: 'True', reason: 'PrimaryUp', message: `${mem.primary} runs as the primary` };
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
  const pods = await observeRedisPods(deps, cc, password);
  const ctx: StepContext = { deps, cc, key, log, password, pods };

  if (!mem.failover) {
    const primary = pods.find((p) => p.pod === mem.primary);
    if (primaryUp(primary)) {
      mem.lostSince = undefined;
      mem.established = true;
      if (primary?.info.reachable) mem.primaryReplid = primary.info.replid;
    } else mem.lostSince ??= r.clock();
  }
  const decision = decideFailover({
    primary: mem.primary,
    established: mem.established,
    inProgress: mem.failover,
    pods,
    lostForMs: mem.lostSince === undefined ? undefined : r.clock() - mem.lostSince,
    afterMs,
    primaryReplid: mem.primaryReplid,
  });
  const outcome = (availability: PrimaryAvailability, retryInMs = probeMs): FailoverOutcome => ({
    primary: mem.primary,
    failover: mem.failover,
    lastFailover: mem.lastFailover,
    availability,
    retryInMs,
  });

  switch (decision.action) {
    case 'steady': {
      await applyAll(ctx, planRoles(mem.primary, pods, { promote: false }));
      if (!decision.up)
        return outcome({
          status: 'False',
          reason: 'WaitingForPrimary',
          message: `waiting for ${mem.primary} to run as the primary`,
        });
      return outcome(steadyMessage(mem));
    }
    case 'wait':
      return outcome(
        {
          status: 'False',
          reason: 'PrimaryLost',
          message: `primary ${decision.primary} is lost: ${decision.why}; failover after ${spec.failoverAfterSeconds} s`,
        },
        Math.min(probeMs, Math.max(50, decision.retryInMs)),
      );
    case 'blocked':
    case 'blocked-in-progress': {
      const why = decision.why;
      log.warn({ primary: mem.primary, why }, 'Primary lost and no replica can be promoted');
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
      const record = await runFailover(ctx, f);
      // The new primary on record at once (a new leader reads it from here), the failover no longer in progress.
      await deps.kube.patchStatus(
        {
          apiVersion: API_VERSION,
          kind: KIND,
          plural: PLURAL,
          namespace: cc.metadata.namespace,
          name: cc.metadata.name,
        },
        { primary: record.to, failover: null, lastFailover: record },
      );
      mem.primary = record.to;
      mem.failover = undefined;
      mem.lastFailover = record;
      mem.lostSince = undefined;
      mem.established = true;
      mem.primaryReplid = undefined;
      const took = (Date.parse(record.completedAt) - Date.parse(record.startedAt)) / 1000;
      const message =
        `promoted ${record.to} (replication offset ${record.toOffset}) in place of ${record.from}` +
        (record.fromOffset !== undefined
          ? ` (last seen at offset ${record.fromOffset})`
          : ' (offset unknown: unreachable)') +
        `; took ${took} s after detection`;
      log.warn({ ...record }, 'Failover completed');
      await deps.kube
        .event({
          involved: {
            apiVersion: API_VERSION,
            kind: KIND,
            namespace: cc.metadata.namespace,
            name: cc.metadata.name,
            uid: cc.metadata.uid,
          },
          type: 'Normal',
          reason: 'FailoverCompleted',
          message,
        })
        .catch((err: unknown) =>
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Could not record event'),
        );
      return outcome(steadyMessage(mem), probeMs);
    }
  }
}
