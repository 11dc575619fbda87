/**
 * Reconcile of one CacheCluster, level-triggered: read the current object (from the informer cache),
 * compute the desired children, bring the live eviction settings of every Redis pod to the spec
 * (CONFIG GET, CONFIG SET, CONFIG GET), apply the children (skipping those already as desired, so an
 * unchanged CacheCluster causes no write), compute status from what was observed, patch status only if
 * it changed, record Events on transitions. All I/O goes through `deps`.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  API_VERSION,
  CONDITION_CONFIG_APPLIED,
  CONDITION_READY,
  KIND,
  PLURAL,
  REDIS_CONF_KEY,
  REDIS_PORT,
} from '../api/v1alpha1/constants.js';
import type { CacheCluster, CacheClusterStatus } from '../api/v1alpha1/types.js';
import { done, requeueAfter, splitKey, type ReconcileResult } from '../controller/controller.js';
import { desiredChildren, type DesiredChildren } from '../desired/children.js';
import { desiredEviction, type EvictionSettings } from '../desired/eviction.js';
import { InvalidSpecError } from '../desired/invalid-spec-error.js';
import { configMapName, flushCronJobName, podHost, podName, statefulSetName } from '../desired/names.js';
import { formatBytes } from '../desired/quantity.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import { KubeApiError, type KubeApi, type KubeObject } from '../k8s/kube-client.js';
import type { PodConfigResult, PodEndpoint } from '../redis/live-config.js';
import {
  computeStatus,
  statusEqual,
  unsupportedFields,
  type ConfigResult,
  type ObservedStatefulSet,
} from '../status/compute-status.js';
import { findCondition } from '../status/conditions.js';
import { isSubset } from './subset.js';

export interface ReconcileDeps {
  kube: KubeApi;
  /** The informer cache: current objects by kind, without an API call. */
  cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
  applyEviction: (endpoints: PodEndpoint[], desired: EvictionSettings, password?: string) => Promise<PodConfigResult[]>;
  /** Where a pod's Redis is reached: its headless DNS name, unless overridden (tests, local demo). */
  podAddress: (namespace: string, pod: string, dnsName: string, port: number) => { host: string; port: number };
  now: () => Date;
  log: Logger;
  exporterImage?: string;
  onConfigApply?: (result: 'applied' | 'unchanged' | 'failed') => void;
  /** Called with the conditions computed in every reconcile (for the condition gauge). */
  onConditions?: (namespace: string, name: string, conditions: ReadonlyArray<{ type: string; status: string }>) => void;
  /** Called when the CacheCluster is gone. */
  onGone?: (namespace: string, name: string) => void;
}

/** How long to wait before re-checking pods whose settings could not be applied. */
export const CONFIG_RETRY_MS = 5_000;
/** How long to wait before re-checking a cluster that is still coming up. */
export const PROGRESS_RETRY_MS = 15_000;

/** Parses `maxmemory` / `maxmemory-policy` out of a rendered redis.conf. */
export function renderedEviction(configMap: KubeObject | undefined): EvictionSettings | undefined {
  const conf = (configMap?.data as Record<string, string> | undefined)?.[REDIS_CONF_KEY];
  if (!conf) return undefined;
  const mm = /^maxmemory (\d+)$/m.exec(conf);
  const mp = /^maxmemory-policy (\S+)$/m.exec(conf);
  if (!mm || !mp) return undefined;
  return { maxmemory: Number(mm[1]), maxmemoryPolicy: mp[1] as EvictionSettings['maxmemoryPolicy'] };
}

