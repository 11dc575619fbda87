/**
 * The cross-cluster invalidation bridge of one CacheCluster: subscribes to the local invalidation channel
 * and relays every local write's keys to each peer (peer-link.ts), with the version of the write read from
 * the local record (`ver`, see ../redis/versioned-records.ts), so that a peer never loses a newer record.
 *
 * Versions: the invalidation message carries none. The bridge reads each key's record in the local Redis
 * right after the message arrives (one script per batch of keys). The script that wrote the record
 * published the message, so the record holds the write's version or a newer one (a later write, whose own
 * message follows): the version relayed is never older than the write. A record that is gone (expired,
 * evicted, flushed) gives the local version counter instead: no write acknowledged so far is newer.
 *
 * Lost local messages (a gap in a local sender's sequence, a lost subscription, a malformed message) and a
 * local invalidate-all: every peer is repaired (peer-link.ts).
 *
 * Redis Cluster, on either side (bridge-redis.ts): a local Redis Cluster is subscribed to on one node (a
 * cluster-wide PUBLISH reaches every node), its sidecars' messages are numbered per (sender, bucket) (`b`,
 * tracked by relay-plan.ts), and its records and counters are read per bucket; a Redis Cluster peer is
 * relayed to one script per bucket, then one message.
 *
 * Messages another cluster's bridge relayed here are forwarded to the peers they have not visited, with
 * the versions they carry (relay-plan.ts `forwardPlan`): keys are relayed, an invalidate-all is forwarded
 * as a repair of those peers. Peers a route of 64 clusters has no room for are not forwarded to: counted
 * (`ripplecache_bridge_forwards_dropped_total{peer}`) and logged at warn (at most once a minute).
 *
 * The local Redis's connections (commands, subscription): each error is counted
 * (`errors_total{peer="local",op="connect"}`) and logged at warn, secrets redacted, the first of an episode,
 * any other message, otherwise once a minute (error-report.ts); nothing goes to stderr outside the log.
 */
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { describeError } from '../errors.js';
import { ErrorLogGate, errorText, safeError } from './error-report.js';
import { whenReady, type RedisClient } from '../redis/redis-client.js';
import type { KeyLayout } from '../write/key-layout.js';
import { DEFAULT_VERSION_KEY } from '../redis/versioned-records.js';
import { BridgeRedis } from './bridge-redis.js';
import type { BridgeMetrics } from './bridge-metrics.js';
import { PeerLink, type PeerStatus } from './peer-link.js';
import {
  LocalMessageClassifier,
  PendingKeys,
  RelayedMessages,
  forwardPlan,
  localRoute,
  type RepairReason,
  type Route,
} from './relay-plan.js';
import type { InvalidationMessage } from '../../../common/src/invalidation-message.js';

/** How long a repair waits for a local client that is not ready yet before using the local clock, ms. */
const LOCAL_READY_WAIT_MS = 5000;

export interface BridgePeer {
  name: string;
  /** One server, or (with the bucketed `layout`) a Redis Cluster client. */
  client: RedisClient;
  /** The peer's key layout (default SINGLE_LAYOUT): bucketedLayout() for a Redis Cluster peer. */
  layout?: KeyLayout;
  channel: string;
}

export interface BridgeOptions {
  /**
   * This CacheCluster's name, carried as `origin` in relayed messages (e.g. `namespace/name`). Peers are
   * named by their own cluster names for relaying through them (relay-plan.ts).
   */
  cluster: string;
  /** Sender id of the relayed messages (one per process start). */
  senderId: string;
  channel: string;
  /** Commands on the local primary, or a Cluster client for a Redis Cluster (with the bucketed `localLayout`). */
  local: RedisClient;
  /** The local key layout (default SINGLE_LAYOUT): bucketedLayout() for a local Redis Cluster. */
  localLayout?: KeyLayout;
  /**
   * The local subscription's own connection: to the primary, or on a Redis Cluster to any one node (a
   * cluster-wide PUBLISH reaches the subscribers of every node).
   */
  subscriber: Redis;
  peers: readonly BridgePeer[];
  /** Keys per relay call at most. Default 500. */
  maxBatch?: number;
  /** Keys waiting per peer at most before it is repaired instead. Default 100,000. */
  maxPending?: number;
  /** Life of the tombstones written in peers, ms. Default 60,000 (the sidecars' default). */
  tombstoneTtlMs?: number;
  /** The local version counter in the single layout. Default `ripplecache:version`; bucketed: per bucket. */
  versionKey?: string;
  /** PING period of the subscription, ms. Default 1000. */
  heartbeatMs?: number;
  metrics: BridgeMetrics;
  log: FastifyBaseLogger;
  /** Passwords never to show in an error reported (local, peers'); URLs' credentials are always taken out. */
  secrets?: readonly string[];
}

