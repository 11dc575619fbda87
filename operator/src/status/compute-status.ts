/**
 * The CacheCluster status, computed from what was observed (the StatefulSet, what the pods answered
 * to CONFIG GET, the flush CronJob). Pure: the time is passed in. The previous status is read only to
 * keep condition transition times and the last verified eviction settings, never as a lock.
 */
import {
  CONDITION_CONFIG_APPLIED,
  CONDITION_DEGRADED,
  CONDITION_PRIMARY_AVAILABLE,
  CONDITION_ROLLING_UPDATE,
  CONDITION_PROGRESSING,
  CONDITION_READY,
  CONDITION_UNSUPPORTED,
} from '../api/v1alpha1/constants.js';
import type { Phase } from '../api/v1alpha1/constants.js';
import type {
  AppliedConfig,
  CacheCluster,
  CacheClusterStatus,
  Condition,
  FailoverInProgress,
  FailoverRecord,
  PodAppliedConfig,
  ReshardingStatus,
  ShardStatus,
} from '../api/v1alpha1/types.js';
import { desiredEviction } from '../desired/eviction.js';
import { InvalidSpecError } from '../desired/invalid-spec-error.js';
import { selectorString } from '../desired/labels.js';
import {
  podName,
  replicasServiceHost,
  serviceEndpoint,
  shardStatefulSetName,
  statefulSetName,
} from '../desired/names.js';
import { REDIS_PORT } from '../api/v1alpha1/constants.js';
import { formatBytes } from '../desired/quantity.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import { formatTime, setCondition } from './conditions.js';
import type { ConditionInput } from './conditions.js';

export { statusEqual } from './status-equal.js';
export { unsupportedFields } from './unsupported-fields.js';

/** The fields of an observed StatefulSet that status reads. */
export interface ObservedStatefulSet {
  metadata?: { generation?: number };
  spec?: { replicas?: number; updateStrategy?: { type?: string } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
  };
}

/** One pod's answer to the operator's CONFIG SET / CONFIG GET (the redis module's `PodConfigResult` fits). */
export interface PodConfigObservation {
  pod: string;
  applied: boolean;
  observed?: { maxmemory: number; maxmemoryPolicy: string };
  message?: string;
}

/** The outcome of applying the eviction settings to the pods in this reconcile. */
export interface ConfigResult {
  desired: { maxmemory: number; maxmemoryPolicy: string };
  pods: PodConfigObservation[];
}

export interface ComputeStatusInput {
  cc: CacheCluster;
  /** Absent when the StatefulSet does not exist (yet). */
  statefulSet?: ObservedStatefulSet;
  /** Absent when no pod was configured in this reconcile (e.g. none ready yet). */
  configResult?: ConfigResult;
  /** From `unsupportedFields(cc)`. */
  unsupported: string[];
  now: Date;
  /** Set when the spec cannot be realised (an `InvalidSpecError` from the builders): phase Failed. */
  specError?: { reason: string; message: string };
  /**
   * Set when `spec.auth.secretRef` names a Secret or key that does not exist (`authSecretError`): Ready=False
   * and Degraded=True with its reason, phase Failed, or Degraded when the cluster ran before.
   */
  authError?: { reason: string; message: string };
  /**
   * Set when writing a child failed (the API server's message, e.g. an admission denial): Ready=False with
   * reason ReconcileError, phase Failed, or Degraded when the cluster ran before.
   */
  reconcileError?: string;
  /** The pod Redis reports as primary. Default: pod 0 once the StatefulSet exists. */
  primary?: string;
  /**
   * Every pod that reported role master in this reconcile. More than one with topology replication is a
   * split brain: phase Degraded, reason MultiplePrimaries.
   */
  primaries?: string[];
  /**
   * The eviction settings the spec asks for, when the caller has already computed them (`desiredEviction`);
   * computed here otherwise.
   */
  desired?: { maxmemory: number; maxmemoryPolicy: string };
  /** The flush CronJob as observed, for `lastFlushTime` (a Date as @kubernetes/client-node gives it, or RFC 3339). */
  flushCronJob?: { status?: { lastSuccessfulTime?: string | Date } } | undefined;
  /**
   * Topology replication: what the failover step found (condition PrimaryAvailable, `failover`, `lastFailover`).
   * A primary lost, or lost with no replica to promote, makes the phase Degraded.
   */
  failover?: FailoverFacts;
  /** Topology cluster: what the cluster step found (reconcile/cluster-step.ts). */
  cluster?: ClusterFacts;
}

