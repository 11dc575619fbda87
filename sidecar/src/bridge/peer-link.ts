/**
 * One peer of the bridge: its Redis connection, the keys waiting for it, and one worker loop that either
 * repairs the peer or relays the next batch, never both at once, so that a repair and the relays around it
 * cannot interleave.
 *
 * Relay: one script call per batch (bridge-scripts.ts RELAY; on a Redis Cluster peer one per bucket of the
 * batch, then the message: bridge-redis.ts): each key is invalidated only when the peer's
 * record is older than the write, and one message with every key of the batch is published on the peer's
 * channel (carrying the route: `origin`, `visited` and the versions, so that the peer's bridge forwards it
 * only to clusters it has not reached, relay-plan.ts).
 *
 * Repair "as after a gap", whenever the bridge cannot know which keys the peer missed (start, a lost or
 * gapped local subscription, a failed relay, the peer reconnecting, too many keys waiting, a local
 * invalidate-all): the threshold T is taken from the local cluster (max of its primary's clock in µs and its
 * version counter: at least the version of every write acknowledged there so far), every record of the
 * peer with a version below T is deleted (SCAN, one script per page; on a Redis Cluster peer every primary is
 * scanned and the script runs per slot of each page: bridge-redis.ts), then an invalidate-all is published
 * on the peer's channel so its sidecars drop L1. Records the peer wrote or filled at versions ≥ T stay. Keys
 * waiting when a repair is asked for are forgotten: their writes are older than T.
 *
 * A peer that cannot be reached: the worker retries the repair with back-off (PEER_BACKOFF) and wakes
 * at once when the connection comes back; `up` is false meanwhile (metric, /v1/peers, /readyz).
 *
 * `up` means reachable: the client is connected (ioredis' `ready`: connected, authenticated, answering) and no
 * call to the peer has failed since. A repair of a reachable peer (a local invalidate-all, a malformed local
 * message...) leaves it up and shows as `repairPending` (and the `ripplecache_bridge_peer_repair_pending`
 * gauge); /readyz wants both: up and nothing to repair. Every error of the peer's connection (refused,
 * unresolvable, a wrong password: ioredis reports one per reconnect attempt) is kept as `lastError` (its
 * message, secrets redacted), counted (`errors_total{op="connect"}`) and logged at warn — the first of a
 * failure episode, any other message, otherwise once a minute (error-report.ts).
 */
import type { FastifyBaseLogger } from 'fastify';
import { backoffDelay, type Backoff } from '../../../common/src/backoff.js';
import type { RedisClient } from '../redis/redis-client.js';
import type { KeyLayout } from '../write/key-layout.js';
import { BridgeRedis } from './bridge-redis.js';
import type { BridgeMetrics } from './bridge-metrics.js';
import { ErrorLogGate, errorText, safeError } from './error-report.js';
import { RoutedPendingKeys, routeKey, type RelayedMessages, type RepairReason, type Route } from './relay-plan.js';

/** Back-off between failed repairs of a peer: 100 ms doubling to 5 s, plus up to 100 ms of jitter. */
export const PEER_BACKOFF: Backoff = { baseMs: 100, capMs: 5000, jitterMs: 100 };

export interface PeerLinkOptions {
  name: string;
  /** One server, or (with the bucketed `layout`) a Redis Cluster client. */
  client: RedisClient;
  /** The peer's key layout (default SINGLE_LAYOUT): bucketedLayout() for a Redis Cluster peer. */
  layout?: KeyLayout;
  channel: string;
  messages: RelayedMessages;
  /** The route of this cluster's own writes (relay-plan.ts): the repairs the link asks for itself carry it. */
  localRoute: Route;
  /** The repair threshold: the local cluster's version "now" (see the file comment). */
  versionNow(): Promise<number>;
  maxBatch: number;
  maxPending: number;
  tombstoneTtlMs: number;
  metrics: BridgeMetrics;
  log: FastifyBaseLogger;
  /** Passwords never to show in `lastError` or the log (the peer's, and any other the bridge was given). */
  secrets?: readonly string[];
  /** The clock, ms (Date.now). */
  now?: () => number;
}

