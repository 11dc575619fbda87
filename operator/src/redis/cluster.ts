/**
 * Redis Cluster administration for topology `cluster`: reading each node's view (CLUSTER MYID / NODES / INFO,
 * and INFO replication for whether a replica has synced),
 * its announce address (CONFIG SET cluster-announce-ip / -port), CLUSTER MEET, ADDSLOTSRANGE, REPLICATE, FORGET,
 * RESET, and moving one slot between primaries (SETSLOT IMPORTING / MIGRATING, MIGRATE in batches of keys,
 * SETSLOT NODE). Every write asks `beforeWrite` (the leadership fence) right before it is sent, as live-config.ts.
 * A `ClusterSession` keeps one connection per node for the length of one reconcile (a slot move sends many
 * commands); `close()` ends them.
 */
import { Redis } from 'ioredis';
import { parseClusterInfo, parseClusterNodes, type ClusterNodeEntry } from './cluster-nodes.js';
import { describe, type LiveConfigOptions, type PodEndpoint } from './live-config.js';
import { parseReplicationInfo } from './replication.js';

/** What one node reported. */
export interface ClusterNodeView {
  myId: string;
  nodes: ClusterNodeEntry[];
  state: string;
  /**
   * A replica's own answer to `INFO replication`: its link to its primary is up and no full sync is
   * loading (`master_link_status:up`, `master_sync_in_progress:0`). Absent for a primary.
   */
  replicaSynced?: boolean;
}

/** Thrown when a cluster command failed (the node's answer or the connection error, never a password). */
export class ClusterCommandError extends Error {
  override readonly name = 'ClusterCommandError';
  readonly code = 'ClusterCommandFailed';
}

/** Why `beforeWrite` refused: rethrown as is. */
class Refused extends Error {
  constructor(readonly reason: unknown) {
    super('write refused', { cause: reason });
  }
}

/** The outcome of moving one slot. */
export interface SlotMoveResult {
  keys: number;
}

/** Called after each step of a slot move (test hook: pause an operator in the middle of a move). */
export type SlotMoveStep = 'importing' | 'migrating' | 'batchMoved' | 'keysMoved' | 'targetAssigned' | 'assigned';

export class ClusterSession {
  private readonly clients = new Map<string, Redis>();

  constructor(private readonly opts: LiveConfigOptions = {}) {}

  private async client(ep: PodEndpoint): Promise<Redis> {
    const key = `${ep.host}:${ep.port}`;
    const existing = this.clients.get(key);
    if (existing) return existing;
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const r = new Redis({
      host: ep.host,
      port: ep.port,
      password: this.opts.password,
      lazyConnect: true,
      connectTimeout: timeoutMs,
      commandTimeout: Math.max(timeoutMs, 10_000),
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      connectionName: 'ripplecache-operator',
    });
    r.on('error', () => {
      /* reported through the rejected command */
    });
    this.clients.set(key, r);
    try {
      await r.connect();
    } catch (err) {
      this.clients.delete(key);
      r.disconnect();
      throw err;
    }
    return r;
  }

  private async read(ep: PodEndpoint, args: string[]): Promise<unknown> {
    try {
      return await (await this.client(ep)).call(args[0]!, ...args.slice(1));
    } catch (err) {
      this.drop(ep);
      throw new ClusterCommandError(`${args.slice(0, 3).join(' ')} on ${ep.pod}: ${describe(err)}`, { cause: err });
    }
  }

  private async write(ep: PodEndpoint, args: string[], shown = args.slice(0, 3).join(' ')): Promise<unknown> {
    try {
      const r = await this.client(ep);
      try {
        this.opts.beforeWrite?.();
      } catch (err) {
        throw new Refused(err);
      }
      // Sent within this call: nothing runs between the fence check and the write.
      return await r.call(args[0]!, ...args.slice(1));
    } catch (err) {
      if (err instanceof Refused) throw err.reason;
      this.drop(ep);
      throw new ClusterCommandError(`${shown} on ${ep.pod}: ${describe(err)}`, { cause: err });
    }
  }

  private drop(ep: PodEndpoint): void {
    const key = `${ep.host}:${ep.port}`;
    this.clients.get(key)?.disconnect();
    this.clients.delete(key);
  }

  /**
   * Sets the node's announce address when it differs (CONFIG GET, then CONFIG SET, both live), then reads its
   * view. Undefined when the node cannot be reached or is not in cluster mode.
   */
  async observe(ep: PodEndpoint, announce: { ip: string; port: number } | undefined): Promise<ClusterNodeView> {
    if (announce) {
      const ip = (await this.read(ep, ['CONFIG', 'GET', 'cluster-announce-ip'])) as string[];
      if (ip[1] !== announce.ip) await this.write(ep, ['CONFIG', 'SET', 'cluster-announce-ip', announce.ip]);
      const port = (await this.read(ep, ['CONFIG', 'GET', 'cluster-announce-port'])) as string[];
      if (Number(port[1]) !== announce.port && !(Number(port[1]) === 0 && announce.port === ep.port))
        await this.write(ep, ['CONFIG', 'SET', 'cluster-announce-port', String(announce.port)]);
    }
    const myId = String(await this.read(ep, ['CLUSTER', 'MYID']));
    const nodes = parseClusterNodes(String(await this.read(ep, ['CLUSTER', 'NODES'])));
    const info = parseClusterInfo(String(await this.read(ep, ['CLUSTER', 'INFO'])));
    const replication = parseReplicationInfo(ep.pod, String(await this.read(ep, ['INFO', 'replication'])));
    return {
      myId,
      nodes,
      state: info.cluster_state ?? 'unknown',
      ...(replication.reachable && replication.role === 'replica'
        ? { replicaSynced: replication.linkUp === true && replication.syncInProgress !== true }
        : {}),
    };
  }

