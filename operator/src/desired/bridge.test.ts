import { describe, expect, it } from 'vitest';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import {
  cacheCluster,
  inNamespace,
  withAuth,
  withPeers,
  withTopology,
  withUid,
} from '../../../test/fixtures/cache-cluster.js';
import { MAX_NAME_LENGTH } from '../api/v1alpha1/schema.js';
import { parseBridgeConfig } from '../../../sidecar/src/bridge/bridge-config.js';
import {
  bridgeArgs,
  bridgeServiceName,
  desiredBridgeDeployment,
  desiredBridgeService,
  externalPeerNames,
  resolvePeers,
} from './bridge.js';
import { desiredChildren } from './children.js';

const peerB = cacheCluster('b', withAuth({ name: 'b-auth', key: 'password' }));
const peerOther = cacheCluster('c', inNamespace('other'), withAuth({ name: 'c-auth', key: 'pw' }));
const peerCluster = cacheCluster('d', withTopology('cluster'));
const all = [peerB, peerOther, peerCluster];
const lookup = (ns: string, name: string): CacheCluster | undefined =>
  all.find((c) => c.metadata.namespace === ns && c.metadata.name === name);

/** CacheCluster `shop/b` as a resolved peer: its client Service, the default channel, its auth Secret. */
const PEER_B = {
  name: 'shop/b',
  url: 'redis://b.shop.svc:6379',
  channel: 'ripplecache:invalidations',
  passwordSecretRef: { name: 'b-auth', key: 'password' },
};

describe('resolvePeers', () => {
  it('reaches CacheCluster peers at their client Service with their auth Secret, and external Redis as given', () => {
    const a = cacheCluster(
      'a',
      withPeers({ cacheCluster: { name: 'b' } }, { redis: { url: 'redis://ext.example:6380/2', channel: 'x' } }),
    );
    expect(resolvePeers(a, lookup)).toEqual({
      peers: [PEER_B, { name: 'ext.example-6380', url: 'redis://ext.example:6380/2', channel: 'x' }],
      problems: [],
    });
  });

  it('reaches a topology-cluster peer at its client Service as a seed, marked cluster', () => {
    const a = cacheCluster(
      'a',
      withPeers(
        { cacheCluster: { name: 'd' } },
        { redis: { url: 'redis://ext-cluster.example:7000', cluster: true } },
        { redis: { url: 'redis://ext-cluster.example:7001/0', cluster: true } },
      ),
    );
    expect(resolvePeers(a, lookup)).toEqual({
      peers: [
        { name: 'shop/d', url: 'redis://d.shop.svc:6379', channel: 'ripplecache:invalidations', cluster: true },
        {
          name: 'ext-cluster.example-7000',
          url: 'redis://ext-cluster.example:7000',
          channel: 'ripplecache:invalidations',
          cluster: true,
        },
        {
          name: 'ext-cluster.example-7001',
          url: 'redis://ext-cluster.example:7001/0',
          channel: 'ripplecache:invalidations',
          cluster: true,
        },
      ],
      problems: [],
    });
    // A CacheCluster of topology cluster has a bridge too, for every kind of peer.
    const local = cacheCluster(
      'e',
      withTopology('cluster'),
      withPeers({ cacheCluster: { name: 'b' } }, { cacheCluster: { name: 'd' } }),
    );
    expect(resolvePeers(local, lookup)).toEqual({
      peers: [
        PEER_B,
        { name: 'shop/d', url: 'redis://d.shop.svc:6379', channel: 'ripplecache:invalidations', cluster: true },
      ],
      problems: [],
    });
  });

  it('reports peers it cannot relay to: missing, auth across namespaces, itself, a Redis Cluster database', () => {
    const a = cacheCluster(
      'a',
      withPeers(
        { cacheCluster: { name: 'nope' } },
        { cacheCluster: { name: 'c', namespace: 'other' } },
        { cacheCluster: { name: 'a' } },
        { redis: { url: 'redis://ext-cluster.example:7000/3', cluster: true } },
      ),
    );
    const { peers, problems } = resolvePeers(a, lookup);
    expect(peers).toEqual([]);
    expect(problems.map((p) => p.reason)).toEqual([
      'PeerNotFound',
      'PeerPasswordMissing',
      'PeerUnsupported',
      'PeerUnsupported',
    ]);
    expect(problems[2]!.message).toMatch(/this CacheCluster itself/);
    expect(problems[3]).toEqual({
      peer: 'ext-cluster.example-7000',
      reason: 'PeerUnsupported',
      message: expect.stringMatching(/only database 0.*names database 3/),
    });
    // With a Secret in the local namespace the cross-namespace peer is fine.
    const b = cacheCluster(
      'a',
      withPeers({ cacheCluster: { name: 'c', namespace: 'other' }, passwordSecretRef: { name: 'copy', key: 'k' } }),
    );
    expect(resolvePeers(b, lookup).peers).toEqual([
      {
        name: 'other/c',
        url: 'redis://c.other.svc:6379',
        channel: 'ripplecache:invalidations',
        passwordSecretRef: { name: 'copy', key: 'k' },
      },
    ]);
  });
});

