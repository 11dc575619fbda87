/**
 * The write fence of `spec.durability: replicated`, applied by the real operator (not by the test) to real
 * redis-servers: a primary (pod fence-0) and its replica (pod fence-1), whose replication link runs through
 * a TCP proxy the test can freeze. The operator sets min-replicas-to-write 1 / min-replicas-max-lag on both
 * pods live (CONFIG SET behind its leadership fence) and renders them into redis.conf. With the link frozen
 * (the primary partitioned from its replica, both still running) writes through sidecars on the primary
 * are refused — first by WAIT (503 ReplicationTimeout), then by Redis itself (NOREPLICAS → 503) — and
 * none is acknowledged or, once fenced, stored. A change to durability primary lifts the fence live.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withDurability,
  withEviction,
  withReplicas,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';

const NS = 'default';
let cp: ControlPlane;
let primary: RedisProcess;
let replica: RedisProcess;
let link: TcpProxy;
let pgServer: PostgresServer;
let operator: OperatorProcess;
let sim: PodSimulator;
let onPrimary: Redis;
let onReplica: Redis;

async function fenceOf(r: Redis): Promise<[number, number]> {
  const n = (await r.call('CONFIG', 'GET', 'min-replicas-to-write')) as string[];
  const lag = (await r.call('CONFIG', 'GET', 'min-replicas-max-lag')) as string[];
  return [Number(n[1]), Number(lag[1])];
}

function clusterYaml(mode: 'replicated' | 'primary'): string {
  return cacheClusterYaml(
    cacheCluster(
      'fence',
      inNamespace(NS),
      withTopology('replication'),
      withReplicas(1),
      withEviction({ policy: 'allkeys-lru', maxMemory: '64Mi' }),
      withDurability({ mode, maxLagSeconds: 2 }),
    ),
  );
}

beforeAll(async () => {
  [cp, primary, pgServer] = await Promise.all([startControlPlane(), startRedis(), startPostgres()]);
  await cp.applyCrds();
  link = await startTcpProxy({ host: '127.0.0.1', port: primary.port });
  replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(link.port)] });
  onPrimary = new Redis(primary.url, { maxRetriesPerRequest: 0 });
  onReplica = new Redis(replica.url, { maxRetriesPerRequest: 0 });
  await waitFor(
    'the replica linked to the primary',
    async () => String(await onReplica.info('replication')).includes('master_link_status:up'),
    20_000,
  );
  sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(['fence-0', 'fence-1']));
  sim.start();
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'durability-fence',
    podAddresses: {
      [`${NS}/fence-0`]: `127.0.0.1:${primary.port}`,
      [`${NS}/fence-1`]: `127.0.0.1:${replica.port}`,
    },
    extraArgs: ['--resync-seconds', '2'],
  });
});

afterAll(async () => {
  link?.thaw();
  sim?.stop();
  await stopAllSidecars();
  await operator?.stop().catch(() => undefined);
  onPrimary?.disconnect();
  onReplica?.disconnect();
  await link?.close();
  await Promise.all([replica?.stop(), primary?.stop(), pgServer?.stop(), cp?.stop()]);
});

function sidecar(policy: 'write-through' | 'write-back'): Promise<SidecarProcess> {
  return startSidecar({
    args: [
      '--redis',
      primary.url,
      '--channel',
      'ripplecache:it-fence',
      '--origin',
      pgServer.url,
      '--origin-table',
      'fence_entries',
      '--write-policy',
      policy,
      '--durability',
      'replicated',
      '--durability-timeout-ms',
      '300',
      '--redis-timeout-ms',
      '2000',
    ],
  });
}

describe('the write fence of durability replicated', () => {
  it('is applied live by the operator on every pod and rendered into redis.conf', async () => {
    expect(await fenceOf(onPrimary)).toEqual([0, 10]); // redis-server's defaults before the operator
    const r = await cp.kubectl(['apply', '-f', '-'], clusterYaml('replicated'));
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      'min-replicas-to-write 1 / min-replicas-max-lag 2 on both pods',
      async () =>
        JSON.stringify([await fenceOf(onPrimary), await fenceOf(onReplica)]) ===
        JSON.stringify([
          [1, 2],
          [1, 2],
        ]),
      60_000,
      250,
    );
    const cm = await cp.kubectl(['get', 'configmap', 'fence-config', '-n', NS, '-o', 'jsonpath={.data.redis\\.conf}']);
    expect(cm.stdout).toMatch(/^min-replicas-to-write 1$/m);
    expect(cm.stdout).toMatch(/^min-replicas-max-lag 2$/m);
    const yaml = await cp.kubectl([
      'get',
      'configmap',
      'fence-config',
      '-n',
      NS,
      '-o',
      'jsonpath={.data.sidecar\\.yaml}',
    ]);
    expect(yaml.stdout).toMatch(/^durability: replicated$/m);
    expect(yaml.stdout).toMatch(/^durabilityTimeoutMs: 1000$/m);
  });

  it('makes a primary partitioned from its replica refuse writes: none acknowledged, none stored once fenced', async () => {
    const wt = await sidecar('write-through');
    const wb = await sidecar('write-back');
    for (const s of [wt, wb]) expect((await s.put(`healthy-${s.port}`, 'ok')).status).toBe(204);

    link.freeze();
    try {
      // From the moment of the partition no write is acknowledged: WAIT times out until Redis fences.
      const seen = new Set<string>();
      await waitFor(
        'Redis itself refusing writes (NOREPLICAS) through both sidecars',
        async () => {
          let fenced = 0;
          for (const s of [wt, wb]) {
            const a = await s.put(`partitioned-${s.port}`, `p-${Date.now()}`);
            expect(a.status, a.body).toBe(503);
            seen.add(a.code ?? '');
            if (a.code === 'RedisUnavailable' && a.body.includes('NOREPLICAS')) fenced++;
          }
          return fenced === 2;
        },
        20_000,
        200,
      );
      expect([...seen].every((c) => c === 'ReplicationTimeout' || c === 'RedisUnavailable')).toBe(true);
      // Fenced: refused writes store nothing (no journal entry, no record), and so does any other client.
      const journal = await onPrimary.xlen('ripplecache:write-back');
      for (const s of [wt, wb]) {
        const a = await s.put(`fenced-${s.port}`, 'refused');
        expect(a.status, a.body).toBe(503);
        expect(a.body).toContain('NOREPLICAS');
        expect(await onPrimary.exists(`rc:fenced-${s.port}`)).toBe(0);
      }
      expect(await onPrimary.xlen('ripplecache:write-back')).toBe(journal);
      await expect(onPrimary.set('raw', 'x')).rejects.toThrow(/NOREPLICAS/);
    } finally {
      link.thaw();
    }
    // The link back: writes are acknowledged again.
    for (const s of [wt, wb]) {
      await waitFor(
        `${s.port} acknowledged after the link came back`,
        async () => (await s.put(`back-${s.port}`, 'b')).status === 204,
        20_000,
        200,
      );
    }
    await wt.stop();
    await wb.stop();
  });

  it('is lifted live when durability becomes primary', async () => {
    const r = await cp.kubectl(['apply', '-f', '-'], clusterYaml('primary'));
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      'min-replicas-to-write 0 on both pods',
      async () => (await fenceOf(onPrimary))[0] === 0 && (await fenceOf(onReplica))[0] === 0,
      60_000,
      250,
    );
  });
});
