/**
 * Prometheus metrics of one sidecar, on a registry of its own (never prom-client's global one).
 */
import type { Histogram } from 'prom-client';
import { registerBuildInfo } from '../../common/src/build-info.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram as PromHistogram, Registry } from 'prom-client';
import type { DropReason, ReceiverEvents } from './invalidation/invalidation-receiver.js';
import type { OriginEvents, OriginOperation, OriginOutcome } from './origin/origin.js';
import type { ReplicaWaitEvents, WaitOutcome } from './redis/replica-waiter.js';
import type { TierEvents } from './tiers/tiered-cache.js';
import type { FlusherEvents, FlushFailure, PendingSnapshot } from './write/write-back-flusher.js';

/** What the gauges read at scrape time. */
export interface MetricSources {
  l1Entries(): number;
  l1Bytes(): number;
  /** 1 when the Redis command connection is up; 0 when down or not configured. */
  redisUp(): number;
  /** 1 when the invalidation subscription is up; 0 when down, and in L1-only mode (there is none). */
  subscribed(): number;
  /** The write-back journal's backlog, read at scrape time (absent: no write-back). */
  writeBackPending?: () => Promise<PendingSnapshot>;
}

export type Operation = 'get' | 'put' | 'delete' | 'invalidate' | 'consistency' | 'batch';

export interface SidecarMetricsOptions {
  /** Also export the standard Node.js process metrics (`process_*`, `nodejs_*`). Default false. */
  defaultMetrics?: boolean;
  /**
   * The CacheCluster this sidecar belongs to: the label `cachecluster` of every series, so that the
   * cluster-wide write-back gauges can be aggregated per CacheCluster. Default: no such label.
   */
  cacheCluster?: string | undefined;
  /** The `version` label of `ripplecache_sidecar_build_info`. Default `unknown`. */
  version?: string;
  /** An origin is configured: its request counter starts with a zero for every known (op, outcome). */
  origin?: boolean;
}

/** The (op, outcome) pairs an origin reports, pre-created at 0 when there is an origin. */
const ORIGIN_SERIES: ReadonlyArray<readonly [OriginOperation, readonly OriginOutcome[]]> = [
  ['get', ['hit', 'miss', 'unavailable', 'rejected']],
  ['put', ['applied', 'superseded', 'unavailable', 'rejected']],
  ['delete', ['applied', 'superseded', 'unavailable', 'rejected']],
  ['batch', ['applied', 'unavailable', 'rejected']],
];

/** A pre-resolved (operation, tier, outcome) series: recording costs a few additions, no label hashing. */
export interface RequestSeries {
  record(seconds: number): void;
}

export interface SidecarMetrics {
  readonly registry: Registry;
  readonly tierEvents: TierEvents;
  readonly receiverEvents: ReceiverEvents;
  /** Calls to the origin (write policies and read-through). */
  readonly originEvents: OriginEvents;
  /** The write-back flusher's batches, coalesced writes and failures. */
  readonly flusherEvents: FlusherEvents;
  /** WAITs for a replica (`--durability replicated`): outcome and latency. */
  readonly replicaWaitEvents: ReplicaWaitEvents;
  /** Records one API request: which tier answered (`l1`, `l1-stale`, `l2`, `none`) and how it ended. */
  request(operation: Operation, tier: string, outcome: string, seconds: number): void;
  /** The series for one combination, for hot paths that record it on every request. */
  series(operation: Operation, tier: string, outcome: string): RequestSeries;
  redisError(): void;
}

const DURATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

interface HistogramCell {
  labels: { operation: string; tier: string };
  /** counts[i]: observations <= DURATION_BUCKETS[i] and > the previous bound; last: above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

interface CounterCell {
  labels: { operation: string; tier: string; outcome: string };
  count: number;
}

/**
 * Request counts and latencies are kept in plain numbers and handed to the registry at scrape time:
 * prom-client's per-call label hashing would cost more than the L1 hit being measured.
 */
class RequestStats {
  /** One per series: (operation, tier, outcome) identifies both. */
  private readonly counters: CounterCell[] = [];
  private readonly histograms = new Map<string, HistogramCell>();
  private readonly series_ = new Map<string, RequestSeries>();

  series(operation: string, tier: string, outcome: string): RequestSeries {
    const id = `${operation}\u0000${tier}\u0000${outcome}`;
    let s = this.series_.get(id);
    if (s === undefined) {
      const counter: CounterCell = { labels: { operation, tier, outcome }, count: 0 };
      this.counters.push(counter);
      const hist = this.histogram(operation, tier);
      s = {
        record(seconds: number) {
          counter.count++;
          hist.count++;
          hist.sum += seconds;
          let i = 0;
          while (i < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[i] as number)) i++;
          hist.counts[i] = (hist.counts[i] as number) + 1;
        },
      };
      this.series_.set(id, s);
    }
    return s;
  }

