/**
 * Reconcile of one CacheCluster, level-triggered, as named steps over the injected `deps` (all I/O goes
 * through them): `observe` (the informer cache), `desiredEvictionStep`, `applyLiveConfig` (CONFIG GET,
 * CONFIG SET, CONFIG GET on every Redis pod), `desiredChildrenStep`, `applyChildren` (skipping those
 * already as desired, so an unchanged CacheCluster causes no write), `statusStep` (status patched only if
 * it changed, Events on transitions). The pure decisions live beside the builders (`desired/`) and status
 * (`status/`).
 */
import type { Logger } from 'pino';
import {
  API_VERSION,
  BRIDGE_PORT,
  CONDITION_PEERS_REACHABLE,
  CONDITION_READY,
  KIND,
  PLURAL,
  REDIS_PORT,
} from '../api/v1alpha1/constants.js';
import { ReshardingMemory } from './resharding-memory.js';
import { mergePatch } from '../status/merge-patch.js';
import { DEFAULTS, type CacheCluster, type CacheClusterStatus, type ReshardingStatus } from '../api/v1alpha1/types.js';
import { done, requeueAfter, splitKey, type ReconcileResult } from '../controller/controller.js';
import { passwordChecksum } from '../desired/auth-checksum.js';
import { bridgeHost, bridgeName, resolvePeers, type PeerProblem, type ResolvedPeer } from '../desired/bridge.js';
import { desiredChildren, type DesiredChildren } from '../desired/children.js';
import { desiredEviction, type EvictionSettings } from '../desired/eviction.js';
import { desiredFence } from '../desired/fence.js';
import { InvalidSpecError } from '../desired/invalid-spec-error.js';
import { configMapName, flushCronJobName, podHost, podName, statefulSetName } from '../desired/names.js';
import { desiredPersistence } from '../desired/persistence.js';
import { evictionToRender, renderedEviction, sameEviction } from '../desired/rendered-eviction.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import { KubeApiError, type KubeApi, type KubeObject } from '../k8s/kube-client.js';
import type { LiveSettings, PodConfigResult, PodEndpoint } from '../redis/live-config.js';
import {
  computeStatus,
  statusEqual,
  unsupportedFields,
  type ConfigResult,
  type ObservedStatefulSet,
} from '../status/compute-status.js';
import { authSecretError, type AuthSecretProblem } from '../status/auth-secret-error.js';
import { findCondition, setCondition } from '../status/conditions.js';
import { peersCondition, type BridgeReport } from '../status/peers-condition.js';
import { transitionEvents } from '../status/transition-events.js';
import { clusterStep, existingShardSets, type ClusterDeps, type ClusterOutcome } from './cluster-step.js';
import { failoverStep, probeTimeoutMs, type FailoverOutcome, type ReplicationDeps } from './failover-step.js';
import type { ClusterPlan } from './cluster-plan.js';
import { isSubset } from './subset.js';

export interface ReconcileDeps {
  kube: KubeApi;
  /** The informer cache: current objects by kind, without an API call. */
  cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
  /**
   * CONFIG GET / SET / GET of the live settings: eviction, the persistence mode's appendonly / save and,
   * when given, the write fence (desired/fence.ts).
   * `timeBoxes`: per pod, a time box (ms) for its Redis calls shorter than the operator's Redis timeout (a pod
   * that did not answer the failover step's probe just now). Results come back in the order of `endpoints`.
   */
  applyEviction: (
    endpoints: PodEndpoint[],
    desired: LiveSettings,
    password?: string,
    timeBoxes?: ReadonlyMap<string, number>,
  ) => Promise<PodConfigResult[]>;
  /** Where a pod's Redis is reached: its headless DNS name, unless overridden (tests, local demo). */
  podAddress: (namespace: string, pod: string, dnsName: string, port: number) => { host: string; port: number };
  now: () => Date;
  log: Logger;
  exporterImage?: string;
  onConfigApply?: (result: 'applied' | 'unchanged' | 'failed' | 'waiting') => void;
  /** Called with the conditions computed in every reconcile (for the condition gauge). */
  onConditions?: (namespace: string, name: string, conditions: ReadonlyArray<{ type: string; status: string }>) => void;
  /** Called when the CacheCluster is gone. */
  onGone?: (namespace: string, name: string) => void;
  /** Role labels and failover of topology replication (without it: no labels, no failover). */
  replication?: ReplicationDeps;
  /** Forming and resharding a Redis Cluster, topology cluster (without it: the pods only). */
  cluster?: ClusterDeps;
  /** Image of the cross-cluster bridge (the sidecar image). Without it no bridge is built. */
  bridgeImage?: string;
  /** Reads a bridge's /v1/peers (undefined: no answer). Without it PeersReachable stays Unknown. */
  bridgeReport?: (host: string, port: number) => Promise<BridgeReport | undefined>;
  /**
   * Other new CacheClusters wait for their first pass (the controller's front lane). While they do, a first
   * pass applies only what the pods need to start (ConfigMap, StatefulSet), writes the status, and leaves the
   * rest to a follow-up pass (`firstPassOnly`). Without it every pass is a full one.
   */
  firstPassesWaiting?: () => boolean;
}

