import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import { restartHash } from './restart-hash.js';
import { desiredStatefulSet } from './stateful-set.js';
import { cacheCluster, withGeneration, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster =>
  cacheCluster('sessions', withUid('uid-1'), withGeneration(3), withSpec(spec));

const container = (sts: ReturnType<typeof desiredStatefulSet>, name: string) => {
  const c = sts.spec.template.spec.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
};

describe('desiredStatefulSet', () => {
  it('runs one Redis pod for standalone, governed by the headless Service', () => {
    const sts = desiredStatefulSet(cc({ image: 'redis:7.2-alpine' }));
    expect(sts).toMatchObject({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'sessions', namespace: 'shop' },
    });
    expect(sts.metadata.ownerReferences[0]).toMatchObject({
      kind: 'CacheCluster',
      name: 'sessions',
      uid: 'uid-1',
      controller: true,
      blockOwnerDeletion: true,
    });
    expect(sts.spec.serviceName).toBe('sessions-headless');
    expect(sts.spec.replicas).toBe(1);
    expect(sts.spec.selector.matchLabels).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
    });
    expect(sts.spec.template.metadata.labels).toMatchObject(sts.spec.selector.matchLabels);
    const redis = container(sts, 'redis');
    expect(redis.image).toBe('redis:7.2-alpine');
    expect(redis.command?.[0]).toBe('sh');
    expect(redis.command?.[2]).toContain('exec redis-server "$@"');
    expect(redis.command?.[2]).toContain('/etc/redis/redis.conf');
    expect(redis.command?.[2]).not.toContain('replicaof');
    expect(redis.ports).toEqual([{ name: 'redis', containerPort: 6379, protocol: 'TCP' }]);
    expect(redis.readinessProbe?.exec?.command.join(' ')).toContain('redis-cli -h 127.0.0.1 -p 6379 ping');
    expect(redis.livenessProbe?.tcpSocket).toEqual({ port: 'redis' });
    expect(sts.spec.template.spec.containers).toHaveLength(1);
    expect(sts).not.toHaveProperty('status');
  });

  it('runs 1 + replicas pods for replication; every pod starts the same way (no ordinal, no replicaof)', () => {
    const sts = desiredStatefulSet(cc({ topology: 'replication', replicas: 2 }));
    expect(sts.spec.replicas).toBe(3);
    const redis = container(sts, 'redis');
    const script = redis.command?.[2] ?? '';
    // The placeholder primary comes from redis.conf; the operator gives each pod its role.
    expect(script).not.toContain('replicaof');
    expect(script).not.toContain('POD_NAME');
    expect(script).toBe(container(desiredStatefulSet(cc({})), 'redis').command?.[2]);
    expect(redis.env ?? []).not.toContainEqual(expect.objectContaining({ name: 'POD_NAME' }));
    // The operator restarts replication pods itself (replicas first, then a switchover, then the old primary).
    expect(sts.spec.updateStrategy).toEqual({ type: 'OnDelete' });
    // Standalone: one pod, nothing to switch over to; the StatefulSet controller rolls it.
    expect(desiredStatefulSet(cc({})).spec.updateStrategy).toEqual({ type: 'RollingUpdate' });
  });

  it('mounts the ConfigMap by name only: eviction never changes the pod template', () => {
    const a = desiredStatefulSet(cc({ eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } }));
    const b = desiredStatefulSet(cc({ eviction: { policy: 'volatile-lfu', maxMemory: '1Gi' } }));
    const c = desiredStatefulSet(
      cc({ defaultTTLSeconds: 5, sidecar: { writePolicy: 'write-back', l1: { maxEntries: 1 } } }),
    );
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(a.spec.template.spec.volumes).toContainEqual({
      name: 'config',
      configMap: { name: 'sessions-config', items: [{ key: 'redis.conf', path: 'redis.conf' }] },
    });
    expect(JSON.stringify(a.spec.template)).not.toMatch(/maxmemory|67108864/);
  });

  it('reads the password from the Secret, never inlines it', () => {
    const sts = desiredStatefulSet(
      cc({ auth: { secretRef: { name: 'sessions-auth', key: 'password' } }, metrics: { exporter: true } }),
    );
    const ref = { secretKeyRef: { name: 'sessions-auth', key: 'password' } };
    expect(container(sts, 'redis').env).toEqual([
      { name: 'REDIS_PASSWORD', valueFrom: ref },
      { name: 'REDISCLI_AUTH', valueFrom: ref },
    ]);
    expect(container(sts, 'redis-exporter').env).toContainEqual({ name: 'REDIS_PASSWORD', valueFrom: ref });
    expect(container(sts, 'redis').command?.[2]).toContain(
      '--requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD"',
    );
  });

  it('adds the redis_exporter container on port 9121 when metrics.exporter', () => {
    const sts = desiredStatefulSet(cc({ metrics: { exporter: true } }));
    const exp = container(sts, 'redis-exporter');
    expect(exp.image).toBe('oliver006/redis_exporter:v1.62.0');
    expect(exp.ports).toEqual([{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }]);
    expect(exp.env).toContainEqual({ name: 'REDIS_ADDR', value: 'redis://127.0.0.1:6379' });
    expect(
      container(
        desiredStatefulSet(cc({ metrics: { exporter: true } }), { exporterImage: 'mirror/exporter:1' }),
        'redis-exporter',
      ).image,
    ).toBe('mirror/exporter:1');
  });

  it('meets Pod Security restricted: the redis user, no capabilities, read-only root, RuntimeDefault seccomp', () => {
    const sts = desiredStatefulSet(
      cc({ topology: 'replication', metrics: { exporter: true }, auth: { secretRef: { name: 'a', key: 'p' } } }),
    );
    const pod = sts.spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 999,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers.map((c) => c.name)).toEqual(['redis', 'redis-exporter']);
    for (const c of pod.containers) {
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
    // Redis writes only to `dir` (/data): an emptyDir; the config is a read-only ConfigMap volume.
    expect(container(sts, 'redis').volumeMounts).toEqual([
      { name: 'config', mountPath: '/etc/redis', readOnly: true },
      { name: 'data', mountPath: '/data' },
    ]);
    expect(pod.volumes).toContainEqual({ name: 'data', emptyDir: {} });
  });

  it('is never BestEffort: requests CPU and memory when the spec sets no resources', () => {
    expect(container(desiredStatefulSet(cc({})), 'redis').resources).toEqual({
      requests: { cpu: '50m', memory: '352Mi' },
    });
    // A limit without a request: Kubernetes copies the limit into the request; no memory request is added.
    expect(container(desiredStatefulSet(cc({ resources: { limits: { memory: '1Gi' } } })), 'redis').resources).toEqual({
      limits: { memory: '1Gi' },
      requests: { cpu: '50m' },
    });
  });

  it('keeps the resources when only eviction changes (a live setting must not roll the pods)', () => {
    const small = desiredStatefulSet(cc({ eviction: { maxMemory: '16Mi' } }));
    const big = desiredStatefulSet(cc({ eviction: { maxMemory: '8Gi' } }));
    expect(container(big, 'redis').resources).toEqual(container(small, 'redis').resources);
    expect(big.spec.template).toEqual(small.spec.template);
  });

  it('passes the resources to the Redis container', () => {
    const resources = { limits: { memory: '512Mi' }, requests: { cpu: '100m', memory: '512Mi' } };
    expect(container(desiredStatefulSet(cc({ resources })), 'redis').resources).toEqual(resources);
  });

  it('gives deep-equal output for equal input', () => {
    const spec: CacheClusterSpec = {
      topology: 'replication',
      replicas: 1,
      metrics: { exporter: true },
      auth: { secretRef: { name: 's', key: 'k' } },
    };
    expect(desiredStatefulSet(cc(spec))).toEqual(desiredStatefulSet(cc(structuredClone(spec))));
  });
});

