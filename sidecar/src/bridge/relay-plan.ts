/**
 * What the cross-cluster bridge does with each message of its local invalidation channel, and the keys it
 * has yet to send to one peer. Pure: no I/O, no clock (times are passed in).
 *
 * Routes (relaying over several hops). Every relayed message carries its `origin` (the cluster the write
 * was made in) and `visited`: every cluster the write has been or is being relayed to, origin included.
 *
 * - A message without `origin` is a local write (a sidecar's, or the flush job's invalidate-all): it is
 *   relayed to every peer, with `visited` = this cluster and all its peers (`localRoute`).
 * - A message with an `origin` was relayed here by another cluster's bridge. It is forwarded only to the
 *   peers not in its `visited` (nor its origin, nor this cluster), and the forwarded message's `visited`
 *   adds those peers (`forwardPlan`). A cluster a message was sent to is thus never sent it again by a
 *   bridge that saw that message: in a full mesh the writer's bridge reaches every cluster directly and no
 *   bridge forwards (each write reaches each other cluster exactly once, as with one hop); in a ring where
 *   each cluster lists only its successor, the write travels around once and stops before its origin.
 *   `visited` only grows along a path and is bounded (MAX_VISITED), so nothing loops; a cluster that would
 *   make a route longer than that is not forwarded to (`forwardPlan` `dropped`). Duplicates remain
 *   possible only where two bridges that did not see each other's message both forward to a third cluster
 *   (two disjoint relaying paths, e.g. A→B→D and A→C→D with B and C not peers of each other): D is then
 *   invalidated twice, which the versioned compare makes harmless (the second finds the tombstone).
 * - Relayed keys carry their versions (`vers`) so that a forwarding bridge relays the original write's
 *   version, not its own; a relayed invalidate-all (a repair) is forwarded as a repair of those peers.
 * - A relayed message without `visited` (a bridge that relays one hop only) is never forwarded.
 * - Peer names are compared with cluster names: a CacheCluster peer must be named `namespace/name` (the
 *   operator does so), the name its own bridge gets as `--cluster`.
 * - The sequence numbers of local senders are tracked (relayed senders are not: a gap there is the other
 *   bridge's business, which repairs this cluster). A gap or step back means local messages were lost:
 *   every peer must be repaired.
 */
import {
  MAX_VISITED,
  encodeInvalidation,
  parseInvalidation,
  type InvalidationMessage,
} from '../../../common/src/invalidation-message.js';
import { NO_BUCKET, SequenceTracker } from '../invalidation/sequence-tracker.js';

/** Where a relayed write comes from and every cluster it has been or is being relayed to (sorted). */
export interface Route {
  origin: string;
  visited: string[];
}

export function makeRoute(origin: string, visited: Iterable<string>): Route {
  return { origin, visited: [...new Set([origin, ...visited])].sort() };
}

export function routeKey(route: Route): string {
  return `${route.origin}\n${route.visited.join('\n')}`;
}

/** The route of this cluster's own writes: to every peer. */
export function localRoute(self: string, peers: readonly string[]): Route {
  return makeRoute(self, [self, ...peers]);
}

/**
 * Where a message relayed here goes on: the peers not yet visited, and the route the forwarded message
 * carries; undefined when it goes nowhere (no `visited`: a one-hop bridge; every peer visited).
 *
 * The route may name MAX_VISITED clusters at most (a longer one is malformed to every reader): when the
 * unvisited peers do not all fit, it goes to as many as fit, in the order given, and the others are
 * `dropped` (the caller warns and counts them; they miss this write). Loops stay impossible: every route
 * forwarded still names every cluster of the route it came with, so it only grows, and it is bounded.
 */
export function forwardPlan(
  self: string,
  peers: readonly string[],
  origin: string,
  visited: readonly string[] | undefined,
): { targets: string[]; dropped: string[]; route: Route } | undefined {
  if (visited === undefined) return undefined;
  const seen = new Set([origin, self, ...visited]);
  const unvisited = peers.filter((p) => !seen.has(p));
  if (unvisited.length === 0) return undefined;
  const room = Math.max(0, MAX_VISITED - seen.size);
  const targets = unvisited.slice(0, room);
  return { targets, dropped: unvisited.slice(room), route: makeRoute(origin, [...seen, ...targets]) };
}

export type LocalMessageVerdict =
  | { kind: 'keys'; keys: string[]; gap: boolean }
  | { kind: 'all'; gap: boolean }
  | { kind: 'relayed'; message: InvalidationMessage & { origin: string } }
  | { kind: 'malformed'; reason: string };

/** Classifies raw messages of the local channel, tracking local senders' sequences. */
export class LocalMessageClassifier {
  private readonly tracker = new SequenceTracker();

  classify(raw: string): LocalMessageVerdict {
    let m: InvalidationMessage;
    try {
      m = parseInvalidation(raw);
    } catch (err) {
      return { kind: 'malformed', reason: err instanceof Error ? err.message : String(err) };
    }
    if (m.origin !== undefined) return { kind: 'relayed', message: { ...m, origin: m.origin } };
    const { verdict } = this.tracker.observe(m.sender, m.seq, m.b ?? NO_BUCKET);
    const gap = verdict === 'gap' || verdict === 'regression';
    return 'all' in m ? { kind: 'all', gap } : { kind: 'keys', keys: m.keys, gap };
  }