export class Bridge {
  private readonly classifier = new LocalMessageClassifier();
  private readonly incoming: PendingKeys;
  private readonly links: PeerLink[];
  private readonly local: BridgeRedis;
  private readonly maxBatch: number;
  private readonly route: Route;
  private localWasReady = false;
  private subscribedNow = false;
  private everSubscribed = false;
  private looking = false;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly localErrors = { commands: new ErrorLogGate(), subscription: new ErrorLogGate() };
  private readonly forwardLog = new ErrorLogGate();

  constructor(private readonly options: BridgeOptions) {
    // At once, so that no error of either local connection goes unheard (ioredis prints unhandled ones).
    this.watchLocal(options.local, 'commands');
    this.watchLocal(options.subscriber, 'subscription');
    this.local = new BridgeRedis(options.local, options.localLayout, options.versionKey ?? DEFAULT_VERSION_KEY);
    if (options.local.status === 'ready') this.localWasReady = true;
    else
      options.local.once('ready', () => {
        this.localWasReady = true;
      });
    this.maxBatch = options.maxBatch ?? 500;
    const maxPending = options.maxPending ?? 100_000;
    this.incoming = new PendingKeys(maxPending);
    this.route = localRoute(
      options.cluster,
      options.peers.map((p) => p.name),
    );
    this.links = options.peers.map(
      (p) =>
        new PeerLink({
          name: p.name,
          client: p.client,
          ...(p.layout !== undefined ? { layout: p.layout } : {}),
          channel: p.channel,
          messages: new RelayedMessages(options.senderId),
          localRoute: this.route,
          versionNow: () => this.versionNow(),
          maxBatch: this.maxBatch,
          maxPending,
          tombstoneTtlMs: options.tombstoneTtlMs ?? 60_000,
          metrics: options.metrics,
          log: options.log,
          secrets: options.secrets ?? [],
        }),
    );
  }