/** The cluster step's findings, as status shows them. */
export interface ClusterFacts {
  /** `cluster_state` of CLUSTER INFO, when a node answered. */
  state: string | undefined;
  slotsAssigned: number;
  shards: ShardStatus[];
  resharding: ReshardingStatus | undefined;
  /** What bootstrap waits for. */
  waiting?: string | undefined;
}

/** The failover step's findings, as status shows them. */
export interface FailoverFacts {
  availability: { status: 'True' | 'False'; reason: string; message: string };
  inProgress: FailoverInProgress | undefined;
  lastFailover: FailoverRecord | undefined;
  /** Condition RollingUpdate, when the failover step looked at the roll (else it stays as it was). */
  roll?: { status: 'True' | 'False'; reason: string; message: string } | undefined;
}

export type ConfigState =
  | { state: 'applied'; message: string }
  | { state: 'failed'; message: string }
  | { state: 'unknown'; reason: string; message: string };

function podsAppliedConfig(result: ConfigResult): PodAppliedConfig[] {
  return result.pods.map((p) => ({
    pod: p.pod,
    maxmemory: p.observed?.maxmemory ?? 0,
    maxmemoryPolicy: p.observed?.maxmemoryPolicy ?? '',
    applied: p.applied,
    ...(p.message !== undefined ? { message: p.message } : {}),
  }));
}

function describeEviction(e: { maxmemory: number; maxmemoryPolicy: string }): string {
  return `maxmemory=${e.maxmemory} maxmemory-policy=${e.maxmemoryPolicy}`;
}

/** The spec error the caller reported, else one the eviction settings raise (CEL normally rejects those). */
function findSpecError(input: ComputeStatusInput): { reason: string; message: string } | undefined {
  if (input.specError !== undefined) return input.specError;
  if (input.desired !== undefined) return undefined;
  try {
    desiredEviction(input.cc);
    return undefined;
  } catch (err) {
    if (err instanceof InvalidSpecError) return { reason: err.reason, message: err.message };
    throw err;
  }
}

/** What the phase rules look at, gathered once from the input. */
export interface PhaseFacts {
  cc: CacheCluster;
  specError: { reason: string; message: string } | undefined;
  /** The auth Secret or its key is missing. */
  authError: { reason: string; message: string } | undefined;
  topology: string;
  reconcileError: string | undefined;
  sts: ObservedStatefulSet | undefined;
  /** The StatefulSet has not caught up with its spec, or its pods are not all on the current revision. */
  rollingOut: boolean;
  updated: number;
  /** Pods the StatefulSet(s) have now (status.replicas). */
  pods: number;
  ready: number;
  desiredPods: number;
  /** The previous phase was Ready or Degraded. */
  wasRunning: boolean;
  /**
   * Topology cluster: the status before had every slot assigned and cluster_state ok (a formed cluster, even
   * while a scale keeps the phase Provisioning).
   */
  clusterFormedBefore: boolean;
  /** No eviction settings were ever verified: a new cluster. */
  neverConfigured: boolean;
  primaries: string[];
  config: ConfigState;
  /** The primary on record (`input.primary`), if any. */
  recordedPrimary: string | undefined;
  /** Topology replication: the primary is lost (waiting for afterSeconds, or no replica can be promoted). */
  primaryLost: { reason: string; message: string } | undefined;
  /** Topology cluster: the cluster step's findings. */
  cluster: ClusterFacts | undefined;
}

export interface PhaseVerdict {
  phase: Phase;
  reason: string;
  message: string;
}

/** One phase rule: when `when` holds (and no earlier rule did), the phase is its `verdict`. */
export interface PhaseRule {
  name: string;
  when: (f: PhaseFacts) => boolean;
  verdict: (f: PhaseFacts) => PhaseVerdict;
}

