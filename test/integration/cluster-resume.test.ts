/**
 * Resuming a slot move interrupted between any two of its steps, on real redis-servers in cluster mode (no
 * control plane: the operator's own planner, `planCluster`, and its Redis adapter, `ClusterSession`, driven the
 * way the cluster step drives them). A harness-run cluster of 4 shards × 1 replica is put off its even split
 * by a few slots holding keys; a first "operator" starts moving them back and dies (an exception out of the
 * move's step hook: nothing after that step is sent) right after one step — IMPORTING, MIGRATING, one MIGRATE
 * batch, all keys, the target's SETSLOT NODE (resumed at once, and again after gossip reached the source), all
 * SETSLOT NODE. A second one plans from what Redis reports and finishes. Each case checks that the plan made
 * after the kill resumes the interrupted slot (towards the same target), is not `settled`, and that the second
 * operator ends with an even split (4 × 4096), no slot MIGRATING/IMPORTING on any node, the plan `settled`, and
 * every key readable with its value.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  planCluster,
  reshardingStatus,
  type ClusterPlan,
  type ClusterPod,
} from '../../operator/src/reconcile/cluster-plan.js';
import { ClusterSession, type SlotMoveStep } from '../../operator/src/redis/cluster.js';
import type { PodEndpoint } from '../../operator/src/redis/live-config.js';
import { keySlot } from '../../sidecar/src/write/key-layout.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis-cluster.js';
import { waitFor } from '../harness/ports.js';

const SHARDS = 4;
/** Keys per unbalanced slot, MIGRATEd BATCH at a time (so that a kill after one batch leaves keys on both sides). */
const KEYS_PER_SLOT = 120;
const BATCH = 50;

let cluster: RedisCluster;
let client: Cluster;
/** Every key written, with its value. */
const written = new Map<string, string>();

class Killed extends Error {}

/** The harness nodes as pods: node i is pod `ordinal` floor(i / SHARDS) of shard i % SHARDS. */
function pods(): ClusterPod[] {
  return cluster.nodes.map((n, i) => ({
    pod: `rs-shard-${i % SHARDS}-${Math.floor(i / SHARDS)}`,
    shard: i % SHARDS,
    ordinal: Math.floor(i / SHARDS),
    endpoint: { host: '127.0.0.1', port: n.port },
  }));
}

async function observe(session: ClusterSession): Promise<{ plan: ClusterPlan; pods: ClusterPod[] }> {
  const ps = pods();
  for (const p of ps) p.view = await session.observe({ pod: p.pod, ...p.endpoint! }, undefined);
  return { plan: planCluster({ pods: ps, shards: SHARDS, existingShards: [0, 1, 2, 3] }), pods: ps };
}

/**
 * One reconcile's slot moves, as cluster-step.ts makes them: plan from Redis, then every planned move with the
 * shards' primaries. `killAfter` throws out of the first move right after that step. Answers the plan used.
 */
async function reconcile(killAfter?: SlotMoveStep): Promise<ClusterPlan> {
  const session = new ClusterSession({ timeoutMs: 5000 });
  try {
    const { plan, pods: ps } = await observe(session);
    expect(plan.actions, 'no MEET/FORGET/REPLICATE on a formed cluster').toEqual([]);
    const ep = (id: string): PodEndpoint => {
      const p = ps.find((x) => x.view?.myId === id)!;
      return { pod: p.pod, ...p.endpoint! };
    };
    const primaries = new Map([...plan.primaryIds].map(([shard, id]) => [shard, ep(id)]));
    let first = true;
    for (const m of plan.moves) {
      const source = primaries.get(m.from)!;
      const target = primaries.get(m.to)!;
      const hook = first && killAfter !== undefined;
      first = false;
      await session.moveSlot(
        { slot: m.slot, source, sourceId: plan.primaryIds.get(m.from)!, target, targetId: plan.primaryIds.get(m.to)! },
        [...primaries.values()].filter((x) => x !== source && x !== target),
        BATCH,
        hook
          ? async (step) => {
              if (step === killAfter) throw new Killed(`killed after ${step} of slot ${m.slot}`);
            }
          : undefined,
      );
    }
    return plan;
  } finally {
    session.close();
  }
}

/** A hash tag whose keys fall in `slot`. */
function tagFor(slot: number): string {
  for (let i = 0; ; i++) if (keySlot(`{t${i}}`) === slot) return `t${i}`;
}

async function nodesTables(): Promise<string[]> {
  return Promise.all(cluster.nodes.map(async (n) => String(await cluster.client(n.port).call('CLUSTER', 'NODES'))));
}

beforeAll(async () => {
  cluster = await startRedisCluster({ shards: SHARDS, replicas: 1, nodeTimeoutMs: 5000 });
  client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], {
    redisOptions: { maxRetriesPerRequest: 3 },
  });
  // The harness splits 4 ways evenly: the plan has nothing to do.
  const { plan } = await observe(new ClusterSession());
  expect(plan.settled).toBe(true);
}, 180_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