/** How soon to look at the bridge's report again while PeersReachable is not True, and while it is. */
export const PEERS_RETRY_MS = 10_000;
export const PEERS_RECHECK_MS = 30_000;

/** The bridge the reconcile planned: its peers and the listed peers it could not use. */
interface PlannedBridge {
  peers: ResolvedPeer[];
  problems: PeerProblem[];
}

/** How long to wait before re-checking pods whose settings could not be applied. */
export const CONFIG_RETRY_MS = 5_000;
/** How long to wait before re-checking a cluster that is still coming up. */
export const PROGRESS_RETRY_MS = 15_000;
/** How long to wait before reading a missing auth Secret (or key) again: Secrets are not watched. */
export const AUTH_RETRY_MS = 15_000;

/** What the reconcile observed of one CacheCluster, and what it works with. */
interface Observed {
  /** `namespace/name`. */
  key: string;
  cc: CacheCluster;
  ns: string;
  log: Logger;
  /** From `unsupportedFields(cc)`. */
  unsupported: string[];
  /** Absent when the StatefulSet does not exist (yet). Topology cluster: the shards' StatefulSets as one. */
  sts: (KubeObject & ObservedStatefulSet) | undefined;
  /** Topology cluster: this reconcile patched status.resharding already (the informer cache may not show it). */
  wroteResharding?: boolean;
}

/** What applying the eviction settings live found. */
interface LiveConfig {
  /** Absent when no pod was configured (no StatefulSet yet, or topology cluster). */
  configResult: ConfigResult | undefined;
  results: PodConfigResult[];
  /** At least one pod answered and every one runs the desired settings. */
  allApplied: boolean;
}

/**
 * Reconciles one CacheCluster by key: observe → desired eviction → (read the auth password) → apply live
 * config → desired children → apply children → status. An invalid spec, a missing auth Secret (or key) and a
 * refused child end in a status; anything else is thrown for the controller to retry.
 */
