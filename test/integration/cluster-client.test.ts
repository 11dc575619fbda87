/**
 * The sidecar's Redis Cluster client (sidecar/src/redis/redis-client.ts) against real redis-servers: a
 * one-shard cluster holding every slot, and beside it a cluster-enabled node that holds no slot and knows
 * no other node — what a shard the operator drained and `CLUSTER RESET` at a scale-in looks like until its
 * pod is gone. ioredis refreshes its slot map from a random node of its pool; when that was the drained
 * node, its empty `CLUSTER SLOTS` emptied the pool and every command failed until the client reconnected
 * (the 503s "write-back append: Redis is not reachable" of a CI resharding run).
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterClient } from '../../sidecar/src/redis/redis-client.js';
import { freeClusterPort } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis-cluster.js';

let cluster: RedisCluster;
let drained: RedisProcess;
let client: Cluster | undefined;

beforeAll(async () => {
  cluster = await startRedisCluster({ shards: 1, replicas: 0 });
  await cluster.waitHealthy();
  const port = await freeClusterPort();
  drained = await startRedis({
    port,
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
  });
}, 120_000);

afterAll(async () => {
  client?.disconnect();
  await drained?.stop();
  await cluster?.stop();
});

/** ioredis' refresh, as a MOVED or `slotsRefreshInterval` runs it (not in its typings). */
function refresh(c: Cluster): Promise<void> {
  return new Promise((resolve, reject) =>
    (c as unknown as { refreshSlotsCache(cb: (err?: Error) => void): void }).refreshSlotsCache((err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

/** Puts a node into the client's pool, as a slot map read before that node was drained left it there. */
function poolHas(c: Cluster, port: number): void {
  (
    c as unknown as { connectionPool: { findOrCreate(n: { host: string; port: number }): void } }
  ).connectionPool.findOrCreate({ host: '127.0.0.1', port });
}

describe('the sidecar cluster client', () => {
  it('keeps its pool and slot map when a refresh asks a node that holds no slot', async () => {
    client = createClusterClient({ url: cluster.seedUrl, timeoutMs: 2000, name: 'it-cluster-client' });
    client.on('error', () => undefined);
    let emptyAnswers = 0;
    client.on('emptySlotMap', () => emptyAnswers++);
    const c = client;
    await new Promise((resolve) => c.once('ready', resolve));
    await client.set('k', 'v0');
    const seedKey = `127.0.0.1:${cluster.nodes[0]!.port}`;
    // Each refresh picks the node it asks at random from {seed, drained}: 40 rounds make an ask of the
    // drained node all but certain (a miss of every one is 2^-40).
    for (let i = 0; i < 40; i++) {
      poolHas(client, drained.port);
      await refresh(client);
      expect(client.status, `round ${i}`).toBe('ready');
      expect(
        client.nodes('master').map((n) => `${n.options.host}:${n.options.port}`),
        `round ${i}`,
      ).toContain(seedKey);
      await client.set('k', `v${i + 1}`);
    }
    expect(emptyAnswers).toBeGreaterThan(0);
    expect(await client.get('k')).toBe('v40');
  }, 60_000);

  it('knowing no slot yet (its seed is such a node), lets the pool empty and reconnects through the seed', async () => {
    const lost = createClusterClient({
      url: `redis://127.0.0.1:${drained.port}`,
      timeoutMs: 2000,
      name: 'it-cluster-client-lost',
    });
    lost.on('error', () => undefined);
    let emptyAnswers = 0;
    let reconnects = 0;
    lost.on('emptySlotMap', () => emptyAnswers++);
    lost.on('reconnecting', () => reconnects++);
    try {
      // ioredis' own behaviour: no slot map, so it drops the node and goes back to the seed (here the same
      // node, in Kubernetes the client Service, which may lead to another one).
      const deadline = Date.now() + 10_000;
      while (reconnects < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(reconnects).toBeGreaterThanOrEqual(2);
      expect(emptyAnswers).toBe(0);
    } finally {
      lost.disconnect();
    }
  }, 30_000);
});