describe('a slot move resumed from any step by the next operator', () => {
  const cases: Array<{ step: SlotMoveStep; gossip?: boolean }> = [
    { step: 'importing' },
    { step: 'migrating' },
    { step: 'batchMoved' },
    { step: 'keysMoved' },
    { step: 'targetAssigned' },
    { step: 'targetAssigned', gossip: true },
    { step: 'assigned' },
  ];
  let round = 0;
  for (const c of cases) {
    it(`killed after ${c.step}${c.gossip ? ' (the source then hears of it by gossip)' : ''}: resumed to an even split, no key lost`, async () => {
      round++;
      // Off the even split: 3 slots of shard 1 go to shard 0 (its highest, which the plan gives back first),
      // each with KEYS_PER_SLOT keys.
      const session = new ClusterSession({ timeoutMs: 5000 });
      const { plan: before, pods: ps } = await observe(session);
      const shard1 = before.shards[1]!.slots.split(',').flatMap((r) => {
        const [a, b] = r.split('-').map(Number) as [number, number | undefined];
        return Array.from({ length: (b ?? a) - a + 1 }, (_, k) => a + k);
      });
      const slots = shard1.slice(-3);
      const ep = (id: string): PodEndpoint => {
        const p = ps.find((x) => x.view?.myId === id)!;
        return { pod: p.pod, ...p.endpoint! };
      };
      const [id0, id1] = [before.primaryIds.get(0)!, before.primaryIds.get(1)!];
      for (const slot of slots)
        await session.moveSlot(
          { slot, source: ep(id1), sourceId: id1, target: ep(id0), targetId: id0 },
          [2, 3].map((s) => ep(before.primaryIds.get(s)!)),
          BATCH,
        );
      session.close();
      for (const slot of slots) {
        const tag = tagFor(slot);
        for (let k = 0; k < KEYS_PER_SLOT; k++) {
          const key = `{${tag}}:${k}`;
          const value = `v${round}-${k}`;
          await client.set(key, value);
          written.set(key, value);
        }
      }

      // The first operator: dies after c.step of the first move.
      await expect(reconcile(c.step)).rejects.toBeInstanceOf(Killed);
      const killedSlot = slots[slots.length - 1]!; // the plan moves shard 0's highest slots back first
      if (c.gossip) {
        // Until the source's own view no longer claims the slot (the target's bumped epoch reached it).
        await waitFor(
          `the source to learn by gossip that shard 0 no longer owns slot ${killedSlot}`,
          async () => {
            const t = String(await cluster.client(cluster.nodes[0]!.port).call('CLUSTER', 'NODES'));
            const mine = t.split('\n').find((l) => l.includes('myself'))!;
            return !mine
              .split(' ')
              .slice(8)
              .some((r) => {
                if (r.startsWith('[')) return false;
                const [a, b] = r.split('-').map(Number) as [number, number | undefined];
                return killedSlot >= a && killedSlot <= (b ?? a);
              });
          },
          30_000,
          200,
        );
      }

      // What the next operator plans from Redis, once gossip let it plan moves: on a loaded machine the plan
      // may first wait for a node to learn the slot map (`waiting`), which is the planner doing its job.
      let resumed!: ClusterPlan;
      await waitFor(
        'a plan that is not waiting on gossip',
        async () => {
          const check = new ClusterSession({ timeoutMs: 5000 });
          try {
            resumed = (await observe(check)).plan;
          } finally {
            check.close();
          }
          return resumed.waiting === undefined;
        },
        20_000,
        200,
      );
      expect(resumed.settled).toBe(false);
      if (c.step === 'assigned') {
        expect(resumed.moves.map((m) => m.slot)).toEqual(slots.slice(0, -1).reverse());
      } else {
        expect(resumed.moves[0]).toEqual({ slot: killedSlot, from: 0, to: 1 });
        expect(resumed.moves).toHaveLength(3);
      }
      const status = reshardingStatus(undefined, resumed, SHARDS, 'now');
      expect(status?.slotsRemaining).toBe(resumed.moves.length);

      // The next operator: reconciles until a plan made from Redis is settled.
      let last: ClusterPlan | undefined;
      for (let i = 0; i < 5; i++) {
        last = await reconcile();
        if (last.settled) break;
      }
      expect(last?.settled, 'settled within 5 reconciles').toBe(true);
      expect(last!.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
      const tables = await nodesTables();
      expect(tables.filter((t) => /\[\d+-[<>]-/.test(t))).toEqual([]);
      for (const [key, value] of written) expect(await client.get(key), key).toBe(value);
      // Every key on exactly one primary: the primaries' DBSIZE adds up to the keys written.
      const sizes = await Promise.all(
        [...last!.primaryIds.values()].map(async (pid) => {
          const n = cluster.nodes.find((x) => x.id === pid)!;
          return Number(await cluster.client(n.port).dbsize());
        }),
      );
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(written.size);
    }, 120_000);
  }
});