  counterCells(): Iterable<CounterCell> {
    return this.counters;
  }

  histogramCells(): Iterable<HistogramCell> {
    return this.histograms.values();
  }

  private histogram(operation: string, tier: string): HistogramCell {
    const id = `${operation}\u0000${tier}`;
    let h = this.histograms.get(id);
    if (h === undefined) {
      h = { labels: { operation, tier }, counts: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 };
      this.histograms.set(id, h);
    }
    return h;
  }
}

/** A histogram metric read from {@link RequestStats}, in the shape prom-client's Registry renders. */
class RequestDurationHistogram {
  readonly name = 'ripplecache_sidecar_request_duration_seconds';
  readonly help = 'API request latency from arrival to the answer, by operation and answering tier';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['operation', 'tier'];

  constructor(private readonly stats: RequestStats) {}

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const cell of this.stats.histogramCells()) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += cell.counts[i] as number;
        values.push({ labels: { ...cell.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...cell.labels, le: '+Inf' }, value: cell.count, metricName: `${this.name}_bucket` });
      values.push({ labels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: cell.labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {}
}

export function createSidecarMetrics(sources: MetricSources, options: SidecarMetricsOptions = {}): SidecarMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.cacheCluster !== undefined) registry.setDefaultLabels({ cachecluster: options.cacheCluster });
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });

  registerBuildInfo(registry, 'ripplecache_sidecar_build_info', options.version);

  const stats = new RequestStats();
  new Counter({
    name: 'ripplecache_sidecar_requests_total',
    help: 'API requests by operation (get, put, delete, invalidate, consistency, batch: one per operation of a batch), the tier that answered (l1, l1-stale, l2, origin, none) and outcome (hit, miss, stored, deleted, invalidated, or an error code)',
    labelNames: ['operation', 'tier', 'outcome'] as const,
    registers,
    collect() {
      this.reset();
      for (const cell of stats.counterCells()) this.inc(cell.labels, cell.count);
    },
  });
  registry.registerMetric(new RequestDurationHistogram(stats) as unknown as Histogram);
  new Gauge({
    name: 'ripplecache_sidecar_l1_entries',
    help: 'Entries in L1',
    registers,
    collect() {
      this.set(sources.l1Entries());
    },
  });
  new Gauge({
    name: 'ripplecache_sidecar_l1_bytes',
    help: 'Bytes in L1 (key + value + content type + 64 per entry)',
    registers,
    collect() {
      this.set(sources.l1Bytes());
    },
  });
  const evictions = new Counter({
    name: 'ripplecache_sidecar_l1_evictions_total',
    help: 'L1 entries evicted to respect the entry or byte bound',
    registers,
  });
  const published = new Counter({
    name: 'ripplecache_sidecar_invalidations_published_total',
    help: 'Invalidation messages published by this sidecar',
    registers,
  });
  const received = new Counter({
    name: 'ripplecache_sidecar_invalidations_received_total',
    help: 'Invalidation messages received from other senders, by kind (keys, all)',
    labelNames: ['kind'] as const,
    registers,
  });
  const gaps = new Counter({
    name: 'ripplecache_sidecar_invalidation_gaps_total',
    help: "Gaps in a sender's sequence numbers (lost invalidation messages)",
    registers,
  });
  const malformed = new Counter({
    name: 'ripplecache_sidecar_invalidations_malformed_total',
    help: 'Messages on the invalidation channel that were not valid invalidations',
    registers,
  });
  const drops = new Counter({
    name: 'ripplecache_sidecar_l1_drops_total',
    help: 'Times L1 was emptied as a whole, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const redisErrors = new Counter({
    name: 'ripplecache_sidecar_redis_errors_total',
    help: 'Redis calls that failed (timed out, not connected, or an error reply)',
    registers,
  });
  new Gauge({
    name: 'ripplecache_sidecar_redis_up',
    help: '1 when the connection to the Redis primary is up',
    registers,
    collect() {
      this.set(sources.redisUp());
    },
  });
  new Gauge({
    name: 'ripplecache_sidecar_invalidation_subscribed',
    help: '1 when the invalidation subscription is up (L1 is trusted)',
    registers,
    collect() {
      this.set(sources.subscribed());
    },
  });

  // Write policies and the origin.
  let pendingScrape: Promise<PendingSnapshot> | undefined;
  /** One journal read per scrape, shared by the two gauges. */
  const pending = (): Promise<PendingSnapshot> => {
    const read = sources.writeBackPending;
    if (read === undefined) return Promise.resolve({ pending: 0, oldestPendingSeconds: 0 });
    pendingScrape ??= read().finally(() => {
      setImmediate(() => {
        pendingScrape = undefined;
      });
    });
    return pendingScrape;
  };
  new Gauge({
    name: 'ripplecache_sidecar_writeback_pending',
    help: 'Write-back journal entries not yet written to the origin (cluster-wide: the journal is shared by every sidecar of the CacheCluster, so aggregate with max by (namespace, cachecluster))',
    registers,
    async collect() {
      this.set((await pending()).pending);
    },
  });
  new Gauge({
    name: 'ripplecache_sidecar_writeback_oldest_pending_seconds',
    help: 'Age of the oldest write-back journal entry not yet written to the origin (0 when none; cluster-wide like ripplecache_sidecar_writeback_pending)',
    registers,
    async collect() {
      this.set((await pending()).oldestPendingSeconds);
    },
  });
  const batches = new Counter({
    name: 'ripplecache_sidecar_writeback_batches_total',
    help: 'Write-back batches this sidecar wrote to the origin',
    registers,
  });
  const flushedEntries = new Counter({
    name: 'ripplecache_sidecar_writeback_entries_flushed_total',
    help: 'Write-back journal entries this sidecar wrote to the origin (before coalescing)',
    registers,
  });
  const coalesced = new Counter({
    name: 'ripplecache_sidecar_writeback_coalesced_total',
    help: 'Write-back entries folded into a later write to the same key, of the same batch or coalescing window (not sent to the origin)',
    registers,
  });
  const flushFailures = new Counter({
    name: 'ripplecache_sidecar_writeback_failures_total',
    help: 'Failed write-back flush attempts, by kind: origin (unavailable; retried), rejected (dead-lettered), redis',
    labelNames: ['kind'] as const,
    registers,
  });
  const originRequests = new Counter({
    name: 'ripplecache_sidecar_origin_requests_total',
    help: 'Calls to the origin by operation (get, put, delete, batch, init) and outcome (hit, miss, applied, superseded, ok, unavailable, rejected)',
    labelNames: ['op', 'outcome'] as const,
    registers,
  });
  const originRows = new Counter({
    name: 'ripplecache_sidecar_origin_rows_written_total',
    help: 'Rows (or HTTP writes) the origin stored for this sidecar',
    registers,
  });
  const replicaWaits = new Counter({
    name: 'ripplecache_sidecar_replica_waits_total',
    help: 'WAITs for a replica after a write (--durability replicated), by outcome: acknowledged, timeout (answered 503 ReplicationTimeout), error (Redis failed)',
    labelNames: ['outcome'] as const,
    registers,
  });
  const replicaWaitWrites = new Counter({
    name: 'ripplecache_sidecar_replica_wait_writes_total',
    help: 'Writes covered by WAITs for a replica (one WAIT covers every write answered in the same event-loop turn)',
    registers,
  });
  const replicaWaitSeconds = new PromHistogram({
    name: 'ripplecache_sidecar_replica_wait_duration_seconds',
    help: 'Time from sending a WAIT for a replica to its answer',
    buckets: DURATION_BUCKETS,
    registers,
  });
  for (const outcome of ['acknowledged', 'timeout', 'error'] satisfies WaitOutcome[]) replicaWaits.inc({ outcome }, 0);
  // Pre-create the known series of the labelled counters, so that dashboards and rate() see zeros rather
  // than gaps until the first event.
  for (const kind of ['origin', 'rejected', 'redis'] satisfies FlushFailure[]) flushFailures.inc({ kind }, 0);
  for (const kind of ['keys', 'all'] as const) received.inc({ kind }, 0);
  if (options.origin) {
    for (const [op, outcomes] of ORIGIN_SERIES) for (const outcome of outcomes) originRequests.inc({ op, outcome }, 0);
  }
  for (const reason of [
    'subscription-lost',
    'resubscribed',
    'sequence-gap',
    'malformed-message',
    'invalidate-all',
  ] satisfies DropReason[]) {
    drops.inc({ reason }, 0);
  }

  return {
    registry,
    tierEvents: {
      l1Evicted: (count) => evictions.inc(count),
      l1Dropped: (reason) => drops.inc({ reason }),
      published: () => published.inc(),
    },
    receiverEvents: {
      received: (kind) => received.inc({ kind }),
      gap: () => gaps.inc(),
      malformed: () => malformed.inc(),
    },
    originEvents: {
      request: (op, outcome) => originRequests.inc({ op, outcome }),
      rowsWritten: (count) => originRows.inc(count),
    },
    flusherEvents: {
      batchFlushed: (entries) => {
        batches.inc();
        flushedEntries.inc(entries);
      },
      coalesced: (count) => coalesced.inc(count),
      failure: (kind) => flushFailures.inc({ kind }),
    },
    replicaWaitEvents: {
      waited: (outcome, seconds, writes) => {
        replicaWaits.inc({ outcome });
        replicaWaitWrites.inc(writes);
        replicaWaitSeconds.observe(seconds);
      },
    },
    request(operation, tier, outcome, seconds) {
      stats.series(operation, tier, outcome).record(seconds);
    },
    series: (operation, tier, outcome) => stats.series(operation, tier, outcome),
    redisError: () => redisErrors.inc(),
  };
}