export interface PeerStatus {
  name: string;
  /** Reachable: connected, and no call to it failed since. */
  up: boolean;
  /** Why the peer is waiting for a repair (or being repaired), if it is: relays to it wait meanwhile. */
  repairPending?: RepairReason;
  /** The last error reaching the peer (a connection's, or a failed call's), until a call succeeds. */
  lastError?: string;
  /** When `up` last changed, ISO 8601. */
  since: string;
  repairs: number;
  relayedKeys: number;
}

export class PeerLink {
  private readonly client: RedisClient;
  private readonly redis: BridgeRedis;
  private readonly pending: RoutedPendingKeys;
  /** The routes the next repair publishes an invalidate-all for (one message each). */
  private readonly repairRoutes = new Map<string, Route>();
  private readonly now: () => number;
  private readonly errorLog = new ErrorLogGate();
  private readonly secrets: readonly string[];
  private repairWanted: RepairReason | undefined = 'start';
  private repairGeneration = 0;
  private up = false;
  private since: number;
  private lastError: string | undefined;
  private failures = 0;
  private repairs = 0;
  private relayed = 0;
  private running = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: PeerLinkOptions) {
    this.redis = new BridgeRedis(options.client, options.layout);
    this.client = this.redis.client;
    this.pending = new RoutedPendingKeys(options.maxPending);
    this.repairRoutes.set(routeKey(options.localRoute), options.localRoute);
    this.now = options.now ?? Date.now;
    this.since = this.now();
    this.secrets = options.secrets ?? [];
    options.metrics.repairPending(options.name, true);
    // At once, so that no error of the client goes unheard (ioredis prints unhandled ones to stderr).
    this.client.on('error', (err: unknown) => this.connectionError(err));
  }

  get name(): string {
    return this.options.name;
  }

  get isUp(): boolean {
    return this.up;
  }

  /** Up, and no repair wanted: relays flow. */
  get relaying(): boolean {
    return this.up && this.repairWanted === undefined;
  }

  status(): PeerStatus {
    return {
      name: this.options.name,
      up: this.up,
      ...(this.repairWanted !== undefined ? { repairPending: this.repairWanted } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      since: new Date(this.since).toISOString(),
      repairs: this.repairs,
      relayedKeys: this.relayed,
    };
  }

  start(): void {
    this.client.on('ready', () => {
      this.reached();
      this.kick();
    });
    this.client.on('close', () => {
      if (this.stopped) return;
      if (this.up) this.options.log.warn({ peer: this.options.name }, 'Lost the connection to a peer');
      this.setUp(false);
      this.requestRepair('peer-reconnected');
    });
    if (this.client.status === 'ready') this.reached();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.idle;
  }

  /**
   * Keys of one batch (local, or relayed here and forwarded) with their versions (same order). They are
   * queued even while a repair is wanted: a repair in progress may have taken its threshold before them.
   */
  enqueue(route: Route, keys: readonly string[], versions: readonly number[], receivedMs: number): void {
    keys.forEach((key, i) => this.pending.add(route, key, versions[i] ?? 0, receivedMs));
    if (this.pending.overflowed) this.requestRepair('overflow');
    else this.kick();
  }

  /**
   * Repairs the peer as after a gap. `route`: the route its invalidate-all carries (a relayed repair
   * forwarded here); by default this cluster's own, whose `visited` is contained in that of every route
   * this bridge relays on, so that the peer's bridge forwards it at least as far as anything it replaces.
   */
  requestRepair(reason: RepairReason, route: Route = this.options.localRoute): void {
    this.repairRoutes.set(routeKey(route), route);
    if (this.repairWanted === undefined) {
      this.repairWanted = reason;
      this.options.metrics.repairPending(this.options.name, true);
    }
    this.repairGeneration++;
    this.pending.clear();
    // `up` stays as it is: a repair of a reachable peer does not make it unreachable.
    this.kick();
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.since = this.now();
    this.options.metrics.peerUp(this.options.name, up);
  }

  /** The peer answered (the connection is ready, or a call succeeded): it is reachable. */
  private reached(): void {
    this.lastError = undefined;
    if (this.errorLog.failing) {
      this.errorLog.reset();
      this.options.log.info({ peer: this.options.name }, 'Reached a peer again');
    }
    this.setUp(true);
  }

  /** An error of the peer's connection (ioredis' `error` event: a failed connection attempt, a reset...). */
  private connectionError(err: unknown): void {
    if (this.stopped) return;
    this.report('connect', err);
  }

  /** Keeps, counts and (through the gate) logs an error reaching the peer. */
  private report(op: 'connect' | 'relay' | 'repair', err: unknown): void {
    const text = errorText(err, this.secrets);
    this.lastError = text;
    this.options.metrics.error(this.options.name, op);
    const gate = this.errorLog.check(`${op}: ${text}`, this.now());
    if (!gate.log) return;
    this.options.log.warn(
      {
        peer: this.options.name,
        op,
        error: safeError(err, this.secrets),
        ...(op === 'connect' ? {} : { attempt: this.failures + 1 }),
        ...(gate.repeated > 0 ? { repeated: gate.repeated } : {}),
      },
      op === 'connect' ? 'Failed to connect to a peer' : 'Failed to reach a peer',
    );
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wake?.();
      return;
    }
    this.running = true;
    this.idle = this.run().finally(() => {
      this.running = false;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.repairWanted !== undefined) {
        if (this.client.status !== 'ready') {
          await this.sleep(backoffDelay(PEER_BACKOFF, this.failures++));
          continue;
        }
        const generation = this.repairGeneration;
        const reason = this.repairWanted;
        const routes = [...this.repairRoutes.values()];
        try {
          await this.repair(reason, routes);
          this.reached();
          if (generation === this.repairGeneration) {
            this.repairWanted = undefined;
            this.options.metrics.repairPending(this.options.name, false);
            this.repairRoutes.clear();
            this.failures = 0;
          }
        } catch (err) {
          this.fail('repair', err);
          await this.sleep(backoffDelay(PEER_BACKOFF, this.failures++));
        }
        continue;
      }
      const batch = this.pending.take(this.options.maxBatch);
      if (batch === undefined) break;
      try {
        const replies = await this.redis.relay(
          batch.keys,
          batch.versions,
          this.options.tombstoneTtlMs,
          this.options.channel,
          this.options.messages.keys(batch.route, batch.keys, batch.versions),
        );
        this.reached();
        const invalidated = replies.filter((r) => r === 1).length;
        this.relayed += batch.keys.length;
        const { metrics, name } = this.options;
        metrics.message(name, 'keys');
        metrics.relayedKeys(name, 'invalidated', invalidated);
        metrics.relayedKeys(name, 'kept-newer', batch.keys.length - invalidated);
        metrics.lag(name, Math.max(0, this.now() - batch.oldestReceivedMs) / 1000);
      } catch (err) {
        // The script may or may not have run: the peer is repaired as after a gap.
        this.fail('relay', err);
        this.requestRepair('relay-failed');
      }
    }
  }

  private async repair(reason: RepairReason, routes: readonly Route[]): Promise<void> {
    const started = this.now();
    const threshold = await this.options.versionNow();
    const dropped = await this.redis.dropOlder(threshold);
    for (const route of routes) {
      await this.redis.publish(this.options.channel, this.options.messages.all(route));
      this.options.metrics.message(this.options.name, 'all');
    }
    this.repairs++;
    this.options.metrics.repair(this.options.name, reason, dropped);
    this.options.log.info(
      { peer: this.options.name, reason, threshold, droppedRecords: dropped, ms: this.now() - started },
      'Repaired a peer',
    );
  }

  /** A call failed: the peer is not reachable until one succeeds. */
  private fail(op: 'relay' | 'repair', err: unknown): void {
    this.report(op, err);
    this.setUp(false);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}