type PeerEntry = NonNullable<NonNullable<CacheCluster['spec']['invalidation']>['peers']>[number];

/** What the bridge makes of the rendered command line: the peer names, or the bridge's refusal. */
function bridgeAccepts(cc: CacheCluster): string[] {
  const { peers } = resolvePeers(cc, lookup);
  const { args, env } = bridgeArgs(cc, peers);
  // The Secrets' values, as the kubelet would set them.
  const values = Object.fromEntries(env.map((e) => [e.name, 'pw']));
  const parsed = parseBridgeConfig(args, values);
  if (parsed.kind !== 'run') throw new Error(parsed.kind);
  return parsed.config.peers.map((p) => p.name);
}

describe('resolvePeers: peer names the bridge accepts', () => {
  it('renders lists the schema admits that used to name two peers alike (the bridge exited 2)', () => {
    const lists: PeerEntry[][] = [
      [
        { redis: { url: 'redis://legacy-cache.example:6379/0' } },
        { redis: { url: 'redis://legacy-cache.example:6379/1' } },
      ],
      [
        { redis: { url: 'redis://legacy-cache.example:6379', channel: 'a' } },
        { redis: { url: 'redis://legacy-cache.example:6379', channel: 'b' } },
      ],
      [{ redis: { url: 'redis://cache_1.example:6379' } }, { redis: { url: 'redis://cache-1.example:6379' } }],
      [{ cacheCluster: { name: 'b' } }, { cacheCluster: { name: 'b', namespace: 'shop' } }],
    ];
    for (const list of lists) {
      const a = cacheCluster('a', withPeers(...list));
      expect(resolvePeers(a, lookup).problems, JSON.stringify(list)).toEqual([]);
      const names = bridgeAccepts(a);
      expect(new Set(names).size, JSON.stringify(list)).toBe(names.length);
    }
  });

  it('tells databases apart by -db<N>, anything else by a hash of database and channel, stable in any order', () => {
    const db = resolvePeers(
      cacheCluster(
        'a',
        withPeers(
          { redis: { url: 'redis://legacy-cache.example:6379/0' } },
          { redis: { url: 'redis://legacy-cache.example:6379/1' } },
        ),
      ),
      lookup,
    );
    expect(db.peers.map((p) => [p.name, p.url])).toEqual([
      ['legacy-cache.example-6379-db0', 'redis://legacy-cache.example:6379/0'],
      ['legacy-cache.example-6379-db1', 'redis://legacy-cache.example:6379/1'],
    ]);
    const a: PeerEntry = { redis: { url: 'redis://legacy:6379', channel: 'a' } };
    const b: PeerEntry = { redis: { url: 'redis://legacy:6379', channel: 'b' } };
    const named = (...list: PeerEntry[]) =>
      Object.fromEntries(
        resolvePeers(cacheCluster('x', withPeers(...list)), lookup).peers.map((p) => [p.channel, p.name]),
      );
    const ab = named(a, b);
    expect(ab['a']).toMatch(/^legacy-6379-[0-9a-f]{8}$/);
    expect(ab['b']).toMatch(/^legacy-6379-[0-9a-f]{8}$/);
    expect(ab['a']).not.toBe(ab['b']);
    expect(named(b, a)).toEqual(ab);
    // Hosts that differ only in characters a name cannot hold.
    const hosts = resolvePeers(
      cacheCluster(
        'a',
        withPeers(
          { redis: { url: 'redis://cache_1.example:6379' } },
          { redis: { url: 'redis://cache-1.example:6379' } },
        ),
      ),
      lookup,
    ).peers.map((p) => p.name);
    expect(hosts).toEqual([
      expect.stringMatching(/^cache-1\.example-6379-[0-9a-f]{8}$/),
      expect.stringMatching(/^cache-1\.example-6379-[0-9a-f]{8}$/),
    ]);
    expect(hosts[0]).not.toBe(hosts[1]);
  });

  it('keeps the name of a peer that shares it with no other (metrics and status carry it)', () => {
    const { peers } = resolvePeers(
      cacheCluster(
        'a',
        withPeers(
          { redis: { url: 'redis://legacy-cache.example:6379/0' } },
          { redis: { url: 'redis://legacy-cache.example:6379/1' } },
          { redis: { url: 'redis://other.example:6380/2', channel: 'x' } },
          { redis: { url: 'redis://Upper.Example' } },
          { cacheCluster: { name: 'b' } },
        ),
      ),
      lookup,
    );
    expect(peers.map((p) => p.name)).toEqual([
      'legacy-cache.example-6379-db0',
      'legacy-cache.example-6379-db1',
      'other.example-6380',
      'Upper.Example',
      'shop/b',
    ]);
  });

  it('treats entries naming the same peer as one: the same CacheCluster, the same database and channel', () => {
    const a = cacheCluster(
      'a',
      withPeers(
        { cacheCluster: { name: 'b' } },
        { redis: { url: 'redis://legacy:6379' } },
        { cacheCluster: { name: 'b', namespace: 'shop' } },
        // Default port and database, another spelling of the host, the default channel named.
        { redis: { url: 'redis://LEGACY/0', channel: 'ripplecache:invalidations' } },
        { redis: { url: 'redis://legacy:6379/00' } },
      ),
    );
    expect(resolvePeers(a, lookup)).toEqual({
      peers: [PEER_B, { name: 'legacy-6379', url: 'redis://legacy:6379', channel: 'ripplecache:invalidations' }],
      problems: [],
    });
    expect(bridgeAccepts(a)).toEqual(['shop/b', 'legacy-6379']);
  });

  it('reports PeerConflict when entries for one peer disagree, and relays as the first says', () => {
    const a = cacheCluster(
      'a',
      withPeers(
        { cacheCluster: { name: 'b' } },
        { cacheCluster: { name: 'b', namespace: 'shop' }, passwordSecretRef: { name: 'other', key: 'pw' } },
        { redis: { url: 'redis://ext:7000' } },
        { redis: { url: 'redis://ext:7000/0', cluster: true } },
      ),
    );
    const { peers, problems } = resolvePeers(a, lookup);
    expect(peers).toEqual([
      {
        name: 'shop/b',
        url: 'redis://b.shop.svc:6379',
        channel: 'ripplecache:invalidations',
        passwordSecretRef: { name: 'b-auth', key: 'password' },
      },
      { name: 'ext-7000', url: 'redis://ext:7000', channel: 'ripplecache:invalidations' },
    ]);
    expect(problems).toEqual([
      {
        peer: 'shop/b',
        reason: 'PeerConflict',
        message:
          'peer shop/b is listed 2 times (entries 1, 2) with different settings (passwordSecretRef, cluster): ' +
          'entry 1 is used; remove the others',
      },
      {
        peer: 'ext-7000',
        reason: 'PeerConflict',
        message:
          'peer ext-7000 is listed 2 times (entries 3, 4) with different settings (passwordSecretRef, cluster): ' +
          'entry 3 is used; remove the others',
      },
    ]);
    expect(bridgeAccepts(a)).toEqual(['shop/b', 'ext-7000']);
  });

  it('renders a database written with a leading zero as a number, and reports a port the bridge refuses', () => {
    const a = cacheCluster(
      'a',
      withPeers(
        { redis: { url: 'redis://ext:6379/01' } },
        { redis: { url: 'redis://ext-cluster:7000/00', cluster: true } },
        { redis: { url: 'redis://bad-port:99999' } },
      ),
    );
    const { peers, problems } = resolvePeers(a, lookup);
    expect(peers.map((p) => p.url)).toEqual(['redis://ext:6379/1', 'redis://ext-cluster:7000/0']);
    expect(problems).toEqual([
      { peer: 'bad-port-99999', reason: 'PeerUnsupported', message: expect.stringMatching(/not a URL the bridge/) },
    ]);
    expect(bridgeAccepts(a)).toEqual(['ext-6379', 'ext-cluster-7000']);
  });

  it('never renders two peers alike, whatever the list (random lists of entries the schema admits)', () => {
    const pool: PeerEntry[] = [
      { cacheCluster: { name: 'b' } },
      { cacheCluster: { name: 'b', namespace: 'shop' } },
      { cacheCluster: { name: 'd' } },
      { cacheCluster: { name: 'c', namespace: 'other' }, passwordSecretRef: { name: 'copy', key: 'k' } },
      { redis: { url: 'redis://x:6379' } },
      { redis: { url: 'redis://x:6379/0' } },
      { redis: { url: 'redis://x:6379/1' } },
      { redis: { url: 'redis://x:6379/1', channel: 'c1' } },
      { redis: { url: 'redis://x:6379', channel: 'c2' } },
      { redis: { url: 'rediss://x:6379' } },
      { redis: { url: 'redis://x' } },
      { redis: { url: 'redis://x_:6379' } },
      { redis: { url: 'redis://x-:6379' } },
      { redis: { url: 'redis://x-6379-db1' } },
      { redis: { url: 'redis://x:6379/1' }, passwordSecretRef: { name: 's', key: 'k' } },
      { redis: { url: 'redis://y:7000', cluster: true } },
      { redis: { url: 'redis://y:7000/3', cluster: true } },
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let run = 0; run < 300; run++) {
      const list = Array.from(
        { length: 1 + Math.floor(random() * 16) },
        () => pool[Math.floor(random() * pool.length)]!,
      );
      const a = cacheCluster('a', withPeers(...list));
      const { peers } = resolvePeers(a, lookup);
      const names = bridgeAccepts(a);
      expect(names, JSON.stringify(list)).toEqual(peers.map((p) => p.name));
      expect(new Set(names).size, JSON.stringify(list)).toBe(names.length);
    }
  });
});

