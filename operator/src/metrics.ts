/**
 * The operator's metrics, on one prom-client Registry per process (never the global one): its own
 * `ripplecache_operator_*` series and the standard Node.js `process_*` / `nodejs_*` ones.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerBuildInfo } from '../../common/src/build-info.js';
import { CONDITION_TYPES } from './api/v1alpha1/constants.js';
import type { AdmissionOutcome } from './webhook/admission.js';

/** Every `result` of a reconcile. */
export const RECONCILE_RESULTS = ['success', 'requeue', 'error', 'conflict'] as const;
/** Every `result` of one live CONFIG SET on a pod. */
export const CONFIG_APPLY_RESULTS = ['applied', 'unchanged', 'failed', 'waiting'] as const;
/** Every `outcome` of a pod admission by the sidecar-injection webhook. */
export const ADMISSION_OUTCOMES = [
  'injected',
  'already-injected',
  'skipped',
  'denied',
  'error',
] as const satisfies readonly AdmissionOutcome[];

export interface OperatorMetricsOptions {
  /** The `version` label of `ripplecache_operator_build_info`. Default `unknown` (main.ts reads package.json). */
  version?: string;
  /**
   * Read at every scrape for `ripplecache_operator_leader`, so the gauge turns 0 the moment leadership
   * lapses, even before the step-down code has run.
   */
  isLeading?: () => boolean;
}

export interface OperatorMetrics {
  registry: Registry;
  reconcileTotal: Counter<'result'>;
  reconcileDuration: Histogram<'result'>;
  queueDepth: Gauge;
  isLeader: Gauge;
  configApplyTotal: Counter<'result'>;
  /**
   * 1 for the current status of each condition of each CacheCluster (0 for the other statuses); set by the
   * leader. The CacheCluster is `cachecluster_namespace`/`cachecluster`, never `namespace`/`name`: Prometheus
   * sets `namespace` to the scraped target's (the operator's) and would rename ours to `exported_namespace`.
   */
  cacheClusterCondition: Gauge<'cachecluster_namespace' | 'cachecluster' | 'type' | 'status'>;
  /** AdmissionReviews answered by the sidecar-injection webhook, by outcome. */
  webhookAdmissionTotal: Counter<'outcome'>;
  /**
   * How long each Kubernetes API request and watch (re)start waited in the client-side token bucket
   * (`--kube-api-qps`/`--kube-api-burst`); 0 for those sent at once.
   */
  kubeApiThrottleWait: Histogram;
  /**
   * Kubernetes API requests the operator made (not watches, nor the Lease elector's), by `verb` (get, list,
   * create, patch, apply, delete), `resource` (the kind, `CacheCluster/status` for the status subresource)
   * and `code` (`2xx`, the HTTP status of a failure, or `error` without a response).
   */
  kubeApiRequestsTotal: Counter<'verb' | 'resource' | 'code'>;
}

export function createOperatorMetrics(options: OperatorMetricsOptions = {}): OperatorMetrics {
  const { isLeading } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry, 'ripplecache_operator_build_info', options.version);
  const metrics: OperatorMetrics = {
    registry,
    reconcileTotal: new Counter({
      name: 'ripplecache_operator_reconcile_total',
      help: 'Reconciles of CacheClusters by result (success, requeue, error, conflict).',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'ripplecache_operator_reconcile_duration_seconds',
      help: 'Duration of one reconcile.',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'ripplecache_operator_workqueue_depth',
      help: 'CacheClusters waiting in the work queue.',
      registers: [registry],
    }),
    isLeader: new Gauge({
      name: 'ripplecache_operator_leader',
      help: '1 while this replica holds the leader Lease.',
      registers: [registry],
      ...(isLeading
        ? {
            collect(this: Gauge) {
              this.set(isLeading() ? 1 : 0);
            },
          }
        : {}),
    }),
    configApplyTotal: new Counter({
      name: 'ripplecache_operator_config_apply_total',
      help: 'Live CONFIG SET attempts per pod by result (applied, unchanged, failed; waiting: a pod that does not run yet).',
      labelNames: ['result'],
      registers: [registry],
    }),
    cacheClusterCondition: new Gauge({
      name: 'ripplecache_operator_cachecluster_condition',
      help: 'Conditions of CacheClusters: 1 for the current status (True, False, Unknown) of each condition type.',
      labelNames: ['cachecluster_namespace', 'cachecluster', 'type', 'status'],
      registers: [registry],
    }),
    webhookAdmissionTotal: new Counter({
      name: 'ripplecache_operator_webhook_admission_total',
      help: 'Pod admissions answered by the sidecar-injection webhook by outcome (injected, already-injected, skipped, denied, error).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    kubeApiThrottleWait: new Histogram({
      name: 'ripplecache_operator_kube_api_throttle_wait_seconds',
      help: 'Time each Kubernetes API request or watch start waited in the client-side rate limit (--kube-api-qps, --kube-api-burst); 0 when sent at once.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    kubeApiRequestsTotal: new Counter({
      name: 'ripplecache_operator_kube_api_requests_total',
      help: 'Kubernetes API requests (not watches) by verb, resource (kind, or CacheCluster/status) and code (2xx, the HTTP status of a failure, error: no response).',
      labelNames: ['verb', 'resource', 'code'],
      registers: [registry],
    }),
  };
  // Every known series starts at 0, so that rate() and increase() see the first event.
  for (const result of RECONCILE_RESULTS) {
    metrics.reconcileTotal.inc({ result }, 0);
    metrics.reconcileDuration.zero({ result });
  }
  for (const result of CONFIG_APPLY_RESULTS) metrics.configApplyTotal.inc({ result }, 0);
  for (const outcome of ADMISSION_OUTCOMES) metrics.webhookAdmissionTotal.inc({ outcome }, 0);
  return metrics;
}

const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/**
 * `ripplecache_operator_cachecluster_condition` for one CacheCluster's conditions as they are now: 1 on the
 * status of each, 0 on the others, and no series for a condition type it no longer has (`PeersReachable`
 * once `spec.invalidation.peers` is removed).
 */
export function showConditions(
  metrics: OperatorMetrics,
  namespace: string,
  name: string,
  conditions: readonly { type: string; status: string }[],
): void {
  const types = new Set<string>([...CONDITION_TYPES, ...conditions.map((c) => c.type)]);
  for (const type of types) {
    const c = conditions.find((x) => x.type === type);
    for (const status of CONDITION_STATUSES) {
      const labels = { cachecluster_namespace: namespace, cachecluster: name, type, status };
      if (c === undefined) metrics.cacheClusterCondition.remove(labels);
      else metrics.cacheClusterCondition.set(labels, c.status === status ? 1 : 0);
    }
  }
}

/** Removes every condition series of a CacheCluster that is gone. */
export function forgetConditions(metrics: OperatorMetrics, namespace: string, name: string): void {
  showConditions(metrics, namespace, name, []);
}
