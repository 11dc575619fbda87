/**
 * A real Redis Cluster on loopback: `shards` primaries with `replicas` replicas each, every one a
 * `redis-server --cluster-enabled yes` process (test/harness/redis.ts) with its cluster bus on a port of its
 * own, bootstrapped here — CLUSTER MEET, CLUSTER ADDSLOTSRANGE (16384 slots split evenly), CLUSTER
 * REPLICATE — with a short `cluster-node-timeout` so that a killed primary is failed over in seconds.
 *
 * Helpers: kill / restart one node (its nodes.conf survives, so it rejoins with its identity; data is not
 * persisted, so a restarted primary comes back as a replica of its promoted one), the current primaries,
 * and `moveSlots`: a slot move done the way an operator reshards (SETSLOT IMPORTING/MIGRATING, MIGRATE in
 * batches, SETSLOT NODE on every primary), so that clients see MOVED/ASK while it runs.
 */
import { Redis } from 'ioredis';
import { startRedis, type RedisProcess } from './redis.js';
import { freePort, waitFor } from './ports.js';

export const CLUSTER_SLOTS = 16384;

export interface ClusterNodeProcess {
  readonly port: number;
  readonly busPort: number;
  readonly process: RedisProcess;
  /** The node id (CLUSTER MYID). */
  readonly id: string;
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'slave';
  /** The primary's id for a replica. */
  masterId: string | undefined;
  failed: boolean;
  /** Slot ranges [lo, hi] (primaries). */
  slots: [number, number][];
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNodeProcess[];
  /** `redis://127.0.0.1:<port of node 0>`: a seed address. */
  readonly seedUrl: string;
  /** CLUSTER NODES as seen by a live node. */
  topology(): Promise<ClusterNodeInfo[]>;
  /** The port of the primary that owns `slot` now. */
  ownerOf(slot: number): Promise<number>;
  /** SIGKILLs the node on `port`. */
  kill(port: number): Promise<void>;
  /** Starts the node on `port` again (same data dir and nodes.conf). */
  restart(port: number): Promise<void>;
  /** Waits until every live node reports cluster_state:ok and all 16384 slots assigned. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Moves `slots` to the primary on `toPort` (each from its current owner), MIGRATEing `batch` keys at a
   * time. Answers the keys moved.
   */
  moveSlots(slots: readonly number[], toPort: number, batch?: number, pauseMs?: number): Promise<number>;
  /** A plain connection to one node (closed by stop()). */
  client(port: number): Redis;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  shards: number;
  replicas: number;
  /** `cluster-node-timeout`, ms. Default 2000. */
  nodeTimeoutMs?: number;
}

