import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import { desiredConfigMap } from './config-map.js';
import { desiredSidecarConfig } from './sidecar-config.js';
import { cacheCluster, withGeneration, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec, name = 'sessions'): CacheCluster =>
  cacheCluster(name, withUid('uid-1'), withGeneration(1), withSpec(spec));

const confLines = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

describe('desiredConfigMap', () => {
  it('is <name>-config, owned by the CacheCluster, with redis.conf and sidecar.yaml', () => {
    const cm = desiredConfigMap(cc({ eviction: { policy: 'allkeys-lru', maxMemory: '256Mi' } }));
    expect(cm.apiVersion).toBe('v1');
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.name).toBe('sessions-config');
    expect(cm.metadata.namespace).toBe('shop');
    expect(cm.metadata.labels).toEqual({
      'app.kubernetes.io/name': 'redis',
      'app.kubernetes.io/instance': 'sessions',
      'app.kubernetes.io/managed-by': 'ripplecache-operator',
      'cache.ripplecache.io/cluster': 'sessions',
    });
    expect(cm.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'cache.ripplecache.io/v1alpha1',
        kind: 'CacheCluster',
        name: 'sessions',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(Object.keys(cm.data)).toEqual(['redis.conf', 'sidecar.yaml']);
    expect(cm).not.toHaveProperty('status');
    expect(cm.metadata).not.toHaveProperty('resourceVersion');
  });

  it('renders redis.conf from the spec on first creation', () => {
    const conf = desiredConfigMap(cc({ eviction: { policy: 'allkeys-lru', maxMemory: '256Mi' } })).data['redis.conf']!;
    expect(confLines(conf)).toEqual([
      'port 6379',
      'bind * -::*',
      'protected-mode no',
      'dir /data',
      'maxmemory 268435456',
      'maxmemory-policy allkeys-lru',
      'appendonly no',
      'appendfsync everysec',
      'save ""',
    ]);
  });

  it.each([
    ['none', 'appendonly no', 'save ""'],
    ['rdb', 'appendonly no', 'save 3600 1 300 100 60 10000'],
    ['aof', 'appendonly yes', 'save ""'],
  ] as const)('renders persistence mode %s as %s and %s, writing to /data', (mode, appendonly, save) => {
    const conf = desiredConfigMap(
      cc({ eviction: { maxMemory: '64Mi' }, persistence: { mode, storage: { size: '1Gi' } } }),
    ).data['redis.conf']!;
    const lines = confLines(conf);
    expect(lines).toContain(appendonly);
    expect(lines).toContain(save);
    expect(lines).toContain('dir /data');
    expect(lines.filter((l) => l.startsWith('save ') || l.startsWith('appendonly '))).toHaveLength(2);
  });

  it('renders the write fence of durability replicated for replication, none for standalone', () => {
    const replicated = confLines(desiredConfigMap(cc({ topology: 'replication' })).data['redis.conf']!);
    expect(replicated).toContain('min-replicas-to-write 1');
    expect(replicated).toContain('min-replicas-max-lag 3');
    const lag = desiredConfigMap(cc({ topology: 'replication', durability: { maxLagSeconds: 7 } })).data['redis.conf']!;
    expect(confLines(lag)).toContain('min-replicas-max-lag 7');
    const primary = desiredConfigMap(cc({ topology: 'replication', durability: { mode: 'primary' } })).data[
      'redis.conf'
    ]!;
    expect(confLines(primary)).toContain('min-replicas-to-write 0');
    expect(confLines(desiredConfigMap(cc({})).data['redis.conf']!).join('\n')).not.toContain('min-replicas');
  });

  it('renders the applied eviction settings when given, not the spec', () => {
    const conf = desiredConfigMap(cc({ eviction: { policy: 'allkeys-lfu', maxMemory: '1Gi' } }), {
      appliedEviction: { maxmemory: 67108864, maxmemoryPolicy: 'volatile-ttl' },
    }).data['redis.conf']!;
    expect(conf).toContain('\nmaxmemory 67108864\n');
    expect(conf).toContain('\nmaxmemory-policy volatile-ttl\n');
    expect(conf).not.toContain('1073741824');
  });

  it('renders maxMemoryPercent of the limit', () => {
    const conf = desiredConfigMap(
      cc({ eviction: { maxMemoryPercent: 75 }, resources: { limits: { memory: '512Mi' } } }),
    ).data['redis.conf']!;
    expect(conf).toContain('\nmaxmemory 402653184\n');
    expect(conf).toContain('\nmaxmemory-policy allkeys-lru\n');
  });

  it('holds no password (it comes from the entrypoint)', () => {
    const conf = desiredConfigMap(
      cc({ topology: 'replication', replicas: 2, auth: { secretRef: { name: 'sessions-auth', key: 'password' } } }),
    ).data['redis.conf']!;
    expect(conf).not.toMatch(/requirepass|masterauth/);
  });

  it('starts every replication pod as a replica of the placeholder primary; standalone as a master', () => {
    const conf = desiredConfigMap(cc({ topology: 'replication', replicas: 2 })).data['redis.conf']!;
    expect(conf).toContain('\nreplicaof 127.0.0.1 1\n');
    expect(conf.match(/^replicaof /gm)).toHaveLength(1);
    expect(desiredConfigMap(cc({})).data['redis.conf']).not.toMatch(/^replicaof/m);
  });

  it('refuses an applied policy that would inject config lines', () => {
    expect(() =>
      desiredConfigMap(cc({}), { appliedEviction: { maxmemory: 1, maxmemoryPolicy: 'allkeys-lru\nrequirepass x' } }),
    ).toThrow();
  });

  it('gives deep-equal output for equal input', () => {
    const spec: CacheClusterSpec = {
      topology: 'replication',
      replicas: 2,
      eviction: { maxMemory: '64Mi' },
      flush: { schedule: '@daily' },
    };
    expect(desiredConfigMap(cc(spec))).toEqual(desiredConfigMap(cc(structuredClone(spec))));
  });
});