export async function reconcileCacheCluster(deps: ReconcileDeps, key: string): Promise<ReconcileResult> {
  const o = observe(deps, key);
  if (!o) return done; // children go with it (owner references)
  // The informer cache may not show the status the last reconcile wrote yet (a slot-move batch requeues in
  // 50 ms): status.resharding is taken from what this operator wrote when that is fresher.
  const cachedResharding = o.cc.status?.resharding;
  const freshResharding = reshardingMemory(deps).freshest(key, cachedResharding);
  if (freshResharding !== cachedResharding) {
    const { resharding: _stale, ...rest } = o.cc.status ?? {};
    o.cc = { ...o.cc, status: { ...rest, ...(freshResharding ? { resharding: freshResharding } : {}) } };
  }

  const desired = await desiredEvictionStep(deps, o);
  if (!desired) return done;

  const spec = resolveSpec(o.cc);
  const auth = await readPassword(deps, o.cc);
  if ('problem' in auth) return reportAuthSecretProblem(deps, o, desired, auth.problem);
  const password = auth.password;
  const previousPassword = rotatedFrom(deps, key, password);
  // First, before anything that may wait on an unreachable pod: the primary and its replicas.
  const runFailover = () =>
    spec.topology === 'replication' && o.sts && deps.replication
      ? failoverStep({ ...deps, replication: deps.replication }, o.cc, key, o.log, password)
      : undefined;
  let failover = await runFailover();
  // Topology cluster: form the cluster, move slots, remove drained shards (before live config: its endpoints).
  const cluster =
    spec.topology === 'cluster' && o.sts && deps.cluster
      ? await clusterStep({ ...deps, cluster: deps.cluster }, o.cc, key, o.log, password, (resharding, plan) =>
          writeReshardingProgress(deps, o, resharding, plan),
        )
      : undefined;
  // A pod that did not answer the failover step's probe gets the probe's time box here too: a frozen primary
  // does not hold the next probe back by the Redis timeout.
  const timeBoxes = new Map(
    (failover?.unanswered ?? []).map((pod) => [pod, probeTimeoutMs(spec.failoverAfterSeconds)] as const),
  );
  const live = await applyLiveConfig(deps, o, desired, password, previousPassword, cluster?.endpoints, timeBoxes);
  // A rotation just carried to the pods: the failover step, which found the primary refusing the password and
  // changed nothing, runs again (its outcome is the status'; the roll starts with it).
  if (failover?.authFailed && live.results.some((r) => r.acceptedCurrentPassword)) failover = await runFailover();
  if (previousPassword !== undefined && live.results.length > 0 && live.results.every(answeredCurrent))
    forgetPreviousPassword(deps, key);

  const planned = await desiredChildrenStep(deps, o, desired, live, password);
  if (!planned) return done;

  if (!o.sts && spec.topology !== 'cluster' && deps.firstPassesWaiting?.()) {
    // Scheduling under a backlog of new CacheClusters: the pods need their ConfigMap and StatefulSet, the user
    // a status (from the StatefulSet just applied); the Services and the rest follow in a pass queued behind
    // every other first pass.
    await applyChildren(deps, o, firstPassOnly(planned.children), desired, live);
    await statusStep(deps, o, desired, live, undefined, undefined, planned.bridge);
    return requeueAfter(0);
  }

  const wrote = await applyChildren(deps, o, planned.children, desired, live);
  if (o.sts && !sameEviction(planned.rendered, planned.appliedEviction) && live.allApplied) {
    o.log.info(
      { maxmemory: desired.maxmemory, maxmemoryPolicy: desired.maxmemoryPolicy },
      'Persisted verified eviction settings into redis.conf',
    );
  }

  const status = await statusStep(deps, o, desired, live, failover, cluster, planned.bridge);
  let next = nextCheck(live, wrote, status);
  if (planned.bridge) {
    const peersOk = findCondition(status.conditions, CONDITION_PEERS_REACHABLE)?.status === 'True';
    const ms = peersOk ? PEERS_RECHECK_MS : PEERS_RETRY_MS;
    if (next.kind !== 'requeueAfter' || next.ms > ms) next = requeueAfter(ms);
  }
  const retry = failover?.retryInMs ?? cluster?.retryInMs;
  if (retry === undefined) return next;
  return next.kind === 'requeueAfter' && next.ms < retry ? next : requeueAfter(retry);
}

/**
 * What a first pass under a backlog applies: the ConfigMap (first) and the StatefulSet; deletes nothing (the
 * status is written too).
 */
export function firstPassOnly(children: DesiredChildren): DesiredChildren {
  return {
    apply: children.apply.filter((c) => c.kind === 'ConfigMap' || c.kind === 'StatefulSet'),
    deleteIfPresent: [],
  };
}

/**
 * Whether the CacheCluster of `key` still needs its first pass: it exists, is not being deleted, is not of
 * topology cluster (its shards come up in the cluster step's order) and has no StatefulSet in the cache.
 */
export function needsFirstPass(cached: ReconcileDeps['cached'], key: string): boolean {
  const { namespace, name } = splitKey(key);
  const cc = cached(KIND, namespace, name) as CacheCluster | undefined;
  if (!cc || (cc.metadata as { deletionTimestamp?: unknown }).deletionTimestamp) return false;
  if ((cc.spec?.topology ?? DEFAULTS.topology) === 'cluster') return false;
  return cached('StatefulSet', namespace, statefulSetName(cc)) === undefined;
}

/** Records a slot move about to start (status.resharding and the shards as observed), before moving slots. */
async function writeReshardingProgress(
  deps: ReconcileDeps,
  o: Observed,
  resharding: ReshardingStatus,
  plan: ClusterPlan,
): Promise<void> {
  await deps.kube.patchStatus(
    {
      apiVersion: API_VERSION,
      kind: KIND,
      namespace: o.cc.metadata.namespace,
      name: o.cc.metadata.name,
      plural: PLURAL,
    },
    { resharding, shards: plan.shards, slotsAssigned: plan.slotsAssigned },
  );
  o.wroteResharding = true;
  reshardingMemory(deps).wrote(o.key, o.cc.status?.resharding, resharding);
}