  /** `CLUSTER MEET host port` sent to `ep`. */
  async meet(ep: PodEndpoint, target: { host: string; port: number }): Promise<void> {
    await this.write(ep, ['CLUSTER', 'MEET', target.host, String(target.port)]);
  }

  async addSlotsRange(ep: PodEndpoint, ranges: Array<[number, number]>): Promise<void> {
    await this.write(ep, ['CLUSTER', 'ADDSLOTSRANGE', ...ranges.flatMap(([a, b]) => [String(a), String(b)])]);
  }

  async replicate(ep: PodEndpoint, primaryId: string): Promise<void> {
    await this.write(ep, ['CLUSTER', 'REPLICATE', primaryId]);
  }

  /** `CLUSTER FORGET id` (an unknown id is not an error: already forgotten). */
  async forget(ep: PodEndpoint, id: string): Promise<void> {
    try {
      await this.write(ep, ['CLUSTER', 'FORGET', id]);
    } catch (err) {
      if (err instanceof ClusterCommandError && /Unknown node/i.test(err.message)) return;
      throw err;
    }
  }

  /** `CLUSTER SETSLOT slot STABLE`: clears the node's MIGRATING/IMPORTING state of the slot (its keys stay). */
  async setSlotStable(ep: PodEndpoint, slot: number): Promise<void> {
    await this.write(ep, ['CLUSTER', 'SETSLOT', String(slot), 'STABLE']);
  }

  /** `CLUSTER RESET HARD`: the node forgets every other node (a removed shard's node stops gossiping). */
  async reset(ep: PodEndpoint): Promise<void> {
    await this.write(ep, ['CLUSTER', 'RESET', 'HARD']);
  }

  /**
   * Moves one slot from `source` to `target`: SETSLOT IMPORTING on the target, MIGRATING on the source, then
   * GETKEYSINSLOT / MIGRATE … KEYS (batches of `batchKeys`, REPLACE: a key on the source is the live one) until
   * the slot is empty on the source, then SETSLOT NODE on the target, the source, and every other primary
   * (best effort: gossip spreads it too). Repeating a step already done is harmless, so a move left half-way by
   * a killed operator is finished by calling this again, from any step: when the target owns the slot already
   * (its SETSLOT NODE was sent), IMPORTING/MIGRATING are skipped and any key left on the source still moves
   * before the source's SETSLOT NODE. Clients follow ASK while the keys move.
   */
  async moveSlot(
    move: { slot: number; source: PodEndpoint; sourceId: string; target: PodEndpoint; targetId: string },
    others: PodEndpoint[],
    batchKeys: number,
    afterStep?: (step: SlotMoveStep) => Promise<void>,
  ): Promise<SlotMoveResult> {
    const { slot, source, target } = move;
    const s = String(slot);
    // A move resumed after the target already took the slot over: only the SETSLOT NODE steps are left.
    const ownerAlready = (err: unknown) => err instanceof ClusterCommandError && /already the owner/i.test(err.message);
    const notOwner = (err: unknown) => err instanceof ClusterCommandError && /not the owner/i.test(err.message);
    let done = false;
    try {
      await this.write(target, ['CLUSTER', 'SETSLOT', s, 'IMPORTING', move.sourceId]);
      await afterStep?.('importing');
    } catch (err) {
      if (!ownerAlready(err)) throw err;
      done = true;
    }
    if (!done) {
      await this.write(source, ['CLUSTER', 'SETSLOT', s, 'MIGRATING', move.targetId]);
      await afterStep?.('migrating');
    }
    let keys = 0;
    const auth = this.opts.password !== undefined ? ['AUTH', this.opts.password] : [];
    // Also when the target owns the slot already: keys the source still holds go too (SETSLOT NODE on the
    // source refuses while it holds any), and an empty slot costs one GETKEYSINSLOT.
    for (;;) {
      const batch = (await this.read(source, ['CLUSTER', 'GETKEYSINSLOT', s, String(batchKeys)])) as string[];
      if (batch.length === 0) break;
      await this.write(
        source,
        ['MIGRATE', target.host, String(target.port), '', '0', '5000', 'REPLACE', ...auth, 'KEYS', ...batch],
        `MIGRATE ${batch.length} keys of slot ${slot}`,
      );
      keys += batch.length;
      await afterStep?.('batchMoved');
    }
    await afterStep?.('keysMoved');
    await this.write(target, ['CLUSTER', 'SETSLOT', s, 'NODE', move.targetId]);
    await afterStep?.('targetAssigned');
    await this.write(source, ['CLUSTER', 'SETSLOT', s, 'NODE', move.targetId]).catch((err: unknown) => {
      if (!notOwner(err)) throw err;
    });
    for (const ep of others)
      await this.write(ep, ['CLUSTER', 'SETSLOT', s, 'NODE', move.targetId]).catch(() => undefined);
    await afterStep?.('assigned');
    return { keys };
  }

  close(): void {
    for (const r of this.clients.values()) r.disconnect();
    this.clients.clear();
  }
}