describe('externalPeerNames', () => {
  it('avoids a name another peer has as written', () => {
    // "x-6379-db1" is a host's own name: the peer of database 1 on x:6379 gets a hash instead.
    const names = externalPeerNames([
      { name: 'x-6379', identity: 'i0', db: 0, external: true },
      { name: 'x-6379', identity: 'i1', db: 1, external: true },
      { name: 'x-6379-db1', identity: 'i2', db: 0, external: true },
    ]);
    expect(names[0]).toBe('x-6379-db0');
    expect(names[1]).toMatch(/^x-6379-[0-9a-f]{8}$/);
    expect(names[2]).toBe('x-6379-db1');
  });
});

describe('the bridge Deployment and Service', () => {
  const a = cacheCluster(
    'a',
    withUid('uid-a'),
    withAuth({ name: 'a-auth', key: 'password' }),
    withPeers({ cacheCluster: { name: 'b' } }),
  );
  const { peers } = resolvePeers(a, lookup);

  it('runs ripplecache-bridge with passwords only from Secrets, no token, restricted, one pod at a time', () => {
    const d = desiredBridgeDeployment(a, peers, 'img:1');
    expect(d.metadata).toMatchObject({ name: 'a-bridge', namespace: 'shop' });
    expect(d.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    const pod = d.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    const c = pod.containers[0]!;
    expect(c.command).toEqual(['/nodejs/bin/node', 'dist/sidecar/src/bridge/main.js']);
    expect(c.args).toEqual([
      '--cluster',
      'shop/a',
      '--redis',
      'redis://a.shop.svc:6379',
      '--listen',
      '[::]:7072',
      '--peer',
      'shop/b=redis://b.shop.svc:6379',
      '--peer-password-env',
      'shop/b=PEER_PASSWORD_0',
    ]);
    expect(c.env).toEqual([
      { name: 'RIPPLECACHE_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'a-auth', key: 'password' } } },
      { name: 'PEER_PASSWORD_0', valueFrom: { secretKeyRef: { name: 'b-auth', key: 'password' } } },
    ]);
    expect(JSON.stringify(d)).not.toMatch(/secret-value/);
    expect(d.spec.selector.matchLabels).toEqual(desiredBridgeService(a).spec.selector);
    expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
    expect(desiredBridgeDeployment(a, peers, 'img:1')).toEqual(d);
  });

  it('is a child only while peers resolve; otherwise it is deleted', () => {
    const svc = bridgeServiceName(a);
    const withBridge = desiredChildren(a, { bridge: { peers, image: 'img:1' } });
    expect(withBridge.apply.map((c) => `${c.kind}/${c.metadata.name}`)).toContain('Deployment/a-bridge');
    expect(withBridge.apply.map((c) => `${c.kind}/${c.metadata.name}`)).toContain(`Service/${svc}`);
    // The Service of earlier versions, `a-bridge`, goes (if a's: the reconcile checks the owner).
    expect(withBridge.deleteIfPresent).toContainEqual({
      apiVersion: 'v1',
      kind: 'Service',
      namespace: 'shop',
      name: 'a-bridge',
    });
    const without = desiredChildren(a, { bridge: { peers: [], image: 'img:1' } });
    expect(without.apply.some((c) => c.metadata.name.startsWith('a-bridge'))).toBe(false);
    expect(
      without.deleteIfPresent.filter((r) => r.name.startsWith('a-bridge')).map((r) => `${r.kind}/${r.name}`),
    ).toEqual(['Deployment/a-bridge', `Service/${svc}`, 'Service/a-bridge']);
  });

  it("names its Service so that no CacheCluster's client Service can have that name", () => {
    const named = (name: string, namespace = 'shop') => bridgeServiceName({ metadata: { name, namespace } });
    for (const name of ['a', 'sessions', 'x'.repeat(MAX_NAME_LENGTH)]) {
      const svc = named(name);
      expect(svc.startsWith(`${name}-bridge-`)).toBe(true);
      // Longer than any CacheCluster name (= its client Service), a valid Service name, ending in hex.
      expect(svc.length).toBeGreaterThan(MAX_NAME_LENGTH);
      expect(svc.length).toBeLessThanOrEqual(63);
      expect(svc).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
      expect(svc).toMatch(/-[0-9a-f]{8,}$/);
    }
    // Stable, and distinct per namespace/name.
    expect(named('a')).toBe(named('a'));
    expect(named('a', 'other')).not.toBe(named('a'));
    expect(named('a-bridge')).not.toBe(named('a'));
  });

  it('tells the bridge which side is a Redis Cluster: --redis-cluster for itself, --peer-cluster per peer', () => {
    const e = cacheCluster(
      'e',
      withTopology('cluster'),
      withPeers({ cacheCluster: { name: 'd' } }, { redis: { url: 'redis://x:1' } }),
    );
    const resolved = resolvePeers(e, lookup);
    expect(resolved.problems).toEqual([]);
    const { args } = bridgeArgs(e, resolved.peers);
    expect(args).toEqual([
      '--cluster',
      'shop/e',
      '--redis',
      'redis://e.shop.svc:6379',
      '--redis-cluster',
      'true',
      '--listen',
      '[::]:7072',
      '--peer',
      'shop/d=redis://d.shop.svc:6379',
      '--peer-cluster',
      'shop/d',
      '--peer',
      'x-1=redis://x:1',
    ]);
    // Not for standalone or replication.
    expect(bridgeArgs(a, peers).args).not.toContain('--redis-cluster');
    expect(bridgeArgs(a, peers).args).not.toContain('--peer-cluster');
  });

  it('passes a peer channel other than the default', () => {
    expect(bridgeArgs(a, [{ name: 'x', url: 'redis://x:1', channel: 'c' }]).args.slice(-4)).toEqual([
      '--peer',
      'x=redis://x:1',
      '--peer-channel',
      'x=c',
    ]);
  });
});