  /** After the subscription was lost: every sender starts afresh. */
  reset(): void {
    this.tracker.reset();
  }
}

/** Builds the messages one bridge publishes on one peer's channel: its sender id, its own sequence. */
export class RelayedMessages {
  private seq = 0;

  constructor(readonly sender: string) {}

  keys(route: Route, keys: readonly string[], versions: readonly number[]): string {
    return encodeInvalidation({
      v: 1,
      sender: this.sender,
      seq: ++this.seq,
      keys: [...keys],
      vers: [...versions],
      origin: route.origin,
      visited: route.visited,
    });
  }

  all(route: Route): string {
    return encodeInvalidation({
      v: 1,
      sender: this.sender,
      seq: ++this.seq,
      all: true,
      origin: route.origin,
      visited: route.visited,
    });
  }
}

export interface PendingBatch {
  keys: string[];
  /** Version per key (same order): the invalidating write's version, 0 when the local cluster has none. */
  versions: number[];
  /** When the oldest of these keys was received (the caller's clock, ms). */
  oldestReceivedMs: number;
}

/**
 * The keys waiting for one peer, each with the highest version seen for it, in arrival order. Keys that
 * arrive while a batch is in the air wait for the next one, so under load one call carries many keys and
 * under light load a batch is one message's keys. Bounded: past `maxKeys` the queue is given up
 * (`overflowed`), and the caller repairs the peer as after a gap.
 */
export class PendingKeys {
  private readonly versions = new Map<string, number>();
  private readonly received = new Map<string, number>();
  private overflow = false;

  constructor(private readonly maxKeys: number) {}

  get size(): number {
    return this.versions.size;
  }

  /** True once more than `maxKeys` keys waited at one time (until `clear`). */
  get overflowed(): boolean {
    return this.overflow;
  }

  add(key: string, version: number, receivedMs: number): void {
    if (this.overflow) return;
    const had = this.versions.get(key);
    if (had === undefined) {
      if (this.versions.size >= this.maxKeys) {
        this.overflow = true;
        this.versions.clear();
        this.received.clear();
        return;
      }
      this.received.set(key, receivedMs);
    }
    this.versions.set(key, Math.max(had ?? 0, version));
  }

  /** Removes and returns up to `max` keys, oldest first; undefined when none wait. */
  take(max: number): PendingBatch | undefined {
    if (this.versions.size === 0) return undefined;
    const keys: string[] = [];
    const versions: number[] = [];
    let oldest = Infinity;
    for (const [key, version] of this.versions) {
      if (keys.length >= max) break;
      keys.push(key);
      versions.push(version);
      oldest = Math.min(oldest, this.received.get(key) ?? Infinity);
    }
    for (const key of keys) {
      this.versions.delete(key);
      this.received.delete(key);
    }
    return { keys, versions, oldestReceivedMs: oldest };
  }

  /** Forgets every key (a repair covers them) and the overflow. */
  clear(): void {
    this.versions.clear();
    this.received.clear();
    this.overflow = false;
  }
}

/**
 * The keys waiting for one peer, per route (a relayed message carries one route), bounded in total: past
 * `maxKeys` keys waiting at one time the whole queue is given up (`overflowed`) until `clear`.
 */
export class RoutedPendingKeys {
  private readonly byRoute = new Map<string, { route: Route; keys: PendingKeys }>();
  private total = 0;
  private overflow = false;

  constructor(private readonly maxKeys: number) {}

  get size(): number {
    return this.total;
  }

  get overflowed(): boolean {
    return this.overflow;
  }

  add(route: Route, key: string, version: number, receivedMs: number): void {
    if (this.overflow) return;
    const k = routeKey(route);
    let q = this.byRoute.get(k);
    if (q === undefined) {
      q = { route, keys: new PendingKeys(Number.MAX_SAFE_INTEGER) };
      this.byRoute.set(k, q);
    }
    const before = q.keys.size;
    q.keys.add(key, version, receivedMs);
    this.total += q.keys.size - before;
    if (this.total > this.maxKeys) {
      this.clear();
      this.overflow = true;
    }
  }

  /** Up to `max` keys of one route (the route waiting longest first); undefined when none wait. */
  take(max: number): (PendingBatch & { route: Route }) | undefined {
    for (const [k, q] of this.byRoute) {
      const batch = q.keys.take(max);
      if (batch === undefined) {
        this.byRoute.delete(k);
        continue;
      }
      this.total -= batch.keys.length;
      // The route goes to the back, so that one busy route does not starve the others.
      this.byRoute.delete(k);
      if (q.keys.size > 0) this.byRoute.set(k, q);
      return { ...batch, route: q.route };
    }
    return undefined;
  }

  clear(): void {
    this.byRoute.clear();
    this.total = 0;
    this.overflow = false;
  }
}

/** Why a peer is repaired: everything it may have missed is dropped (see peer-link.ts). */
export type RepairReason =
  | 'start'
  | 'peer-reconnected'
  | 'relay-failed'
  | 'sequence-gap'
  | 'resubscribed'
  | 'overflow'
  | 'invalidate-all'
  | 'relayed-invalidate-all'
  | 'malformed-message'
  | 'local-unavailable';
