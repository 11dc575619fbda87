/**
 * The operator side of cross-cluster invalidation (issue 17) with the real control plane (API server,
 * ReplicaSet/Deployment controllers, Pod Security admission), the real operator and real redis-servers
 * standing in for the Redis pods:
 * - the API server rejects malformed `spec.invalidation.peers` with readable messages;
 * - a CacheCluster with peers gets a bridge Deployment and Service; a peer of topology cluster is relayed
 *   to as a Redis Cluster (`--peer-cluster`); a peer that cannot work (an external Redis Cluster with a
 *   database other than 0) is not, and PeersReachable says why;
 * - the bridge is run here as a real process with the command line of the Deployment the operator wrote
 *   (the DNS names mapped to the local redis-servers), and the operator's PeersReachable follows it: True
 *   when every peer is reachable, False (PeerUnreachable) while a peer's Redis is down, True again after;
 * - the bridge's pods pass Pod Security restricted (the ReplicaSet controller could create one);
 * - without peers the bridge is deleted and the condition removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheClusterSpec } from '../../operator/src/api/v1alpha1/types.js';
import { bridgeServiceName } from '../../operator/src/desired/bridge.js';
import { cacheCluster, cacheClusterYaml, inNamespace, withSpec } from '../fixtures/cache-cluster.js';
import { startBridge, stopAllBridges, type BridgeProcess } from '../harness/bridge.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const NS = 'xc';
let cp: ControlPlane;
let operator: OperatorProcess;
let bridgePort: number;
const redis: Record<string, RedisProcess> = {};

async function getJson(kind: string, name: string): Promise<any> {
  const r = await cp.kubectl(['get', kind, name, '-n', NS, '-o', 'json']);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout);
}

function manifest(name: string, spec: CacheClusterSpec): string {
  return cacheClusterYaml(cacheCluster(name, inNamespace(NS), withSpec(spec)));
}

async function apply(name: string, spec: CacheClusterSpec): Promise<void> {
  const r = await cp.kubectl(['apply', '-f', '-'], manifest(name, spec));
  expect(r.code, r.stderr).toBe(0);
}

async function peersReachable(name: string, want: (c: any) => boolean, what: string): Promise<any> {
  let cond: any;
  await waitFor(
    `${name}: PeersReachable ${what}`,
    async () => {
      const cc = await getJson('cachecluster', name);
      cond = (cc?.status?.conditions ?? []).find((x: any) => x.type === 'PeersReachable');
      return want(cond);
    },
    90_000,
    250,
  );
  return cond;
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  const ns = await cp.kubectl(
    ['apply', '-f', '-'],
    `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels: { pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: latest }
`,
  );
  expect(ns.code, ns.stderr).toBe(0);
  redis.a = await startRedis();
  redis.b = await startRedis();
  bridgePort = await freePort();
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'bridge-operator',
    podAddresses: {
      [`${NS}/a-0`]: `127.0.0.1:${redis.a.port}`,
      [`${NS}/b-0`]: `127.0.0.1:${redis.b.port}`,
      // The operator reads the bridge's /v1/peers here (its Service's DNS name otherwise).
      [`${NS}/a-bridge`]: `127.0.0.1:${bridgePort}`,
    },
    extraArgs: ['--resync-seconds', '5'],
  });
});

afterAll(async () => {
  await stopAllBridges();
  await operator?.stop().catch(() => undefined);
  for (const r of Object.values(redis)) await r.stop().catch(() => undefined);
  await cp?.stop();
});

describe('spec.invalidation.peers', () => {
  it('is validated by the API server', async () => {
    const both = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      manifest('bad1', {
        invalidation: { peers: [{ cacheCluster: { name: 'b' }, redis: { url: 'redis://x:6379' } }] },
      }),
    );
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('set exactly one of cacheCluster and redis in each invalidation peer');
    const neither = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      manifest('bad2', { invalidation: { peers: [{}] } }),
    );
    expect(neither.stderr).toContain('set exactly one of cacheCluster and redis');
    const url = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      manifest('bad3', { invalidation: { peers: [{ redis: { url: 'http://x:6379' } }] } }),
    );
    expect(url.code).not.toBe(0);
    expect(url.stderr).toMatch(/spec\.invalidation\.peers\[0\]\.redis\.url/);
    const withPassword = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      manifest('bad4', { invalidation: { peers: [{ redis: { url: 'redis://:pw@x:6379' } }] } }),
    );
    expect(withPassword.code).not.toBe(0);
  });

  it('runs a bridge, relays to a cluster-topology peer, reports an unusable peer, follows the bridge', async () => {
    await apply('b', { eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } });
    await apply('d', { topology: 'cluster' });
    await apply('a', {
      eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' },
      invalidation: {
        peers: [
          { cacheCluster: { name: 'b' } },
          { cacheCluster: { name: 'd' } },
          { redis: { url: 'redis://ext-cluster.example:7000/3', cluster: true } },
        ],
      },
    });
    const unsupported = await peersReachable('a', (c) => c?.reason === 'PeerUnsupported', 'PeerUnsupported');
    expect(unsupported.status).toBe('False');
    expect(unsupported.message).toContain('is a Redis Cluster, which has only database 0');

    let deployment: any;
    await waitFor(
      'Deployment a-bridge',
      async () => (deployment = await getJson('deployment', 'a-bridge')) !== undefined,
      30_000,
      250,
    );
    const container = deployment.spec.template.spec.containers[0];
    expect(container.args).toEqual([
      '--cluster',
      'xc/a',
      '--redis',
      'redis://a.xc.svc:6379',
      '--listen',
      '[::]:7072',
      '--peer',
      'xc/b=redis://b.xc.svc:6379',
      '--peer',
      'xc/d=redis://d.xc.svc:6379',
      '--peer-cluster',
      'xc/d',
    ]);
    expect(deployment.spec.template.spec.automountServiceAccountToken).toBe(false);
    // The bridge's Service: a name no CacheCluster's client Service can have (a CacheCluster named a-bridge).
    const service = bridgeServiceName({ metadata: { name: 'a', namespace: NS } });
    expect(service).toMatch(/^a-bridge-[0-9a-f]+$/);
    expect((await getJson('service', service))?.spec?.ports?.[0]?.port).toBe(7072);
    expect(await getJson('service', 'a-bridge')).toBeUndefined();
    // Pod Security restricted admits the bridge's pod: the ReplicaSet controller created it.
    await waitFor(
      'a bridge pod',
      async () => {
        const r = await cp.kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=bridge', '-o', 'name']);
        return r.stdout.trim().length > 0;
      },
      60_000,
      500,
    );

    await apply('a', {
      eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' },
      invalidation: { peers: [{ cacheCluster: { name: 'b' } }] },
    });
    const notReporting = await peersReachable('a', (c) => c?.reason === 'BridgeNotReporting', 'BridgeNotReporting');
    expect(notReporting.status).toBe('Unknown');

    // The Deployment's pod, played by a real bridge process: the Deployment's own command line, with the
    // Services' DNS names mapped to the redis-servers standing in for them.
    deployment = await getJson('deployment', 'a-bridge');
    const args = (deployment.spec.template.spec.containers[0].args as string[])
      .map((a) => a.replace('redis://a.xc.svc:6379', redis.a!.url).replace('redis://b.xc.svc:6379', redis.b!.url))
      .filter((a, i, all) => a !== '--listen' && all[i - 1] !== '--listen');
    const bridge: BridgeProcess = await startBridge({ args, port: bridgePort });
    // A reachable peer under repair (the bridge's start) is True too, named "repairing": wait for the end.
    const settled = (c: { status?: string; message?: string } | undefined) =>
      c?.status === 'True' && !/repairing/.test(c.message ?? '');
    const up = await peersReachable('a', settled, 'True');
    expect(up).toMatchObject({ reason: 'AllPeersReachable', message: '1 peer(s) reachable: xc/b' });

    // Peer b's Redis goes away: the bridge reports it, and so does the CacheCluster.
    await redis.b!.kill();
    const down = await peersReachable('a', (c) => c?.status === 'False', 'False');
    expect(down.reason).toBe('PeerUnreachable');
    expect(down.message).toMatch(/^peer xc\/b not reachable since /);
    expect(await bridge.metric('ripplecache_bridge_peer_up', { peer: 'xc/b' })).toBe(0);
    await redis.b!.start();
    await peersReachable('a', settled, 'True again, repaired');
    expect(
      await bridge.metric('ripplecache_bridge_repairs_total', { peer: 'xc/b', reason: 'peer-reconnected' }),
    ).toBeGreaterThanOrEqual(1);

    // Without peers the bridge goes, and so does the condition.
    await apply('a', { eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } });
    await waitFor('a-bridge deleted', async () => (await getJson('deployment', 'a-bridge')) === undefined, 60_000, 250);
    await peersReachable('a', (c) => c === undefined, 'removed');
    await bridge.stop();
  });
});