/** The phase rules, in order: the first that matches decides the phase, the Ready condition's reason and message. */
export const PHASE_RULES: readonly PhaseRule[] = [
  {
    name: 'spec error',
    when: (f) => f.specError !== undefined,
    verdict: (f) => ({ phase: 'Failed', reason: f.specError!.reason, message: f.specError!.message }),
  },
  {
    name: 'auth secret missing',
    when: (f) => f.authError !== undefined,
    verdict: (f) => ({
      phase: f.wasRunning ? 'Degraded' : 'Failed',
      reason: f.authError!.reason,
      message: f.authError!.message,
    }),
  },
  {
    name: 'reconcile error',
    when: (f) => f.reconcileError !== undefined,
    verdict: (f) => ({
      phase: f.wasRunning ? 'Degraded' : 'Failed',
      reason: 'ReconcileError',
      message: f.reconcileError!,
    }),
  },
  {
    name: 'no StatefulSet',
    when: (f) => f.sts === undefined,
    verdict: (f) => ({
      phase: 'Pending',
      reason: 'StatefulSetNotCreated',
      message: `StatefulSet ${statefulSetName(f.cc)} does not exist yet`,
    }),
  },
  {
    name: 'primary lost',
    when: (f) => f.primaryLost !== undefined,
    verdict: (f) => ({ phase: 'Degraded', reason: f.primaryLost!.reason, message: f.primaryLost!.message }),
  },
  {
    name: 'shard primary lost',
    when: (f) => f.cluster?.shards.some((s) => s.state === 'primaryLost') ?? false,
    verdict: (f) => ({
      phase: 'Degraded',
      reason: 'ShardPrimaryLost',
      message:
        `shard(s) ${f
          .cluster!.shards.filter((s) => s.state === 'primaryLost')
          .map((s) => s.index)
          .join(', ')} lost their primary: ` +
        'Redis Cluster promotes a replica after cluster-node-timeout; without one the operator reassigns the slots',
    }),
  },
  {
    name: 'rolling out',
    when: (f) => f.rollingOut,
    verdict: (f) => ({
      phase: 'Provisioning',
      reason: 'RollingOut',
      message:
        `${statefulSetsOf(f)}: ` +
        (f.pods !== f.desiredPods
          ? `scaling from ${f.pods} to ${f.desiredPods} pods`
          : `${f.updated} of ${f.desiredPods} pods updated`) +
        `, ${f.ready} ready`,
    }),
  },
  {
    name: 'pods not ready',
    when: (f) => f.ready < f.desiredPods,
    verdict: (f) => ({
      phase: f.wasRunning ? 'Degraded' : 'Provisioning',
      reason: f.neverConfigured ? 'WaitingForPods' : 'PodsNotReady',
      message: `${f.ready} of ${f.desiredPods} Redis pods ready`,
    }),
  },
  {
    name: 'cluster not formed',
    when: (f) => f.cluster !== undefined && (f.cluster.slotsAssigned < 16384 || f.cluster.state !== 'ok'),
    verdict: (f) => ({
      phase: f.wasRunning || f.clusterFormedBefore ? 'Degraded' : 'Provisioning',
      reason: f.wasRunning || f.clusterFormedBefore ? 'ClusterNotOk' : 'ClusterBootstrapping',
      message: clusterNotFormedMessage(f.cluster!),
    }),
  },
  {
    name: 'resharding',
    when: (f) => f.cluster?.resharding !== undefined,
    verdict: (f) => {
      const r = f.cluster!.resharding!;
      const waiting = f.cluster!.waiting;
      return {
        phase: 'Provisioning',
        reason: 'Resharding',
        message:
          `moving slots to reach ${r.toShards} shards: ${r.slotsToMove - r.slotsRemaining} of ${r.slotsToMove} moved, ${r.keysMoved} keys` +
          (waiting !== undefined ? `; ${waiting}` : ''),
      };
    },
  },
  {
    // A running cluster (every slot served, cluster_state ok) being changed: new nodes or replicas that have
    // not joined yet, a move that waits for gossip. Serving as before, so not Degraded.
    name: 'cluster changing',
    when: (f) => f.cluster?.waiting !== undefined,
    verdict: (f) => ({ phase: 'Provisioning', reason: 'ClusterChanging', message: f.cluster!.waiting! }),
  },
  {
    // A shard whose replica is missing, follows another node or has not synced: Redis Cluster could not fail
    // it over. Degraded once the cluster ran (a replica that fell away); while it comes up, Provisioning.
    name: 'shard degraded',
    when: (f) => f.cluster?.shards.some((s) => s.state === 'degraded') ?? false,
    verdict: (f) => ({
      phase: f.wasRunning ? 'Degraded' : 'Provisioning',
      reason: 'ShardDegraded',
      message: f
        .cluster!.shards.filter((s) => s.state === 'degraded')
        .map((s) => {
          const want = resolveSpec(f.cc).pods - 1;
          return s.unsyncedReplicas !== undefined && s.unsyncedReplicas.length > 0
            ? `shard ${s.index}: ${s.unsyncedReplicas.join(', ')} not synced with ${s.primary ?? 'its primary'}`
            : `shard ${s.index}: ${s.replicas.length} of ${want} replicas following ${s.primary ?? 'its primary'}`;
        })
        .join('; '),
    }),
  },
  {
    name: 'several primaries',
    when: (f) => f.topology === 'replication' && f.primaries.length > 1,
    verdict: (f) => ({
      phase: 'Degraded',
      reason: 'MultiplePrimaries',
      message: `pods ${f.primaries.join(', ')} all report role master (split brain): replicas must follow ${f.recordedPrimary ?? podName(f.cc, 0)}`,
    }),
  },
  {
    name: 'config apply failed',
    when: (f) => f.config.state === 'failed',
    verdict: (f) => ({ phase: 'Degraded', reason: 'ConfigApplyFailed', message: f.config.message }),
  },
  {
    name: 'config not verified',
    when: (f) => f.config.state === 'unknown',
    verdict: (f) => ({ phase: 'Provisioning', reason: 'ConfigNotVerified', message: f.config.message }),
  },
  {
    name: 'ready',
    when: () => true,
    verdict: (f) => ({
      phase: 'Ready',
      reason: 'ClusterReady',
      message: `${f.ready} of ${f.desiredPods} Redis pods ready; ${f.config.message}`,
    }),
  },
];