/** Step 1, observe: the CacheCluster from the informer cache (undefined when gone), its StatefulSet. */
function observe(deps: ReconcileDeps, key: string): Observed | undefined {
  const { namespace, name } = splitKey(key);
  const cc = deps.cached(KIND, namespace, name) as CacheCluster | undefined;
  if (!cc || (cc.metadata as { deletionTimestamp?: unknown }).deletionTimestamp) {
    deps.onGone?.(namespace, name);
    deps.replication?.memory.delete(key);
    passwordsOf(deps).delete(key);
    reshardingMemory(deps).forget(key);
    return undefined;
  }
  const ns = cc.metadata.namespace;
  return {
    key,
    cc,
    ns,
    log: deps.log.child({ cacheCluster: key, generation: cc.metadata.generation }),
    unsupported: unsupportedFields(cc),
    sts:
      resolveSpec(cc).topology === 'cluster'
        ? shardSetsTogether(deps, cc)
        : deps.cached('StatefulSet', ns, statefulSetName(cc)),
  };
}

/**
 * Topology cluster: the StatefulSets of shards `0 … shards-1` seen as one (pods summed; rolling out when any
 * is), for status; undefined until the first exists.
 */
function shardSetsTogether(deps: ReconcileDeps, cc: CacheCluster): (KubeObject & ObservedStatefulSet) | undefined {
  const shards = resolveSpec(cc).shards;
  const sets = existingShardSets(deps.cached, cc)
    .filter((s) => s.shard < shards)
    .map((s) => s.sts as KubeObject & ObservedStatefulSet);
  if (sets.length === 0) return undefined;
  const sum = (f: (s: ObservedStatefulSet) => number | undefined) => sets.reduce((n, s) => n + (f(s) ?? 0), 0);
  const caughtUp = sets.every((s) => (s.status?.observedGeneration ?? 0) >= (s.metadata?.generation ?? 0));
  const sameRevision = sets.every(
    (s) =>
      s.status?.currentRevision === undefined ||
      s.status.updateRevision === undefined ||
      s.status.currentRevision === s.status.updateRevision,
  );
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: statefulSetName(cc), namespace: cc.metadata.namespace, generation: 1 },
    spec: { replicas: sets.length < shards ? 0 : sum((s) => s.spec?.replicas) },
    status: {
      observedGeneration: caughtUp ? 1 : 0,
      replicas: sum((s) => s.status?.replicas),
      readyReplicas: sum((s) => s.status?.readyReplicas),
      updatedReplicas: sum((s) => s.status?.updatedReplicas),
      ...(sameRevision ? {} : { currentRevision: 'old', updateRevision: 'new' }),
    },
  };
}

/**
 * Step 2, desired eviction settings (and a check of the persistence mode's); an invalid spec is a status (then
 * undefined), not an error to retry.
 */
async function desiredEvictionStep(deps: ReconcileDeps, o: Observed): Promise<EvictionSettings | undefined> {
  try {
    desiredPersistence(o.cc);
    const eviction = desiredEviction(o.cc);
    desiredFence(o.cc); // an invalid durability is a spec error too, before anything is applied
    return eviction;
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    await writeSpecError(deps, o, err);
    return undefined;
  }
}

async function writeSpecError(deps: ReconcileDeps, o: Observed, err: InvalidSpecError): Promise<void> {
  await writeStatus(
    deps,
    o.cc,
    computeStatus({
      cc: o.cc,
      unsupported: o.unsupported,
      now: deps.now(),
      specError: { reason: err.reason, message: err.message },
    }),
    o.log,
  );
}

/**
 * Password rotation. The Redis pods take the password from the auth Secret when their container starts
 * (`REDIS_PASSWORD` from a secretKeyRef: requirepass and masterauth), so after the Secret changes, the pods that
 * started before keep the old password until the roll (the restart hash holds a digest of the password)
 * restarts them, and the Secret no longer holds it. The operator remembers, per CacheCluster, the password it
 * read last and, once the Secret holds another, the one before (`previous`): a pod refusing the current
 * password is authenticated with the previous one and made to accept the current one as well (live-config.ts,
 * `acceptCurrentPassword`), after which every step uses the current password on every pod, and pods on either
 * revision replicate from each other during the roll. `previous` is forgotten once every pod answered the
 * current password. Kept in this process's memory only: never in status, annotations, events, logs or
 * metrics, and no Secret is written (the operator may only read Secrets). Limit: an operator (or new leader)
 * that starts after the rotation never saw the old password; it then reports AuthenticationFailed (no
 * failover, the pods keep running) until the pods run the current password (restart them) or the Secret holds
 * the old one again.
 */