describe('sidecar.yaml', () => {
  it('uses defaults and service DNS names', () => {
    const cm = desiredConfigMap(cc({}));
    const text = cm.data['sidecar.yaml']!;
    expect(text.startsWith('# Generated by ripplecache-operator')).toBe(true);
    expect(parse(text)).toEqual({
      redis: 'redis://sessions.shop.svc:6379',
      redisReplicas: [],
      channel: 'ripplecache:invalidations',
      defaultTTLSeconds: 3600,
      writePolicy: 'write-through',
      l1: { policy: 'tinylfu', maxEntries: 10000, maxBytes: 67108864, maxTTLSeconds: 60 },
      writeBack: { flushIntervalMs: 1000, flushBatchSize: 500, maxPending: 100000 },
      durability: 'primary',
      durabilityTimeoutMs: 1000,
    });
  });

  it('renders durability replicated by default for replication with a replica, primary otherwise', () => {
    expect(desiredSidecarConfig(cc({ topology: 'replication' }))).toMatchObject({
      durability: 'replicated',
      durabilityTimeoutMs: 1000,
    });
    expect(desiredSidecarConfig(cc({ topology: 'replication', replicas: 0 })).durability).toBe('primary');
    expect(desiredSidecarConfig(cc({}))).toMatchObject({ durability: 'primary' });
    expect(
      desiredSidecarConfig(cc({ topology: 'replication', durability: { mode: 'primary', timeoutMs: 250 } })),
    ).toMatchObject({ durability: 'primary', durabilityTimeoutMs: 250 });
  });

  it('reads from the replicas Service, which follows failovers (never a pod by name, which may become the primary)', () => {
    const cfg = desiredSidecarConfig(cc({ topology: 'replication', replicas: 2 }));
    expect(cfg.redisReplicas).toEqual(['redis://sessions-replicas.shop.svc:6379']);
    expect(desiredSidecarConfig(cc({ topology: 'replication', replicas: 0 })).redisReplicas).toEqual([]);
  });

  it('takes the sidecar settings from the spec', () => {
    const cfg = desiredSidecarConfig(
      cc({
        defaultTTLSeconds: 60,
        sidecar: {
          l1: { policy: 'lfu', maxEntries: 5, maxBytes: '1Mi', maxTTLSeconds: 10 },
          writePolicy: 'write-back',
          writeBack: { flushIntervalMs: 50, flushBatchSize: 10, maxPending: 1000 },
          origin: { http: { url: 'https://api.example.com/items' } },
        },
      }),
    );
    expect(cfg).toMatchObject({
      defaultTTLSeconds: 60,
      writePolicy: 'write-back',
      l1: { policy: 'lfu', maxEntries: 5, maxBytes: 1048576, maxTTLSeconds: 10 },
      writeBack: { flushIntervalMs: 50, flushBatchSize: 10, maxPending: 1000 },
      origin: 'https://api.example.com/items',
    });
  });

  it('never carries a secret (no PostgreSQL URL, no password)', () => {
    const cm = desiredConfigMap(
      cc({
        auth: { secretRef: { name: 'sessions-auth', key: 'password' } },
        sidecar: { origin: { postgres: { secretRef: { name: 'db', key: 'url' }, table: 'cache_entries' } } },
      }),
    );
    const cfg = parse(cm.data['sidecar.yaml']!) as Record<string, unknown>;
    expect(cfg).not.toHaveProperty('origin');
    expect(confLines(cm.data['sidecar.yaml']!).join('\n')).not.toMatch(
      /password|postgres|secret|sessions-auth|\bdb\b/i,
    );
  });
});