describe('restart hash', () => {
  const base: CacheClusterSpec = { image: 'redis:7.2-alpine', eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } };
  const hashOf = (spec: CacheClusterSpec) =>
    desiredStatefulSet(cc(spec)).spec.template.metadata.annotations?.['cache.ripplecache.io/restart-hash'];

  it('is a 16-hex-digit annotation on the pod template', () => {
    expect(hashOf(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(hashOf(base)).toBe(restartHash(cc(base)));
  });

  it('stays when eviction, defaultTTL, sidecar settings or the replica count change', () => {
    const h = hashOf({ ...base, topology: 'replication', replicas: 1 });
    expect(
      hashOf({
        ...base,
        topology: 'replication',
        replicas: 1,
        eviction: { policy: 'volatile-lfu', maxMemoryPercent: 50 },
      }),
    ).toBe(h);
    expect(hashOf({ ...base, topology: 'replication', replicas: 5 })).toBe(h);
    expect(
      hashOf({
        ...base,
        topology: 'replication',
        replicas: 1,
        defaultTTLSeconds: 1,
        sidecar: { writePolicy: 'write-around' },
      }),
    ).toBe(h);
    expect(hashOf({ ...base, topology: 'replication', replicas: 1, flush: { schedule: '@hourly' } })).toBe(h);
  });

  it('stays when the persistence mode changes (CONFIG SET appendonly / save, live) or podTemplate does', () => {
    const stored: CacheClusterSpec = { ...base, persistence: { mode: 'none', storage: { size: '1Gi' } } };
    const h = hashOf(stored);
    expect(hashOf({ ...base, persistence: { mode: 'aof', storage: { size: '1Gi' } } })).toBe(h);
    expect(hashOf({ ...base, persistence: { mode: 'rdb', storage: { size: '1Gi' } } })).toBe(h);
    expect(hashOf({ ...stored, podTemplate: { spec: { nodeSelector: { disk: 'ssd' } } } })).toBe(h);
  });

  it('changes with the image, topology, resources, exporter and auth Secret', () => {
    const h = hashOf(base);
    const changed: CacheClusterSpec[] = [
      { ...base, image: 'redis:7.4-alpine' },
      { ...base, topology: 'replication' },
      { ...base, resources: { limits: { memory: '1Gi' } } },
      { ...base, metrics: { exporter: true } },
      { ...base, auth: { secretRef: { name: 'a', key: 'password' } } },
    ];
    const hashes = changed.map(hashOf);
    for (const x of hashes) expect(x).not.toBe(h);
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(hashOf({ ...base, auth: { secretRef: { name: 'b', key: 'password' } } })).not.toBe(hashOf(changed[4]!));
  });

  it('changes when the password in the auth Secret is rotated (its digest), and never contains it', () => {
    const spec: CacheClusterSpec = { ...base, auth: { secretRef: { name: 'a', key: 'password' } } };
    const withDigest = (d: string) => desiredStatefulSet(cc(spec), { authChecksum: d });
    const before = withDigest('0123456789abcdef');
    const after = withDigest('fedcba9876543210');
    expect(after.spec.template.metadata.annotations?.['cache.ripplecache.io/restart-hash']).not.toBe(
      before.spec.template.metadata.annotations?.['cache.ripplecache.io/restart-hash'],
    );
    expect(withDigest('0123456789abcdef')).toEqual(before);
    // Without a known digest (no auth) the hash is the one a CacheCluster without auth always had.
    expect(hashOf(base)).toBe(restartHash(cc(base), {}));
  });

  it('ignores key order and spelled-out defaults', () => {
    expect(hashOf({ eviction: { maxMemory: '64Mi' }, image: 'redis:7.2-alpine' })).toBe(hashOf(base));
    expect(
      hashOf({ ...base, topology: 'standalone', persistence: { mode: 'none' }, metrics: { exporter: false } }),
    ).toBe(hashOf(base));
  });
});
