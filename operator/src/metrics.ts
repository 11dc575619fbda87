/** The operator's metrics, on one prom-client Registry per process (never the global one). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface OperatorMetrics {
  registry: Registry;
  reconcileTotal: Counter<'result'>;
  reconcileDuration: Histogram<'result'>;
  queueDepth: Gauge;
  isLeader: Gauge;
  configApplyTotal: Counter<'result'>;
  /** 1 for the current status of each condition of each CacheCluster (0 for the other statuses); set by the leader. */
  cacheClusterCondition: Gauge<'namespace' | 'name' | 'type' | 'status'>;
  /** AdmissionReviews answered by the sidecar-injection webhook, by outcome. */
  webhookAdmissionTotal: Counter<'outcome'>;
}

/**
 * `isLeading`, when given, is read at every scrape for `ripplecache_operator_leader`, so the gauge turns 0 the
 * moment leadership lapses, even before the step-down code has run.
 */
export function createOperatorMetrics(isLeading?: () => boolean): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ripplecache_operator_process_' });
  return {
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
      help: 'Live CONFIG SET attempts per pod by result (applied, unchanged, failed).',
      labelNames: ['result'],
      registers: [registry],
    }),
    cacheClusterCondition: new Gauge({
      name: 'ripplecache_operator_cachecluster_condition',
      help: 'Conditions of CacheClusters: 1 for the current status (True, False, Unknown) of each condition type.',
      labelNames: ['namespace', 'name', 'type', 'status'],
      registers: [registry],
    }),
    webhookAdmissionTotal: new Counter({
      name: 'ripplecache_operator_webhook_admission_total',
      help: 'Pod admissions answered by the sidecar-injection webhook by outcome (injected, already-injected, skipped, denied, error).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