  /** Counts and logs (through a gate) the errors of a local connection; says when it is back. */
  private watchLocal(client: RedisClient, connection: 'commands' | 'subscription'): void {
    const gate = this.localErrors[connection];
    const secrets = this.options.secrets ?? [];
    client.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.options.metrics.error('local', 'connect');
      const verdict = gate.check(errorText(err, secrets), Date.now());
      if (!verdict.log) return;
      this.options.log.warn(
        {
          connection,
          error: safeError(err, secrets),
          ...(verdict.repeated > 0 ? { repeated: verdict.repeated } : {}),
        },
        'Failed to connect to the local Redis',
      );
    });
    client.on('ready', () => {
      if (!gate.failing) return;
      gate.reset();
      this.options.log.info({ connection }, 'Connected to the local Redis again');
    });
  }

  get subscribed(): boolean {
    return this.subscribedNow;
  }

  /** Subscribed locally and every peer reachable and repaired. */
  get ready(): boolean {
    return this.subscribedNow && this.links.every((l) => l.relaying);
  }

  peers(): PeerStatus[] {
    return this.links.map((l) => l.status());
  }

  start(): void {
    const sub = this.options.subscriber;
    sub.on('ready', () => this.subscribe());
    sub.on('close', () => this.lost('connection closed'));
    sub.on('message', (channel: string, raw: string) => {
      if (channel === this.options.channel) this.handle(raw);
    });
    if (sub.status === 'ready') this.subscribe();
    this.heartbeat = setInterval(() => {
      if (!this.subscribedNow) return;
      sub.ping().catch((err: unknown) => {
        this.options.log.warn({ error: describeError(err) }, 'Failed the subscription heartbeat');
        this.lost('heartbeat failed');
        sub.disconnect(true);
      });
    }, this.options.heartbeatMs ?? 1000);
    this.heartbeat.unref();
    // Every peer starts with a repair (reason "start"): what happened while no bridge ran is unknown.
    for (const link of this.links) link.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await Promise.all(this.links.map((l) => l.stop()));
  }

  /** The repair threshold: the local cluster's version now; the local clock if the local Redis cannot say. */
  async versionNow(): Promise<number> {
    try {
      // At the start the local client may still be connecting (a Redis Cluster client first reads the slot
      // map); nothing queues while it does, so wait for it a little rather than fall back to the clock. A
      // client that was connected once and lost its connection is not waited for.
      if (!this.localWasReady) await whenReady(this.options.local, LOCAL_READY_WAIT_MS);
      return await this.local.versionNow();
    } catch (err) {
      this.options.metrics.error('local', 'local');
      this.options.log.warn({ error: describeError(err) }, 'Failed to read the local version; using the local clock');
      return Date.now() * 1000;
    }
  }

  private subscribe(): void {
    if (this.stopped) return;
    this.options.subscriber.subscribe(this.options.channel).then(
      () => {
        if (this.subscribedNow) return;
        this.subscribedNow = true;
        this.options.metrics.subscribed(true);
        this.options.log.info({ channel: this.options.channel }, 'Subscribed to the local invalidation channel');
        if (this.everSubscribed) this.repairAll('resubscribed');
        this.everSubscribed = true;
      },
      (err: unknown) => {
        this.options.metrics.error('local', 'local');
        this.options.log.warn({ error: describeError(err) }, 'Failed to subscribe to the local invalidation channel');
        setTimeout(() => {
          if (!this.stopped) this.options.subscriber.disconnect(true);
        }, 1000).unref();
      },
    );
  }

  private lost(why: string): void {
    if (!this.subscribedNow) return;
    this.subscribedNow = false;
    this.options.metrics.subscribed(false);
    this.classifier.reset();
    this.options.log.warn({ reason: why }, 'Lost the local invalidation subscription');
  }

  private handle(raw: string): void {
    const verdict = this.classifier.classify(raw);
    const { metrics } = this.options;
    switch (verdict.kind) {
      case 'relayed':
        metrics.received(this.forward(verdict.message) ? 'forwarded' : 'relayed');
        return;
      case 'malformed':
        metrics.received('malformed');
        this.options.log.warn({ reason: verdict.reason }, 'Received a malformed invalidation message');
        this.repairAll('malformed-message');
        return;
      case 'all':
        metrics.received('all');
        if (verdict.gap) metrics.gap();
        this.repairAll(verdict.gap ? 'sequence-gap' : 'invalidate-all');
        return;
      case 'keys': {
        metrics.received('keys');
        if (verdict.gap) {
          metrics.gap();
          this.repairAll('sequence-gap');
          return;
        }
        const now = Date.now();
        for (const key of verdict.keys) this.incoming.add(key, 0, now);
        if (this.incoming.overflowed) {
          this.incoming.clear();
          this.repairAll('overflow');
          return;
        }
        if (!this.looking) {
          this.looking = true;
          void this.lookUp().finally(() => {
            this.looking = false;
          });
        }
        return;
      }
    }
  }

  /** Forwards a message relayed here to the peers it has not visited; false when it goes nowhere. */
  private forward(m: InvalidationMessage & { origin: string }): boolean {
    const plan = forwardPlan(
      this.options.cluster,
      this.links.map((l) => l.name),
      m.origin,
      m.visited,
    );
    if (plan === undefined) return false;
    if (plan.dropped.length > 0) this.routeFull(m, plan.dropped);
    if (plan.targets.length === 0) return false;
    const targets = this.links.filter((l) => plan.targets.includes(l.name));
    if ('all' in m) {
      for (const link of targets) link.requestRepair('relayed-invalidate-all', plan.route);
      return true;
    }
    if (m.vers === undefined) return false; // a one-hop bridge's message: no versions to forward
    const now = Date.now();
    for (const link of targets) link.enqueue(plan.route, m.keys, m.vers, now);
    return true;
  }

  /** Peers a relayed message cannot be forwarded to: its route has no room left for them. */
  private routeFull(m: InvalidationMessage & { origin: string }, dropped: readonly string[]): void {
    for (const peer of dropped) this.options.metrics.forwardDropped(peer);
    const verdict = this.forwardLog.check(`${m.origin}\n${dropped.join('\n')}`, Date.now());
    if (!verdict.log) return;
    this.options.log.warn(
      {
        origin: m.origin,
        visited: m.visited?.length ?? 0,
        dropped,
        ...(verdict.repeated > 0 ? { repeated: verdict.repeated } : {}),
      },
      'Did not forward a relayed message to peers it has not visited: its route would name more than 64 clusters',
    );
  }

  private repairAll(reason: RepairReason): void {
    this.incoming.clear();
    for (const link of this.links) link.requestRepair(reason);
  }

  /** Reads the versions of the waiting keys, one script per batch, and hands them to every peer. */
  private async lookUp(): Promise<void> {
    for (;;) {
      const batch = this.incoming.take(this.maxBatch);
      if (batch === undefined) return;
      let versions: number[];
      try {
        versions = await this.local.localVersions(batch.keys);
      } catch (err) {
        this.options.metrics.error('local', 'local');
        this.options.log.warn({ error: describeError(err) }, 'Failed to read local versions; repairing the peers');
        this.repairAll('local-unavailable');
        return;
      }
      for (const link of this.links) link.enqueue(this.route, batch.keys, versions, batch.oldestReceivedMs);
    }
  }
}