/** The StatefulSet(s) a rollout message names: topology cluster has one per shard. */
function statefulSetsOf(f: PhaseFacts): string {
  if (f.topology !== 'cluster') return `StatefulSet ${statefulSetName(f.cc)}`;
  const shards = resolveSpec(f.cc).shards;
  const last = shardStatefulSetName(f.cc, shards - 1);
  return shards === 1 ? `StatefulSet ${last}` : `StatefulSets ${shardStatefulSetName(f.cc, 0)} … ${last}`;
}

/**
 * Why a cluster is not formed: what is wrong only (a message saying `cluster_state ok` under reason
 * ClusterNotOk read as a contradiction), then what the operator waits for.
 */
function clusterNotFormedMessage(c: ClusterFacts): string {
  const parts: string[] = [];
  if (c.state !== 'ok') parts.push(`cluster_state ${c.state ?? 'unknown'}`);
  if (c.slotsAssigned < 16384) parts.push(`${c.slotsAssigned} of 16384 slots assigned`);
  if (c.waiting !== undefined) parts.push(c.waiting);
  return parts.join('; ');
}

/** The verdict of the first rule of `PHASE_RULES` that matches (the last one always does). */
export function decidePhase(facts: PhaseFacts): PhaseVerdict {
  return PHASE_RULES.find((r) => r.when(facts))!.verdict(facts);
}

