/**
 * The sidecar's metric names and labels, from the Prometheus text of its registry: the build info, the
 * `operation` label of the request counter, the `cachecluster` label of every series, and the zeros of the
 * labelled counters' known series.
 */
import { describe, expect, it } from 'vitest';
import { createSidecarMetrics, type MetricSources, type SidecarMetricsOptions } from './metrics.js';

const SOURCES: MetricSources = {
  l1Entries: () => 3,
  l1Bytes: () => 300,
  redisUp: () => 1,
  subscribed: () => 1,
  writeBackPending: () => Promise.resolve({ pending: 42, oldestPendingSeconds: 7 }),
};

async function scrape(
  options: SidecarMetricsOptions = {},
  record?: (m: ReturnType<typeof createSidecarMetrics>) => void,
) {
  const metrics = createSidecarMetrics(SOURCES, options);
  record?.(metrics);
  return metrics.registry.metrics();
}

/** The sample lines (no # HELP / # TYPE). */
const samples = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('sidecar metrics', () => {
  it('exports ripplecache_sidecar_build_info{version,node_version} 1', async () => {
    const text = await scrape({ version: '1.2.3' });
    expect(samples(text)).toContain(
      `ripplecache_sidecar_build_info{version="1.2.3",node_version="${process.versions.node}"} 1`,
    );
    expect(await scrape()).toMatch(/^ripplecache_sidecar_build_info\{version="unknown",node_version="[^"]+"\} 1$/m);
  });

  it('labels the request counter with the operation, as the latency histogram is', async () => {
    const text = await scrape({}, (m) => {
      m.request('get', 'l2', 'hit', 0.001);
      m.request('consistency', 'l2', 'hit', 0.002);
      m.request('consistency', 'l2', 'hit', 0.002);
    });
    const lines = samples(text);
    expect(lines).toContain('ripplecache_sidecar_requests_total{operation="get",tier="l2",outcome="hit"} 1');
    expect(lines).toContain('ripplecache_sidecar_requests_total{operation="consistency",tier="l2",outcome="hit"} 2');
    expect(lines).toContain('ripplecache_sidecar_request_duration_seconds_count{operation="consistency",tier="l2"} 2');
    // Every request series has the three labels.
    for (const line of lines.filter((l) => l.startsWith('ripplecache_sidecar_requests_total'))) {
      expect(line).toMatch(
        /^ripplecache_sidecar_requests_total\{operation="[a-z]+",tier="[a-z0-9-]+",outcome="\w+"\} \d+$/,
      );
    }
  });

  it('pre-creates a series at 0, and a second series() of the same combination is the same series', async () => {
    const text = await scrape({}, (m) => {
      m.series('put', 'l2', 'stored');
      m.series('delete', 'l2', 'deleted').record(0.001);
      m.series('delete', 'l2', 'deleted').record(0.001);
    });
    const lines = samples(text);
    expect(lines).toContain('ripplecache_sidecar_requests_total{operation="put",tier="l2",outcome="stored"} 0');
    expect(lines).toContain('ripplecache_sidecar_requests_total{operation="delete",tier="l2",outcome="deleted"} 2');
  });

  it('starts the labelled counters at 0 for their known label combinations', async () => {
    const lines = samples(await scrape({ origin: true }));
    for (const kind of ['keys', 'all']) {
      expect(lines).toContain(`ripplecache_sidecar_invalidations_received_total{kind="${kind}"} 0`);
    }
    for (const reason of ['subscription-lost', 'resubscribed', 'sequence-gap', 'malformed-message', 'invalidate-all']) {
      expect(lines).toContain(`ripplecache_sidecar_l1_drops_total{reason="${reason}"} 0`);
    }
    for (const kind of ['origin', 'rejected', 'redis']) {
      expect(lines).toContain(`ripplecache_sidecar_writeback_failures_total{kind="${kind}"} 0`);
    }
    for (const [op, outcome] of [
      ['get', 'hit'],
      ['get', 'miss'],
      ['get', 'unavailable'],
      ['put', 'applied'],
      ['put', 'superseded'],
      ['delete', 'applied'],
      ['batch', 'applied'],
      ['batch', 'unavailable'],
    ]) {
      expect(lines).toContain(`ripplecache_sidecar_origin_requests_total{op="${op}",outcome="${outcome}"} 0`);
    }
    // Without an origin there is nothing to count.
    expect(await scrape()).not.toMatch(/^ripplecache_sidecar_origin_requests_total\{/m);
  });

  it('labels every series with cachecluster when the CacheCluster is known, the write-back gauges included', async () => {
    const lines = samples(
      await scrape({ cacheCluster: 'sessions', origin: true }, (m) => m.request('get', 'l1', 'hit', 0.0001)),
    );
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(line).toMatch(/[{,]cachecluster="sessions"[,}]/);
    expect(lines).toContain('ripplecache_sidecar_writeback_pending{cachecluster="sessions"} 42');
    expect(lines).toContain('ripplecache_sidecar_writeback_oldest_pending_seconds{cachecluster="sessions"} 7');
    expect(lines).toContain(
      'ripplecache_sidecar_requests_total{operation="get",tier="l1",outcome="hit",cachecluster="sessions"} 1',
    );
  });

  it('adds no cachecluster label when the CacheCluster is not known', async () => {
    const text = await scrape();
    expect(samples(text).join('\n')).not.toContain('cachecluster');
    expect(samples(text)).toContain('ripplecache_sidecar_writeback_pending 42');
  });
});