interface RememberedPasswords {
  current: string | undefined;
  previous?: string | undefined;
}

/** Per ReconcileDeps (one per operator process): status.resharding as written (resharding-memory.ts). */
const reshardingMemories = new WeakMap<ReconcileDeps, ReshardingMemory>();

function reshardingMemory(deps: ReconcileDeps): ReshardingMemory {
  let m = reshardingMemories.get(deps);
  if (!m) {
    const clock = deps.cluster?.clock ?? (() => performance.now());
    reshardingMemories.set(deps, (m = new ReshardingMemory(clock)));
  }
  return m;
}

/** Per ReconcileDeps (one per operator process), per CacheCluster key. */
const rememberedPasswords = new WeakMap<ReconcileDeps, Map<string, RememberedPasswords>>();

function passwordsOf(deps: ReconcileDeps): Map<string, RememberedPasswords> {
  let m = rememberedPasswords.get(deps);
  if (!m) rememberedPasswords.set(deps, (m = new Map<string, RememberedPasswords>()));
  return m;
}

/** Records the Secret's password as read now; answers the one it replaced while a rotation may be in progress. */
function rotatedFrom(deps: ReconcileDeps, key: string, password: string | undefined): string | undefined {
  const m = passwordsOf(deps);
  const seen = m.get(key);
  if (!seen) {
    m.set(key, { current: password });
    return undefined;
  }
  if (seen.current !== password) {
    seen.previous = seen.current;
    seen.current = password;
  }
  return seen.previous !== password ? seen.previous : undefined;
}

function forgetPreviousPassword(deps: ReconcileDeps, key: string): void {
  const seen = passwordsOf(deps).get(key);
  if (seen) seen.previous = undefined;
}

/** The pod answered (ROLE), with the current password, without being switched to it in this pass. */
function answeredCurrent(r: PodConfigResult): boolean {
  return r.role !== undefined && !r.acceptedCurrentPassword;
}

/**
 * The password `spec.auth.secretRef` names (undefined without auth), or what is missing: the Secret, or its key.
 * Read with a GET each pass (Secrets are not watched). Any other failure (e.g. forbidden) is thrown, to be retried.
 */
async function readPassword(
  deps: ReconcileDeps,
  cc: CacheCluster,
): Promise<{ password: string | undefined } | { problem: AuthSecretProblem }> {
  const ref = resolveSpec(cc).authSecretRef;
  if (!ref) return { password: undefined };
  const namespace = cc.metadata.namespace;
  const secret = await deps.kube.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', namespace, name: ref.name });
  if (!secret) return { problem: { missing: 'secret', namespace, name: ref.name, key: ref.key } };
  const b64 = (secret.data as Record<string, string> | undefined)?.[ref.key];
  if (b64 === undefined) return { problem: { missing: 'key', namespace, name: ref.name, key: ref.key } };
  const password = Buffer.from(b64, 'base64').toString('utf8');
  if (password === '') return { problem: { missing: 'empty', namespace, name: ref.name, key: ref.key } };
  return { password };
}

/**
 * The auth Secret or its key is missing: the Redis pods take their password from it (a secretKeyRef), so a pod
 * created now could not start (CreateContainerConfigError), and a pod template without the password's digest
 * would roll running pods into that. So nothing is applied, no pod is asked (running pods keep the password they
 * started with; the remembered passwords of a rotation are kept), and the status says which Secret and key are
 * missing (Ready=False, Degraded=True, a Warning event when that changes). Looked at again after
 * `AUTH_RETRY_MS`, or sooner on a change of the CacheCluster or its children.
 */
async function reportAuthSecretProblem(
  deps: ReconcileDeps,
  o: Observed,
  desired: EvictionSettings,
  problem: AuthSecretProblem,
): Promise<ReconcileResult> {
  const authError = authSecretError(problem);
  if (findCondition(o.cc.status?.conditions, CONDITION_READY)?.reason !== authError.reason)
    o.log.warn(
      { secret: `${problem.namespace}/${problem.name}`, key: problem.key, reason: authError.reason },
      'Auth Secret or key missing: no child applied until it exists',
    );
  await writeStatus(
    deps,
    o.cc,
    computeStatus({
      cc: o.cc,
      ...(o.sts ? { statefulSet: o.sts } : {}),
      desired,
      unsupported: o.unsupported,
      now: deps.now(),
      authError,
    }),
    o.log,
  );
  return requeueAfter(AUTH_RETRY_MS);
}