export function computeStatus(input: ComputeStatusInput): CacheClusterStatus {
  const { cc, statefulSet: sts, configResult, unsupported, now } = input;
  const specError = findSpecError(input);
  const prev = cc.status ?? {};
  const generation = cc.metadata.generation;
  const spec = resolveSpec(cc);
  const desiredPods = spec.pods * spec.shards;
  const replicas = sts?.status?.replicas ?? 0;
  const ready = sts?.status?.readyReplicas ?? 0;

  // ---- Eviction settings -------------------------------------------------------------------------
  let appliedConfig: AppliedConfig | undefined = prev.appliedConfig;
  let config: ConfigState;
  if (configResult !== undefined) {
    const pods = podsAppliedConfig(configResult);
    const failed = configResult.pods.filter((p) => !p.applied);
    // Pods that could not be reached at all, while the settings are the ones verified before on every pod:
    // nothing is pending — such a pod runs them live, or from its redis.conf when it starts again. A crashed
    // pod of a running cluster is PodsNotReady, not a settings failure (nor "to be applied when pods run").
    const unchanged =
      prev.appliedConfig !== undefined &&
      prev.appliedConfig.maxmemory === configResult.desired.maxmemory &&
      prev.appliedConfig.maxmemoryPolicy === configResult.desired.maxmemoryPolicy;
    const down = failed.length > 0 && unchanged && failed.every((p) => p.observed === undefined);
    const allApplied = configResult.pods.length > 0 && failed.length === 0;
    if (allApplied || (down && failed.length < configResult.pods.length)) {
      appliedConfig = {
        maxmemory: configResult.desired.maxmemory,
        maxmemoryPolicy: configResult.desired.maxmemoryPolicy,
        pods,
      };
      const up = configResult.pods.length - failed.length;
      config = {
        state: 'applied',
        message: allApplied
          ? `${describeEviction(configResult.desired)} on ${pods.length}/${pods.length} pods`
          : `${describeEviction(configResult.desired)} on ${up}/${up} pods that answered; ` +
            `${failed.map((p) => p.pod).join(', ')} not reachable (it runs them from its redis.conf when it starts)`,
      };
    } else {
      if (prev.appliedConfig !== undefined) {
        appliedConfig = {
          maxmemory: prev.appliedConfig.maxmemory,
          maxmemoryPolicy: prev.appliedConfig.maxmemoryPolicy,
          pods,
        };
      }
      // Pods that do not run yet cannot be configured: while every failure can be one of the pods the
      // StatefulSet reports not ready, that is waiting (a new cluster, a restarting pod), not a failure.
      const waiting = sts !== undefined && failed.length > 0 && failed.length <= desiredPods - ready;
      config =
        configResult.pods.length === 0
          ? { state: 'unknown', reason: 'NoPodsReachable', message: 'no Redis pod could be configured yet' }
          : waiting
            ? {
                state: 'unknown',
                reason: 'WaitingForPods',
                message: `${describeEviction(configResult.desired)} to be applied when the Redis pods run (${ready} of ${desiredPods} ready)`,
              }
            : {
                state: 'failed',
                message:
                  `${describeEviction(configResult.desired)} not applied on ${failed.length}/${configResult.pods.length} pods: ` +
                  failed.map((p) => `${p.pod}: ${p.message ?? 'not applied'}`).join('; '),
              };
    }
  } else if (specError !== undefined) {
    config = { state: 'unknown', reason: 'InvalidSpec', message: specError.message };
  } else {
    // Nothing applied in this reconcile: what was verified before still counts if it is what the spec asks.
    const desired = input.desired ?? desiredEviction(cc);
    const verified =
      prev.appliedConfig !== undefined &&
      prev.appliedConfig.maxmemory === desired.maxmemory &&
      prev.appliedConfig.maxmemoryPolicy === desired.maxmemoryPolicy &&
      (prev.appliedConfig.pods ?? []).every((p) => p.applied);
    const n = prev.appliedConfig?.pods?.length ?? 0;
    // The same message as when the settings were applied, so that a reconcile without CONFIG calls changes nothing.
    config = verified
      ? { state: 'applied', message: `${describeEviction(desired)} on ${n}/${n} pods` }
      : {
          state: 'unknown',
          reason: 'NotVerified',
          message: `${describeEviction(desired)} not verified on the pods yet`,
        };
  }

  // ---- Phase: the first rule that matches --------------------------------------------------------
  const stsStatus = sts?.status ?? {};
  const facts: PhaseFacts = {
    cc,
    specError,
    authError: input.authError,
    topology: spec.topology,
    reconcileError: input.reconcileError,
    sts,
    rollingOut:
      sts !== undefined &&
      ((stsStatus.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0) ||
        (sts.spec?.replicas ?? desiredPods) !== desiredPods ||
        replicas !== desiredPods ||
        (stsStatus.updatedReplicas ?? 0) < desiredPods ||
        // With OnDelete (topology replication: the operator restarts the pods) the StatefulSet controller never
        // moves currentRevision to updateRevision, even once every pod runs it: updatedReplicas tells (above).
        (sts.spec?.updateStrategy?.type !== 'OnDelete' &&
          stsStatus.currentRevision !== undefined &&
          stsStatus.updateRevision !== undefined &&
          stsStatus.currentRevision !== stsStatus.updateRevision)),
    updated: stsStatus.updatedReplicas ?? 0,
    pods: replicas,
    ready,
    desiredPods,
    wasRunning: prev.phase === 'Ready' || prev.phase === 'Degraded',
    clusterFormedBefore: prev.slotsAssigned === 16384 && prev.clusterState === 'ok',
    // Never configured: a new cluster (its pods are still being created), not one that lost pods.
    neverConfigured: prev.appliedConfig === undefined,
    primaries: input.primaries ?? [],
    config,
    recordedPrimary: input.primary,
    primaryLost:
      input.failover !== undefined &&
      input.failover.availability.status === 'False' &&
      input.failover.availability.reason !== 'WaitingForPrimary'
        ? { reason: input.failover.availability.reason, message: input.failover.availability.message }
        : undefined,
    cluster: input.cluster,
  };
  const { phase, reason, message } = decidePhase(facts);

  // ---- Conditions ------------------------------------------------------------------------------------
  const withGen = (c: Omit<ConditionInput, 'observedGeneration'>): ConditionInput =>
    generation !== undefined ? { ...c, observedGeneration: generation } : c;
  const conds: ConditionInput[] = [
    withGen({ type: CONDITION_READY, status: phase === 'Ready' ? 'True' : 'False', reason, message }),
    withGen(
      phase === 'Pending' || phase === 'Provisioning'
        ? { type: CONDITION_PROGRESSING, status: 'True', reason, message }
        : {
            type: CONDITION_PROGRESSING,
            status: 'False',
            reason: phase === 'Failed' ? reason : 'Stable',
            message: phase === 'Failed' ? message : 'no change in progress',
          },
    ),
    withGen(
      phase === 'Degraded' || phase === 'Failed'
        ? { type: CONDITION_DEGRADED, status: 'True', reason, message }
        : { type: CONDITION_DEGRADED, status: 'False', reason: 'AsExpected', message: 'nothing is degraded' },
    ),
    withGen(
      config.state === 'applied'
        ? { type: CONDITION_CONFIG_APPLIED, status: 'True', reason: 'Applied', message: config.message }
        : config.state === 'failed'
          ? { type: CONDITION_CONFIG_APPLIED, status: 'False', reason: 'ApplyFailed', message: config.message }
          : { type: CONDITION_CONFIG_APPLIED, status: 'Unknown', reason: config.reason, message: config.message },
    ),
    withGen(
      unsupported.length > 0
        ? {
            type: CONDITION_UNSUPPORTED,
            status: 'True',
            reason: 'FieldsNotSupported',
            message: `accepted but not supported by this operator version, so without effect: ${unsupported.join(', ')}`,
          }
        : {
            type: CONDITION_UNSUPPORTED,
            status: 'False',
            reason: 'AllFieldsSupported',
            message: 'every field set is supported',
          },
    ),
  ];
  if (input.failover !== undefined)
    conds.push(withGen({ type: CONDITION_PRIMARY_AVAILABLE, ...input.failover.availability }));
  if (input.failover?.roll !== undefined)
    conds.push(withGen({ type: CONDITION_ROLLING_UPDATE, ...input.failover.roll }));
  let conditions: Condition[] = prev.conditions ?? [];
  for (const c of conds) conditions = setCondition(conditions, c, now);

  // ---- Assemble ------------------------------------------------------------------------------------
  const status: CacheClusterStatus = { phase };
  if (generation !== undefined) status.observedGeneration = generation;
  status.replicas = replicas;
  status.readyReplicas = ready;
  // The scale subresource's unit is spec.replicas: read replicas, the pods besides the primary.
  status.currentReplicas = Math.max(0, Math.floor(replicas / spec.shards) - 1);
  status.selector = selectorString(cc);
  status.ready = `${ready}/${desiredPods}`;
  const primary = input.primary ?? (sts !== undefined && spec.topology !== 'cluster' ? podName(cc, 0) : undefined);
  if (primary !== undefined) status.primary = primary;
  if (input.failover?.inProgress !== undefined) status.failover = input.failover.inProgress;
  const lastFailover = input.failover !== undefined ? input.failover.lastFailover : prev.lastFailover;
  if (lastFailover !== undefined) status.lastFailover = lastFailover;
  status.endpoints = { service: serviceEndpoint(cc) };
  if (spec.topology === 'replication') status.endpoints.replicas = `${replicasServiceHost(cc)}:${REDIS_PORT}`;
  if (appliedConfig !== undefined) {
    status.appliedConfig = appliedConfig;
    status.maxMemory = formatBytes(appliedConfig.maxmemory);
  }
  const observedFlush = input.flushCronJob?.status?.lastSuccessfulTime;
  const lastFlushTime =
    observedFlush instanceof Date ? formatTime(observedFlush) : (observedFlush ?? prev.lastFlushTime);
  if (lastFlushTime !== undefined) status.lastFlushTime = lastFlushTime;
  if (input.cluster !== undefined) {
    if (input.cluster.state !== undefined) status.clusterState = input.cluster.state;
    status.slotsAssigned = input.cluster.slotsAssigned;
    // A shard whose primary is lost shows the pod that was its primary (status before), until Redis Cluster
    // promotes a replica: the ShardFailedOver event then names both.
    status.shards = input.cluster.shards.map((sh) => {
      const was = prev.shards?.find((p) => p.index === sh.index)?.primary;
      return sh.state === 'primaryLost' && sh.primary === undefined && was !== undefined ? { ...sh, primary: was } : sh;
    });
    if (input.cluster.resharding !== undefined) status.resharding = input.cluster.resharding;
  }
  status.conditions = conditions;
  return status;
}