async function readPassword(deps: ReconcileDeps, cc: CacheCluster): Promise<string | undefined> {
  const ref = resolveSpec(cc).authSecretRef;
  if (!ref) return undefined;
  const secret = await deps.kube.get<KubeObject>({
    apiVersion: 'v1',
    kind: 'Secret',
    namespace: cc.metadata.namespace,
    name: ref.name,
  });
  const b64 = (secret?.data as Record<string, string> | undefined)?.[ref.key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

/** A digest of the password for the restart hash: rotation rolls the Redis pods; the password never leaves. */
export function passwordChecksum(password: string): string {
  return createHash('sha256').update('ripplecache-auth\0').update(password).digest('hex').slice(0, 16);
}

function sameEviction(a: EvictionSettings | undefined, b: EvictionSettings | undefined): boolean {
  return a !== undefined && b !== undefined && a.maxmemory === b.maxmemory && a.maxmemoryPolicy === b.maxmemoryPolicy;
}

export async function reconcileCacheCluster(deps: ReconcileDeps, key: string): Promise<ReconcileResult> {
  const { namespace, name } = splitKey(key);
  const cc = deps.cached(KIND, namespace, name) as CacheCluster | undefined;
  if (!cc || (cc.metadata as { deletionTimestamp?: unknown }).deletionTimestamp) {
    deps.onGone?.(namespace, name);
    return done; // children go with it (owner references)
  }
  const log = deps.log.child({ cacheCluster: key, generation: cc.metadata.generation });
  const ns = cc.metadata.namespace;
  const unsupported = unsupportedFields(cc);

  // ---- Desired eviction settings; an invalid spec is a status, not an error to retry. -----------------
  let desired: EvictionSettings;
  try {
    desired = desiredEviction(cc);
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    await writeStatus(
      deps,
      cc,
      computeStatus({ cc, unsupported, now: deps.now(), specError: { reason: err.reason, message: err.message } }),
      log,
    );
    return done;
  }

  // ---- Live eviction settings on every pod of an existing StatefulSet. ------------------------------
  const sts = deps.cached('StatefulSet', ns, statefulSetName(cc)) as (KubeObject & ObservedStatefulSet) | undefined;
  const spec = resolveSpec(cc);
  let configResult: ConfigResult | undefined;
  let results: PodConfigResult[] = [];
  const password = spec.topology !== 'cluster' ? await readPassword(deps, cc) : undefined;
  if (sts && spec.topology !== 'cluster') {
    const endpoints: PodEndpoint[] = [];
    for (let i = 0; i < spec.pods; i++) {
      const pod = podName(cc, i);
      const addr = deps.podAddress(ns, pod, podHost(cc, i), REDIS_PORT);
      endpoints.push({ pod, host: addr.host, port: addr.port });
    }
    results = await deps.applyEviction(endpoints, desired, password);
    for (const r of results) deps.onConfigApply?.(r.applied ? (r.changed ? 'applied' : 'unchanged') : 'failed');
    const changed = results.filter((r) => r.changed).map((r) => r.pod);
    if (changed.length)
      log.info(
        { pods: changed, maxmemory: desired.maxmemory, maxmemoryPolicy: desired.maxmemoryPolicy },
        'Applied eviction settings with CONFIG SET',
      );
    configResult = { desired, pods: results };
  }
  const allApplied = results.length > 0 && results.every((r) => r.applied);

  // ---- Children. The rendered redis.conf carries eviction settings only once every pod runs them. ----
  const currentConfigMap = deps.cached('ConfigMap', ns, configMapName(cc));
  const rendered = renderedEviction(currentConfigMap);
  const appliedEviction = !currentConfigMap || !sts || allApplied ? desired : (rendered ?? desired);
  let children: DesiredChildren;
  try {
    children = desiredChildren(cc, {
      appliedEviction,
      ...(deps.exporterImage ? { exporterImage: deps.exporterImage } : {}),
      ...(password !== undefined ? { authChecksum: passwordChecksum(password) } : {}),
    });
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    await writeStatus(
      deps,
      cc,
      computeStatus({ cc, unsupported, now: deps.now(), specError: { reason: err.reason, message: err.message } }),
      log,
    );
    return done;
  }
  let wrote = 0;
  const applyChild = async (c: KubeObject) => {
    const current = deps.cached(c.kind!, ns, c.metadata!.name!);
    if (current && isSubset(c, current)) return;
    await deps.kube.apply(c);
    wrote++;
    log.info({ kind: c.kind, name: c.metadata!.name }, current ? 'Updated child' : 'Created child');
  };
  try {
    // The ConfigMap first (the pods mount it), then the other children concurrently.
    const [first, ...rest] = children.apply as KubeObject[];
    if (first) await applyChild(first);
    await Promise.all(rest.map(applyChild));
    for (const gone of children.deleteIfPresent) {
      if (!deps.cached(gone.kind, gone.namespace, gone.name)) continue;
      await deps.kube.delete(gone);
      wrote++;
      log.info({ kind: gone.kind, name: gone.name }, 'Deleted child the spec no longer asks for');
    }
  } catch (err) {
    // A conflict is retried at once by the controller; anything else (an admission denial, a quota, an
    // invalid child) is shown on the CacheCluster before the controller retries with back-off.
    if (err instanceof KubeApiError && err.conflict) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await writeStatus(
      deps,
      cc,
      computeStatus({
        cc,
        ...(sts ? { statefulSet: sts } : {}),
        ...(configResult ? { configResult } : {}),
        unsupported,
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
  if (sts && !sameEviction(rendered, appliedEviction) && allApplied) {
    log.info(
      { maxmemory: desired.maxmemory, maxmemoryPolicy: desired.maxmemoryPolicy },
      'Persisted verified eviction settings into redis.conf',
    );
  }

  // ---- Status from what was observed. -----------------------------------------------------------------
  // The primary as Redis reports it (ROLE), not as assumed; several at once is a split brain.
  const primaries = results.filter((r) => r.role === 'master').map((r) => r.pod);
  const status = computeStatus({
    cc,
    ...(primaries.length === 1 ? { primary: primaries[0]! } : {}),
    primaries,
    ...(sts ? { statefulSet: sts } : {}),
    ...(configResult ? { configResult } : {}),
    unsupported,
    now: deps.now(),
    flushCronJob: deps.cached('CronJob', ns, flushCronJobName(cc)) as
      { status?: { lastSuccessfulTime?: string } } | undefined,
  });
  await writeStatus(deps, cc, status, log);

  if (configResult && !allApplied) return requeueAfter(CONFIG_RETRY_MS);
  if (wrote > 0 || findCondition(status.conditions, CONDITION_READY)?.status !== 'True')
    return requeueAfter(PROGRESS_RETRY_MS);
  return done;
}

async function writeStatus(
  deps: ReconcileDeps,
  cc: CacheCluster,
  status: CacheClusterStatus,
  log: Logger,
): Promise<void> {
  deps.onConditions?.(cc.metadata.namespace, cc.metadata.name, status.conditions ?? []);
  if (statusEqual(cc.status, status)) return;
  const ref = {
    apiVersion: API_VERSION,
    kind: KIND,
    namespace: cc.metadata.namespace,
    name: cc.metadata.name,
    uid: cc.metadata.uid,
  };
  await deps.kube.patchStatus({ ...ref, plural: PLURAL }, status);
  // Events on transitions of the conditions people act on.
  for (const type of [CONDITION_READY, CONDITION_CONFIG_APPLIED]) {
    const before = findCondition(cc.status?.conditions, type);
    const after = findCondition(status.conditions, type);
    if (!after || (before?.status === after.status && before.reason === after.reason)) continue;
    const warning =
      after.status === 'False' &&
      (type === CONDITION_CONFIG_APPLIED || status.phase === 'Degraded' || status.phase === 'Failed');
    // Events are for transitions people act on. A condition's first state is news only as a success or a
    // warning (a new CacheCluster starting up shows in its status), and so is a new reason with the same
    // status (WaitingForPods -> RollingOut -> WaitingForPods while pods start): an Event for each would
    // double the writes of every CacheCluster coming up.
    if (!before && after.status !== 'True' && !warning) continue;
    if (before && before.status === after.status && !warning) continue;
    await deps.kube
      .event({
        involved: ref,
        type: warning ? 'Warning' : 'Normal',
        reason: after.status === 'True' ? type : after.reason || `Not${type}`,
        message: after.message,
      })
      .catch((err: unknown) =>
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Could not record event'),
      );
  }
  // A live eviction change, verified on every pod: the only place it shows besides status.
  const before = cc.status?.appliedConfig;
  const after = status.appliedConfig;
  if (
    before !== undefined &&
    after !== undefined &&
    (before.maxmemory !== after.maxmemory || before.maxmemoryPolicy !== after.maxmemoryPolicy)
  ) {
    const n = after.pods?.length ?? 0;
    await deps.kube
      .event({
        involved: ref,
        type: 'Normal',
        reason: 'EvictionSettingsApplied',
        message:
          `maxmemory ${formatBytes(before.maxmemory)} -> ${formatBytes(after.maxmemory)}, ` +
          `maxmemory-policy ${before.maxmemoryPolicy} -> ${after.maxmemoryPolicy}, applied live on ${n}/${n} pods`,
      })
      .catch((err: unknown) =>
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Could not record event'),
      );
  }
  if (cc.status?.phase !== status.phase)
    log.info({ from: cc.status?.phase ?? 'none', to: status.phase }, 'Changed phase');
}