/** Parses CLUSTER NODES. Pure. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const [id, addr, flags, master] = f as [string, string, string, string];
    const port = Number(addr.split('@')[0]?.split(':').pop());
    const flagList = flags.split(',');
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // migrating/importing markers
      const [lo, hi] = s.split('-').map(Number) as [number, number | undefined];
      slots.push([lo, hi ?? lo]);
    }
    out.push({
      id,
      port,
      role: flagList.includes('master') ? 'master' : 'slave',
      masterId: master === '-' ? undefined : master,
      failed: flagList.includes('fail') || flagList.includes('noaddr'),
      slots,
    });
  }
  return out;
}

export async function startRedisCluster(options: RedisClusterOptions): Promise<RedisCluster> {
  const nodeTimeout = options.nodeTimeoutMs ?? 2000;
  const total = options.shards * (1 + options.replicas);
  const procs: { port: number; busPort: number; process: RedisProcess }[] = [];
  const clients = new Map<number, Redis>();
  const client = (port: number): Redis => {
    let c = clients.get(port);
    if (c === undefined) {
      c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false, retryStrategy: () => 100 });
      c.on('error', () => {});
      clients.set(port, c);
    }
    return c;
  };
  const ids: string[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const busPort = await freePort();
      const process = await startRedis({
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-node-timeout',
          String(nodeTimeout),
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-announce-ip',
          '127.0.0.1',
        ],
      });
      procs.push({ port: process.port, busPort, process });
    }
    for (const p of procs) ids.push(String(await client(p.port).call('CLUSTER', 'MYID')));
    const first = procs[0] as (typeof procs)[number];
    for (const p of procs.slice(1)) {
      await client(first.port).call('CLUSTER', 'MEET', '127.0.0.1', String(p.port), String(p.busPort));
    }
    await waitFor(
      'every cluster node to know every other',
      async () => {
        for (const p of procs) {
          const known = parseClusterNodes(String(await client(p.port).call('CLUSTER', 'NODES')));
          if (known.length < total) return false;
        }
        return true;
      },
      30_000,
      100,
    );
    for (let s = 0; s < options.shards; s++) {
      const lo = Math.floor((s * CLUSTER_SLOTS) / options.shards);
      const hi = Math.floor(((s + 1) * CLUSTER_SLOTS) / options.shards) - 1;
      await client((procs[s] as (typeof procs)[number]).port).call('CLUSTER', 'ADDSLOTSRANGE', String(lo), String(hi));
    }
    for (let r = 0; r < options.replicas; r++) {
      for (let s = 0; s < options.shards; s++) {
        const replica = procs[options.shards * (1 + r) + s] as (typeof procs)[number];
        const masterId = ids[s] as string;
        // The replica must have heard of the primary as a primary (gossip) before it can follow it.
        await waitFor(
          `node ${replica.port} to see ${masterId} as a primary`,
          async () => {
            try {
              await client(replica.port).call('CLUSTER', 'REPLICATE', masterId);
              return true;
            } catch {
              return false;
            }
          },
          30_000,
          100,
        );
      }
    }
  } catch (err) {
    for (const c of clients.values()) c.disconnect();
    await Promise.all(procs.map((p) => p.process.stop()));
    throw err;
  }
  const nodes: ClusterNodeProcess[] = procs.map((p, i) => ({ ...p, id: ids[i] as string }));
  function topologyFrom(port: number): Promise<ClusterNodeInfo[]> {
    return client(port)
      .call('CLUSTER', 'NODES')
      .then((t) => parseClusterNodes(String(t)));
  }
  const dead = new Set<number>();
  const live = () => nodes.filter((n) => !dead.has(n.port));
  const topology = async (): Promise<ClusterNodeInfo[]> => {
    let lastErr: unknown;
    for (const n of live()) {
      try {
        return await topologyFrom(n.port);
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error('no live cluster node');
  };
  const ownerOf = async (slot: number): Promise<number> => {
    const t = await topology();
    const owner = t.find(
      (n) => n.role === 'master' && !n.failed && n.slots.some(([lo, hi]) => slot >= lo && slot <= hi),
    );
    if (!owner) throw new Error(`no primary owns slot ${slot}`);
    return owner.port;
  };
  const waitHealthy = async (timeoutMs = 60_000) => {
    await waitFor(
      'the Redis Cluster to be healthy (cluster_state:ok, 16384 slots, every node)',
      async () => {
        for (const n of live()) {
          const info = String(await client(n.port).call('CLUSTER', 'INFO'));
          if (!info.includes('cluster_state:ok') || !info.includes(`cluster_slots_assigned:${CLUSTER_SLOTS}`))
            return false;
        }
        return true;
      },
      timeoutMs,
      200,
    );
  };
  await waitHealthy();
  return {
    nodes,
    seedUrl: `redis://127.0.0.1:${(nodes[0] as ClusterNodeProcess).port}`,
    topology,
    ownerOf,
    kill: async (port) => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on ${port}`);
      dead.add(port);
      clients.get(port)?.disconnect();
      clients.delete(port);
      await n.process.kill();
    },
    restart: async (port) => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on ${port}`);
      await n.process.start();
      dead.delete(port);
    },
    waitHealthy,
    moveSlots: async (slots, toPort, batch = 100, pauseMs = 0) => {
      const pause = () => (pauseMs > 0 ? new Promise((r) => setTimeout(r, pauseMs)) : Promise.resolve());
      const t = await topology();
      const target = t.find((n) => n.port === toPort);
      if (!target || target.role !== 'master') throw new Error(`${toPort} is not a primary`);
      let moved = 0;
      for (const slot of slots) {
        const fromPort = await ownerOf(slot);
        if (fromPort === toPort) continue;
        const source = t.find((n) => n.port === fromPort) as ClusterNodeInfo;
        const to = client(toPort);
        const from = client(fromPort);
        await to.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
        await pause();
        await from.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
        await pause();
        for (;;) {
          const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', String(slot), String(batch))) as string[];
          if (keys.length === 0) break;
          await from.call('MIGRATE', '127.0.0.1', String(toPort), '', '0', '10000', 'KEYS', ...keys);
          moved += keys.length;
          await pause();
        }
        // The target first (so that it answers for the slot before the source redirects there), then the
        // source, then every other primary (gossip would tell them too, later).
        await to.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
        await pause();
        await from.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
        for (const n of t) {
          if (n.role !== 'master' || n.failed || n.port === toPort || n.port === fromPort || dead.has(n.port)) continue;
          await client(n.port)
            .call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id)
            .catch(() => {});
        }
      }
      return moved;
    },
    client,
    stop: async () => {
      for (const c of clients.values()) c.disconnect();
      clients.clear();
      await Promise.all(nodes.map((n) => n.process.stop()));
    },
  };
}
