/**
 * `--durability replicated`: after the Redis step of a write (a write-back journal append, a versioned
 * record write), wait until at least one replica has it — `WAIT 1 <timeoutMs>` on the connection that
 * wrote it — before the write is acknowledged. Fewer than one replica in time: the write is answered 503
 * {@link ReplicationTimeoutError}, nothing is acknowledged.
 *
 * WAIT covers every write the connection sent before it (Redis compares the replicas' acknowledged offset
 * with the connection's last write offset), so the waits asked for during one turn of the event loop — after
 * their writes were answered — share one WAIT sent at the end of the turn (group commit, as the write-back
 * append does): one round trip, not one per write. A WAIT blocks its connection (commands behind it on
 * the same connection wait too): the write path runs on a connection of its own under `replicated`
 * (app.ts), with a command time box of `--redis-timeout-ms` + `--durability-timeout-ms`.
 *
 * On Redis Cluster (`--redis-cluster`) WAIT has no key and counts the replicas of the node it is sent to:
 * each wait names the keys it covers, and the WAIT goes on the Cluster client's connection to the primary
 * of each key's slot (the connection that carried the write), one WAIT per node per turn; a wait resolves
 * when every node it needs answered enough replicas. So `replicated` holds per shard.
 */
import type { Redis } from 'ioredis';
import { RedisUnavailableError, ReplicationTimeoutError } from '../errors.js';
import { callRedis, isCluster, type RedisClient } from './redis-client.js';

/** How a WAIT ended: enough replicas acknowledged, too few in time, or Redis failed (not connected …). */
export type WaitOutcome = 'acknowledged' | 'timeout' | 'error';

export interface ReplicaWaitEvents {
  /** One per WAIT sent: its outcome, seconds until it was answered, and how many writes it covered. */
  waited(outcome: WaitOutcome, seconds: number, writes: number): void;
}

export interface ReplicaWaiterOptions {
  /** The connection the writes were sent on. */
  client: RedisClient;
  /** On Redis Cluster: the hash slot of a cache key's data (key-layout.ts: its bucket's slot). */
  slotOf?: (key: string) => number;
  /** Longest wait, ms (`--durability-timeout-ms`). */
  timeoutMs: number;
  /** Replicas that must acknowledge. Default 1. */
  replicas?: number;
  events?: ReplicaWaitEvents;
  /** Called once for every failed Redis call (metrics). */
  onError?: (err: unknown) => void;
  /** Monotonic clock in ms, for the wait's duration. Default `performance.now`. */
  clock?: () => number;
  /** How a WAIT is deferred to the end of the turn. Default `setImmediate`. */
  schedule?: (send: () => void) => void;
}

interface Waiting {
  resolve(): void;
  reject(err: unknown): void;
  /** Cluster: the primaries (their `host:port`) whose WAIT this wait needs. */
  nodes: string[];
}

export class ReplicaWaiter {
  readonly timeoutMs: number;
  readonly replicas: number;
  private queue: Waiting[] = [];
  private scheduled = false;
  private readonly schedule: (send: () => void) => void;
  private readonly clock: () => number;

  constructor(private readonly options: ReplicaWaiterOptions) {
    this.timeoutMs = options.timeoutMs;
    this.replicas = options.replicas ?? 1;
    this.schedule = options.schedule ?? ((send) => void setImmediate(send));
    this.clock = options.clock ?? (() => performance.now());
  }

  /**
   * Resolves once `replicas` replicas acknowledged every write this connection sent before the call;
   * rejects with {@link ReplicationTimeoutError} when fewer did within the timeout, or with the
   * SidecarError of a failed Redis call. Call it only after the write was answered.
   */
  wait(keys: readonly string[] = []): Promise<void> {
    let nodes: string[] = [''];
    const { client, slotOf } = this.options;
    if (isCluster(client) && slotOf !== undefined) {
      nodes = [...new Set(keys.map((k) => client.slots[slotOf(k)]?.[0] ?? '?'))];
      if (nodes.length === 0) return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ resolve, reject, nodes });
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => void this.send());
      }
    });
  }

  private async send(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const { client } = this.options;
    if (!isCluster(client)) return this.sendTo(client, batch);
    // One WAIT per primary, on the Cluster client's own connection to it.
    const byNode = new Map<string, Waiting[]>();
    for (const w of batch) for (const n of w.nodes) byNode.set(n, [...(byNode.get(n) ?? []), w]);
    const outcomes = new Map<Waiting, { left: number; error?: unknown }>();
    for (const w of batch) outcomes.set(w, { left: w.nodes.length });
    const masters = new Map(client.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
    await Promise.all(
      [...byNode].map(async ([node, waiting]) => {
        const conn = masters.get(node);
        const perNode = waiting.map((w) => ({
          w,
          resolve: () => {},
          reject: (err: unknown) => {
            const o = outcomes.get(w);
            if (o && o.error === undefined) o.error = err;
          },
        }));
        if (conn === undefined) {
          for (const p of perNode) p.reject(new RedisUnavailableError(`wait for a replica: no connection to ${node}`));
        } else {
          await this.sendTo(
            conn,
            perNode.map((p) => ({ resolve: p.resolve, reject: p.reject, nodes: [node] })),
          );
        }
        for (const { w } of perNode) {
          const o = outcomes.get(w) as { left: number; error?: unknown };
          if (--o.left === 0) {
            if (o.error === undefined) w.resolve();
            else w.reject(o.error);
          }
        }
      }),
    );
  }

  private async sendTo(client: Redis, batch: Waiting[]): Promise<void> {
    const { events } = this.options;
    const started = this.clock();
    let acked: number;
    try {
      acked = Number(
        await callRedis(
          'wait for a replica',
          () => client.call('WAIT', String(this.replicas), String(this.timeoutMs)),
          this.options.onError ?? (() => {}),
        ),
      );
    } catch (err) {
      events?.waited('error', (this.clock() - started) / 1000, batch.length);
      for (const w of batch) w.reject(err);
      return;
    }
    const seconds = (this.clock() - started) / 1000;
    if (acked >= this.replicas) {
      events?.waited('acknowledged', seconds, batch.length);
      for (const w of batch) w.resolve();
      return;
    }
    events?.waited('timeout', seconds, batch.length);
    const err = new ReplicationTimeoutError(
      `${acked} of ${this.replicas} replica(s) acknowledged the write within ${this.timeoutMs} ms ` +
        '(--durability replicated): it was not acknowledged; retry',
    );
    for (const w of batch) w.reject(err);
  }
}