/** Step 3, apply live config: CONFIG GET / SET / GET on every pod of an existing StatefulSet. */
async function applyLiveConfig(
  deps: ReconcileDeps,
  o: Observed,
  desired: EvictionSettings,
  password: string | undefined,
  previousPassword: string | undefined,
  clusterEndpoints: PodEndpoint[] | undefined,
  timeBoxes?: ReadonlyMap<string, number>,
): Promise<LiveConfig> {
  const { cc, ns, sts } = o;
  const spec = resolveSpec(cc);
  if (!sts || (spec.topology === 'cluster' && clusterEndpoints === undefined))
    return { configResult: undefined, results: [], allApplied: false };
  // Topology cluster: every node of every shard (the cluster step found their addresses).
  const endpoints: PodEndpoint[] = clusterEndpoints ? [...clusterEndpoints] : [];
  for (let i = 0; spec.topology !== 'cluster' && i < spec.pods; i++) {
    const pod = podName(cc, i);
    const addr = deps.podAddress(ns, pod, podHost(cc, i), REDIS_PORT);
    endpoints.push({ pod, host: addr.host, port: addr.port });
  }
  const persistence = desiredPersistence(cc);
  // The write fence goes with the eviction settings (replication only: a standalone primary has no replica).
  const fence = spec.topology === 'replication' ? desiredFence(cc) : undefined;
  const results = await deps.applyEviction(
    endpoints,
    {
      ...desired,
      persistence,
      ...(fence ? { fence } : {}),
      // A rotation: pods that started before it are reached with this one, and made to accept the current one.
      ...(previousPassword !== undefined ? { previousPassword } : {}),
    },
    password,
    ...(timeBoxes !== undefined && timeBoxes.size > 0 ? [timeBoxes] : []),
  );
  // As status decides (compute-status.ts): while every failure can be a pod the StatefulSet reports not ready,
  // those pods are not running yet (a new cluster, a restarting pod): counted as waiting, not failed.
  const failures = results.filter((r) => !r.applied).length;
  const notReady = spec.topology === 'cluster' ? 0 : spec.pods - (sts.status?.readyReplicas ?? 0);
  const unapplied = failures > 0 && failures <= notReady ? 'waiting' : 'failed';
  for (const r of results) deps.onConfigApply?.(r.applied ? (r.changed ? 'applied' : 'unchanged') : unapplied);
  const changed = results.filter((r) => r.changed).map((r) => r.pod);
  if (changed.length)
    o.log.info(
      {
        pods: changed,
        maxmemory: desired.maxmemory,
        maxmemoryPolicy: desired.maxmemoryPolicy,
        appendonly: persistence.appendonly,
        save: persistence.save,
        ...(fence ? { minReplicasToWrite: fence.minReplicasToWrite, minReplicasMaxLag: fence.minReplicasMaxLag } : {}),
      },
      'Applied live settings with CONFIG SET',
    );
  return {
    configResult: { desired, pods: results },
    results,
    allApplied: results.length > 0 && results.every((r) => r.applied),
  };
}

/**
 * Step 4, desired children. The rendered redis.conf carries eviction settings only once every pod runs
 * them (`evictionToRender`). An invalid spec is a status (then undefined).
 */
async function desiredChildrenStep(
  deps: ReconcileDeps,
  o: Observed,
  desired: EvictionSettings,
  live: LiveConfig,
  password: string | undefined,
): Promise<
  | {
      children: DesiredChildren;
      rendered: EvictionSettings | undefined;
      appliedEviction: EvictionSettings;
      bridge: PlannedBridge | undefined;
    }
  | undefined
