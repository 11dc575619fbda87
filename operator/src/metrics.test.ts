/**
 * The operator's metric names and labels, from its registry: the standard Node.js names (no doubled
 * prefix), the build info, the CacheCluster labels of the condition gauge, and zeros for the known series of
 * the labelled counters.
 */
import { describe, expect, it } from 'vitest';
import {
  ADMISSION_OUTCOMES,
  CONFIG_APPLY_RESULTS,
  RECONCILE_RESULTS,
  createOperatorMetrics,
  forgetConditions,
  showConditions,
} from './metrics.js';

/** The sample lines of the operator's own series (not the process ones, which read /proc). */
async function ownSamples(metrics: ReturnType<typeof createOperatorMetrics>): Promise<string[]> {
  const lines: string[] = [];
  for (const metric of metrics.registry.getMetricsAsArray()) {
    if (!metric.name.startsWith('ripplecache_operator_')) continue;
    const text = await metrics.registry.getSingleMetricAsString(metric.name);
    lines.push(...text.split('\n').filter((l) => l !== '' && !l.startsWith('#')));
  }
  return lines;
}

describe('operator metrics', () => {
  it('names the Node.js process metrics process_* and nodejs_*, as every Node.js program does', () => {
    const names = createOperatorMetrics()
      .registry.getMetricsAsArray()
      .map((m) => m.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('process_resident_memory_bytes');
    expect(names).toContain('nodejs_heap_size_used_bytes');
    expect(names).toContain('nodejs_eventloop_lag_seconds');
    // Nothing but the standard names and the operator's own.
    for (const name of names) expect(name).toMatch(/^(process_|nodejs_|ripplecache_operator_)/);
    expect(names.filter((n) => n.startsWith('ripplecache_operator_process'))).toEqual([]);
  });

  it('exports ripplecache_operator_build_info{version,node_version} 1', async () => {
    expect(await ownSamples(createOperatorMetrics({ version: '0.1.0' }))).toContain(
      `ripplecache_operator_build_info{version="0.1.0",node_version="${process.versions.node}"} 1`,
    );
    expect(await ownSamples(createOperatorMetrics())).toContain(
      `ripplecache_operator_build_info{version="unknown",node_version="${process.versions.node}"} 1`,
    );
  });

  it('labels CacheCluster conditions cachecluster_namespace and cachecluster, which no scrape overwrites', async () => {
    const metrics = createOperatorMetrics();
    metrics.cacheClusterCondition.set(
      { cachecluster_namespace: 'shop', cachecluster: 'sessions', type: 'ConfigApplied', status: 'False' },
      1,
    );
    const lines = await ownSamples(metrics);
    expect(lines).toContain(
      'ripplecache_operator_cachecluster_condition{cachecluster_namespace="shop",cachecluster="sessions",type="ConfigApplied",status="False"} 1',
    );
    // Prometheus would rename these to exported_namespace / keep the operator's own: they must not be used.
    expect(lines.filter((l) => /[{,](namespace|name)="/.test(l))).toEqual([]);
  });

  it('shows each condition of a CacheCluster, drops a type it no longer has, and everything once it is gone', async () => {
    const metrics = createOperatorMetrics();
    const series = async () =>
      (await ownSamples(metrics)).filter((l) => l.startsWith('ripplecache_operator_cachecluster_condition{'));
    const peers = (status: string) =>
      `cachecluster_namespace="shop",cachecluster="carts",type="PeersReachable",status="${status}"`;
    showConditions(metrics, 'shop', 'carts', [
      { type: 'Ready', status: 'True' },
      { type: 'PeersReachable', status: 'False' },
    ]);
    expect(await series()).toEqual(
      expect.arrayContaining([
        `ripplecache_operator_cachecluster_condition{cachecluster_namespace="shop",cachecluster="carts",type="Ready",status="True"} 1`,
        `ripplecache_operator_cachecluster_condition{cachecluster_namespace="shop",cachecluster="carts",type="Ready",status="False"} 0`,
        `ripplecache_operator_cachecluster_condition{${peers('False')}} 1`,
      ]),
    );
    expect(await series()).toHaveLength(6);
    // spec.invalidation.peers removed: PeersReachable is no longer a condition, and no longer a series.
    showConditions(metrics, 'shop', 'carts', [{ type: 'Ready', status: 'False' }]);
    expect((await series()).filter((l) => l.includes('PeersReachable'))).toEqual([]);
    expect(await series()).toHaveLength(3);
    forgetConditions(metrics, 'shop', 'carts');
    expect(await series()).toEqual([]);
  });

  it('observes the client-side rate limit wait and counts Kubernetes API requests by verb, resource and code', async () => {
    const metrics = createOperatorMetrics();
    metrics.kubeApiThrottleWait.observe(0);
    metrics.kubeApiThrottleWait.observe(0.3);
    metrics.kubeApiRequestsTotal.inc({ verb: 'apply', resource: 'StatefulSet', code: '2xx' });
    metrics.kubeApiRequestsTotal.inc({ verb: 'patch', resource: 'CacheCluster/status', code: '409' });
    const lines = await ownSamples(metrics);
    expect(lines).toContain('ripplecache_operator_kube_api_throttle_wait_seconds_count 2');
    expect(lines).toContain('ripplecache_operator_kube_api_throttle_wait_seconds_sum 0.3');
    expect(lines).toContain('ripplecache_operator_kube_api_throttle_wait_seconds_bucket{le="0.001"} 1');
    expect(lines).toContain('ripplecache_operator_kube_api_throttle_wait_seconds_bucket{le="0.5"} 2');
    expect(lines).toContain(
      'ripplecache_operator_kube_api_requests_total{verb="apply",resource="StatefulSet",code="2xx"} 1',
    );
    expect(lines).toContain(
      'ripplecache_operator_kube_api_requests_total{verb="patch",resource="CacheCluster/status",code="409"} 1',
    );
  });

  it('starts every known series of the labelled counters at 0', async () => {
    const lines = await ownSamples(createOperatorMetrics());
    for (const result of RECONCILE_RESULTS) {
      expect(lines).toContain(`ripplecache_operator_reconcile_total{result="${result}"} 0`);
      expect(lines).toContain(`ripplecache_operator_reconcile_duration_seconds_count{result="${result}"} 0`);
    }
    for (const result of CONFIG_APPLY_RESULTS) {
      expect(lines).toContain(`ripplecache_operator_config_apply_total{result="${result}"} 0`);
    }
    for (const outcome of ADMISSION_OUTCOMES) {
      expect(lines).toContain(`ripplecache_operator_webhook_admission_total{outcome="${outcome}"} 0`);
    }
    expect(RECONCILE_RESULTS).toEqual(['success', 'requeue', 'error', 'conflict']);
    expect(CONFIG_APPLY_RESULTS).toEqual(['applied', 'unchanged', 'failed', 'waiting']);
    expect([...ADMISSION_OUTCOMES].sort()).toEqual(['already-injected', 'denied', 'error', 'injected', 'skipped']);
  });
});
