/**
 * The bridge's metrics, on one registry per process (`ripplecache_bridge_*`). Labels: `peer` is the peer's
 * name as configured (never its URL or password).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerBuildInfo } from '../../../common/src/build-info.js';
import type { RepairReason } from './relay-plan.js';

export interface BridgeMetrics {
  readonly registry: Registry;
  /**
   * Messages received on the local channel, by kind (keys, all, malformed; relayed: from another bridge,
   * going no further; forwarded: from another bridge, forwarded to peers it had not visited).
   */
  received(kind: 'keys' | 'all' | 'relayed' | 'forwarded' | 'malformed'): void;
  /** Keys sent to a peer: invalidated there, or left alone because the peer held a newer record. */
  relayedKeys(peer: string, outcome: 'invalidated' | 'kept-newer', n: number): void;
  /** Messages published on a peer's channel. */
  message(peer: string, kind: 'keys' | 'all'): void;
  /** Seconds from a key's arrival on the local channel to its invalidation on the peer. */
  lag(peer: string, seconds: number): void;
  /**
   * A failed call (relay, repair; `local`: on the local Redis), or a failed connection attempt or error on an
   * established connection (`connect`: one per error the Redis client reports, about one per reconnect attempt).
   */
  error(peer: string, op: 'relay' | 'repair' | 'local' | 'connect'): void;
  /** Reachable: connected, and its last call succeeded. */
  peerUp(peer: string, up: boolean): void;
  /** A repair of the peer is wanted or running (relays wait for it). */
  repairPending(peer: string, pending: boolean): void;
  /** A message relayed here was not forwarded to this peer: its route would have named more than 64 clusters. */
  forwardDropped(peer: string): void;
  repair(peer: string, reason: RepairReason, recordsDropped: number): void;
  gap(): void;
  subscribed(up: boolean): void;
}

export function createBridgeMetrics(
  peers: readonly string[],
  options: { defaultMetrics?: boolean; version?: string } = {},
): BridgeMetrics {
  const registry = new Registry();
  // Unprefixed (`process_*`, `nodejs_*`), as the operator's and the sidecar's: one dashboard query for all three.
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry, 'ripplecache_bridge_build_info', options.version);
  const received = new Counter({
    name: 'ripplecache_bridge_received_messages_total',
    help: 'Messages received on the local invalidation channel, by kind (relayed: from another bridge, going no further; forwarded: from another bridge, forwarded to peers it had not visited)',
    labelNames: ['kind'],
    registers: [registry],
  });
  const keys = new Counter({
    name: 'ripplecache_bridge_relayed_keys_total',
    help: "Keys relayed to a peer: invalidated there, or kept because the peer's record was newer",
    labelNames: ['peer', 'outcome'],
    registers: [registry],
  });
  const messages = new Counter({
    name: 'ripplecache_bridge_messages_total',
    help: "Invalidation messages published on a peer's channel",
    labelNames: ['peer', 'kind'],
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'ripplecache_bridge_lag_seconds',
    help: 'Time from a key arriving on the local channel to its invalidation in the peer (oldest key of each batch)',
    labelNames: ['peer'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'ripplecache_bridge_errors_total',
    help: 'Failed calls, by peer (or "local") and operation (relay, repair, local; connect: each error of the connection, about one per reconnect attempt)',
    labelNames: ['peer', 'op'],
    registers: [registry],
  });
  const up = new Gauge({
    name: 'ripplecache_bridge_peer_up',
    help: '1 when the peer is reachable (connected, and its last call succeeded), 0 otherwise; a repair in progress is ripplecache_bridge_peer_repair_pending',
    labelNames: ['peer'],
    registers: [registry],
  });
  const repairPending = new Gauge({
    name: 'ripplecache_bridge_peer_repair_pending',
    help: 'A repair of the peer is wanted or running (relays to it wait): 1, otherwise 0',
    labelNames: ['peer'],
    registers: [registry],
  });
  const forwardsDropped = new Counter({
    name: 'ripplecache_bridge_forwards_dropped_total',
    help: 'Messages relayed here that were not forwarded to this peer (which they had not visited) because their route would have named more than 64 clusters',
    labelNames: ['peer'],
    registers: [registry],
  });
  const repairs = new Counter({
    name: 'ripplecache_bridge_repairs_total',
    help: 'Repairs of a peer as after a gap (records older than the repair dropped, invalidate-all published), by reason',
    labelNames: ['peer', 'reason'],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'ripplecache_bridge_repair_dropped_records_total',
    help: 'Records a repair deleted in a peer',
    labelNames: ['peer'],
    registers: [registry],
  });
  const gaps = new Counter({
    name: 'ripplecache_bridge_sequence_gaps_total',
    help: "Gaps in local senders' sequences (messages lost on the local channel)",
    registers: [registry],
  });
  const subscribed = new Gauge({
    name: 'ripplecache_bridge_subscribed',
    help: '1 while subscribed to the local invalidation channel',
    registers: [registry],
  });
  for (const peer of peers) {
    up.set({ peer }, 0);
    repairPending.set({ peer }, 1);
    forwardsDropped.inc({ peer }, 0);
    for (const op of ['relay', 'repair', 'connect']) errors.inc({ peer, op }, 0);
    for (const outcome of ['invalidated', 'kept-newer']) keys.inc({ peer, outcome }, 0);
  }
  errors.inc({ peer: 'local', op: 'local' }, 0);
  errors.inc({ peer: 'local', op: 'connect' }, 0);
  subscribed.set(0);
  return {
    registry,
    received: (kind) => received.inc({ kind }),
    relayedKeys: (peer, outcome, n) => keys.inc({ peer, outcome }, n),
    message: (peer, kind) => messages.inc({ peer, kind }),
    lag: (peer, seconds) => lag.observe({ peer }, seconds),
    error: (peer, op) => errors.inc({ peer, op }),
    peerUp: (peer, v) => up.set({ peer }, v ? 1 : 0),
    repairPending: (peer, v) => repairPending.set({ peer }, v ? 1 : 0),
    forwardDropped: (peer) => forwardsDropped.inc({ peer }),
    repair: (peer, reason, n) => {
      repairs.inc({ peer, reason });
      dropped.inc({ peer }, n);
    },
    gap: () => gaps.inc(),
    subscribed: (v) => subscribed.set(v ? 1 : 0),
  };
}