> {
  const currentConfigMap = deps.cached('ConfigMap', o.ns, configMapName(o.cc));
  const rendered = renderedEviction(currentConfigMap);
  const appliedEviction = evictionToRender({
    desired,
    rendered,
    configMapExists: currentConfigMap !== undefined,
    statefulSetExists: o.sts !== undefined,
    allApplied: live.allApplied,
  });
  const bridge: PlannedBridge | undefined =
    (o.cc.spec.invalidation?.peers?.length ?? 0) > 0
      ? resolvePeers(o.cc, (ns, name) => deps.cached(KIND, ns, name) as CacheCluster | undefined)
      : undefined;
  try {
    const children = desiredChildren(o.cc, {
      appliedEviction,
      ...(deps.exporterImage ? { exporterImage: deps.exporterImage } : {}),
      ...(password !== undefined ? { authChecksum: passwordChecksum(password) } : {}),
      ...(deps.bridgeImage ? { bridge: { peers: bridge?.peers ?? [], image: deps.bridgeImage } } : {}),
    });
    return { children, rendered, appliedEviction, bridge };
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    await writeSpecError(deps, o, err);
    return undefined;
  }
}

/**
 * Step 5, apply children: server-side apply of those not already as desired (the ConfigMap first, the
 * pods mount it; then the others concurrently), and delete those the spec no longer asks for. Returns the
 * number of writes. A conflict is rethrown as is (the controller retries at once); any other refusal (an
 * admission denial, a quota, an invalid child) is shown in status as ReconcileError, then rethrown.
 */
async function applyChildren(
  deps: ReconcileDeps,
  o: Observed,
  children: DesiredChildren,
  desired: EvictionSettings,
  live: LiveConfig,
): Promise<number> {
  const { ns, log } = o;
  let wrote = 0;
  const controlledByUs = (obj: KubeObject) =>
    (obj.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === o.cc.metadata.uid);
  const applyChild = async (c: KubeObject) => {
    const current = deps.cached(c.kind!, ns, c.metadata!.name!);
    if (current && isSubset(c, current)) return;
    const owner = current?.metadata?.ownerReferences?.find((r) => r.controller === true);
    if (current && owner && owner.uid !== o.cc.metadata.uid) {
      // Another object's child of the same name (e.g. another CacheCluster's): never taken over.
      throw new Error(
        `${c.kind} ${ns}/${c.metadata!.name} already exists and belongs to ${owner.kind} ${owner.name}; ` +
          'rename one of them',
      );
    }
    const applied = await deps.kube.apply(c);
    // A StatefulSet this pass created: status reads it from the apply's answer (Provisioning at once, not
    // Pending until the informer shows it to a later pass).
    if (c.kind === 'StatefulSet' && !o.sts && resolveSpec(o.cc).topology !== 'cluster' && applied?.metadata)
      o.sts = applied;
    wrote++;
    log.info({ kind: c.kind, name: c.metadata!.name }, current ? 'Updated child' : 'Created child');
  };
  try {
    const [first, ...rest] = children.apply as KubeObject[];
    if (first) await applyChild(first);
    await Promise.all(rest.map(applyChild));
    for (const gone of children.deleteIfPresent) {
      const present = deps.cached(gone.kind, gone.namespace, gone.name);
      // Only ours: the name may be another CacheCluster's child (a CacheCluster named `<name>-bridge`).
      if (!present || !controlledByUs(present)) continue;
      await deps.kube.delete(gone);
      wrote++;
      log.info({ kind: gone.kind, name: gone.name }, 'Deleted child the spec no longer asks for');
    }
  } catch (err) {
    if (err instanceof KubeApiError && err.conflict) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await writeStatus(
      deps,
      o.cc,
      computeStatus({
        cc: o.cc,
        ...(o.sts ? { statefulSet: o.sts } : {}),
        ...(live.configResult ? { configResult: live.configResult } : {}),
        desired,
        unsupported: o.unsupported,
        now: deps.now(),
        reconcileError: message,
      }),
      log,
    ).catch((statusErr: unknown) =>
      log.warn(
        { err: statusErr instanceof Error ? statusErr.message : String(statusErr) },
        'Could not report the reconcile error in status',
      ),
    );
    throw err;
  }
  return wrote;
}

/** Step 6, status from what was observed; patched (with events) only when it changed. */
async function statusStep(
  deps: ReconcileDeps,
  o: Observed,
  desired: EvictionSettings,
  live: LiveConfig,
  failover: FailoverOutcome | undefined,
  cluster: ClusterOutcome | undefined,
  bridge: PlannedBridge | undefined,
): Promise<CacheClusterStatus> {
  const { cc, ns } = o;
  // Several pods reporting master at once is a split brain. The primary is the failover step's record (it
  // survives the primary's death), else the one pod Redis reports as master (ROLE).
  const primaries = live.results.filter((r) => r.role === 'master').map((r) => r.pod);
  const status = computeStatus({
    cc,
    ...(failover
      ? {
          primary: failover.primary,
          failover: {
            availability: failover.availability,
            inProgress: failover.failover,
            lastFailover: failover.lastFailover,
            ...(failover.roll !== undefined ? { roll: failover.roll } : {}),
          },
        }
      : primaries.length === 1 && !cluster
        ? { primary: primaries[0]! }
        : {}),
    primaries,
    ...(cluster
      ? {
          cluster: {
            state: cluster.plan.clusterState,
            slotsAssigned: cluster.plan.slotsAssigned,
            shards: cluster.plan.shards,
            resharding: cluster.resharding,
            waiting: cluster.plan.waiting,
          },
        }
      : {}),
    ...(o.sts ? { statefulSet: o.sts } : {}),
    ...(live.configResult ? { configResult: live.configResult } : {}),
    desired,
    unsupported: o.unsupported,
    now: deps.now(),
    flushCronJob: deps.cached('CronJob', ns, flushCronJobName(cc)) as
      { status?: { lastSuccessfulTime?: string } } | undefined,
  });
  if (bridge) {
    let report: BridgeReport | undefined;
    if (bridge.peers.length > 0 && deps.bridgeReport) {
      const addr = deps.podAddress(ns, bridgeName(cc), bridgeHost(cc), BRIDGE_PORT);
      report = await deps.bridgeReport(addr.host, addr.port);
    }
    status.conditions = setCondition(
      status.conditions,
      peersCondition({
        problems: bridge.problems,
        expected: bridge.peers.map((p) => p.name),
        report,
        bridge: bridgeName(cc),
        ...(cc.metadata.generation !== undefined ? { generation: cc.metadata.generation } : {}),
      }),
      deps.now(),
    );
  } else if (findCondition(status.conditions, CONDITION_PEERS_REACHABLE)) {
    status.conditions = (status.conditions ?? []).filter((c) => c.type !== CONDITION_PEERS_REACHABLE);
  }
  // What this reconcile patched before is sent too: a resharding that ended is removed from status (null),
  // though the cached status the patch is computed from may not show it.
  await writeStatus(deps, cc, status, o.log, o.wroteResharding ? ['resharding'] : []);
  if (cluster) reshardingMemory(deps).wrote(o.key, cc.status?.resharding, status.resharding);
  return status;
}

/** When to look again: soon while pods refuse settings, later while the cluster is still coming up. */
function nextCheck(live: LiveConfig, wrote: number, status: CacheClusterStatus): ReconcileResult {
  if (live.configResult && !live.allApplied) return requeueAfter(CONFIG_RETRY_MS);
  if (wrote > 0 || findCondition(status.conditions, CONDITION_READY)?.status !== 'True')
    return requeueAfter(PROGRESS_RETRY_MS);
  return done;
}

/** Patches the status if it changed, then records the events of its transitions (`transitionEvents`). */
async function writeStatus(
  deps: ReconcileDeps,
  cc: CacheCluster,
  status: CacheClusterStatus,
  log: Logger,
  /** Fields this reconcile patched already (so the server may hold them though `cc.status` does not). */
  alsoPatched: readonly (keyof CacheClusterStatus)[] = [],
): Promise<void> {
  deps.onConditions?.(cc.metadata.namespace, cc.metadata.name, status.conditions ?? []);
  if (alsoPatched.length === 0 && statusEqual(cc.status, status)) return;
  const ref = {
    apiVersion: API_VERSION,
    kind: KIND,
    namespace: cc.metadata.namespace,
    name: cc.metadata.name,
    uid: cc.metadata.uid,
  };
  // A merge patch keeps fields it does not name: a field the new status drops (a finished failover) is sent as null.
  const patch = mergePatch(cc.status, { ...status });
  for (const k of alsoPatched) if (!(k in status)) patch[k] = null;
  await deps.kube.patchStatus({ ...ref, plural: PLURAL }, patch);
  for (const e of transitionEvents(cc.status, status)) {
    await deps.kube
      .event({ involved: ref, ...e })
      .catch((err: unknown) =>
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Could not record event'),
      );
  }
  if (cc.status?.phase !== status.phase)
    log.info({ from: cc.status?.phase ?? 'none', to: status.phase }, 'Changed phase');
}
