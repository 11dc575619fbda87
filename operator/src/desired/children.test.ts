import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import type { KubeObject } from '../k8s/kube-client.js';
import { desiredChildren, MAX_SHARDS } from './children.js';
import { desiredClientService, desiredReplicasService } from './client-service.js';
import { desiredHeadlessService } from './headless-service.js';
import { ownerReference } from './owner-reference.js';
import { desiredPodDisruptionBudget } from './pod-disruption-budget.js';
import { cacheCluster, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec, uid = 'uid-1'): CacheCluster =>
  cacheCluster('sessions', ...(uid ? [withUid(uid)] : []), withSpec(spec));

describe('desiredHeadlessService', () => {
  it('is headless and publishes not-ready pods', () => {
    const svc = desiredHeadlessService(cc({}));
    expect(svc).toMatchObject({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'sessions-headless', namespace: 'shop' },
    });
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
    expect(svc.spec.selector).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
    });
    expect(svc.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
  });

  it('exposes the exporter port when the exporter runs', () => {
    expect(desiredHeadlessService(cc({ metrics: { exporter: true } })).spec.ports.map((p) => p.port)).toEqual([
      6379, 9121,
    ]);
  });
});

describe('desiredClientService', () => {
  it('selects the one pod for standalone', () => {
    const svc = desiredClientService(cc({}));
    expect(svc.metadata.name).toBe('sessions');
    expect(svc.spec.selector).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
    });
    expect(svc.spec).not.toHaveProperty('clusterIP');
    expect(svc.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
  });

  it('selects the pod labelled role primary for replication (the operator moves the label on failover)', () => {
    expect(desiredClientService(cc({ topology: 'replication', replicas: 2 })).spec.selector).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
      'cache.ripplecache.io/role': 'primary',
    });
  });
});

describe('desiredReplicasService', () => {
  it('selects the pods labelled role replica, on the Redis port', () => {
    const svc = desiredReplicasService(cc({ topology: 'replication', replicas: 2 }));
    expect(svc.metadata.name).toBe('sessions-replicas');
    expect(svc.spec.selector).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
      'cache.ripplecache.io/role': 'replica',
    });
    expect(svc.spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
  });
});

describe('desiredPodDisruptionBudget', () => {
  it('allows one Redis pod down at a time', () => {
    const pdb = desiredPodDisruptionBudget(cc({}));
    expect(pdb).toMatchObject({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'sessions' } });
    expect(pdb.spec).toEqual({
      maxUnavailable: 1,
      selector: {
        matchLabels: { 'cache.ripplecache.io/cluster': 'sessions', 'app.kubernetes.io/component': 'server' },
      },
    });
  });
});

describe('ownerReference', () => {
  it('needs the CacheCluster uid', () => {
    expect(() => ownerReference(cc({}, ''))).toThrow(/uid/);
  });
});

describe('desiredChildren', () => {
  it('lists every child in apply order, the CronJob for deletion when there is no flush', () => {
    const { apply, deleteIfPresent } = desiredChildren(cc({ topology: 'replication', replicas: 2 }));
    expect(apply.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ConfigMap/sessions-config',
      'Service/sessions-headless',
      'Service/sessions',
      'StatefulSet/sessions',
      'Service/sessions-replicas',
      'PodDisruptionBudget/sessions',
    ]);
    expect(deleteIfPresent.filter((r) => r.kind !== 'StatefulSet')).toEqual([
      { apiVersion: 'batch/v1', kind: 'CronJob', namespace: 'shop', name: 'sessions-flush' },
    ]);
  });

  it('gives a standalone CacheCluster (one pod) no PodDisruptionBudget, and deletes one left from before', () => {
    const { apply, deleteIfPresent } = desiredChildren(cc({}));
    expect(apply.map((o) => o.kind)).toEqual(['ConfigMap', 'Service', 'Service', 'StatefulSet']);
    expect(deleteIfPresent.filter((r) => r.kind !== 'StatefulSet')).toEqual([
      { apiVersion: 'v1', kind: 'Service', namespace: 'shop', name: 'sessions-replicas' },
      { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', namespace: 'shop', name: 'sessions' },
      { apiVersion: 'batch/v1', kind: 'CronJob', namespace: 'shop', name: 'sessions-flush' },
    ]);
    // Replication with no replicas is one pod too.
    expect(desiredChildren(cc({ topology: 'replication', replicas: 0 })).apply.map((o) => o.kind)).not.toContain(
      'PodDisruptionBudget',
    );
  });

  it('includes the CronJob when flush is set', () => {
    const { apply, deleteIfPresent } = desiredChildren(cc({ topology: 'replication', flush: { schedule: '@daily' } }));
    expect(apply.at(-1)).toMatchObject({ kind: 'CronJob', metadata: { name: 'sessions-flush' } });
    expect(deleteIfPresent.filter((r) => r.kind !== 'StatefulSet')).toEqual([]);
  });

  it('deletes the StatefulSets of another topology (a topology change leaves none behind)', () => {
    for (const topology of ['standalone', 'replication'] as const) {
      const { apply, deleteIfPresent } = desiredChildren(cc({ topology }));
      const sets = deleteIfPresent.filter((r) => r.kind === 'StatefulSet');
      // Every shard index the CRD allows (spec.shards is at most 128), never the StatefulSet it applies.
      expect(sets).toHaveLength(MAX_SHARDS);
      expect(sets[0]).toEqual({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        namespace: 'shop',
        name: 'sessions-shard-0',
      });
      expect(sets.at(-1)!.name).toBe(`sessions-shard-${MAX_SHARDS - 1}`);
      const applied = apply.filter((c) => c.kind === 'StatefulSet').map((c) => c.metadata.name);
      expect(applied).toEqual(['sessions']);
      expect(sets.map((r) => r.name)).not.toContain('sessions');
    }
    const cluster = desiredChildren(cc({ topology: 'cluster', shards: 3 }));
    expect(cluster.deleteIfPresent.filter((r) => r.kind === 'StatefulSet')).toEqual([
      { apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: 'shop', name: 'sessions' },
    ]);
  });

  it('gives every child apiVersion, kind, name, namespace, labels and the controller owner reference; no status or resourceVersion', () => {
    const { apply } = desiredChildren(
      cc({ topology: 'replication', replicas: 2, flush: { schedule: '@daily' }, metrics: { exporter: true } }),
    );
    expect(apply.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata.name}`)).toEqual([
      'v1 ConfigMap/sessions-config',
      'v1 Service/sessions-headless',
      'v1 Service/sessions',
      'apps/v1 StatefulSet/sessions',
      'v1 Service/sessions-replicas',
      'policy/v1 PodDisruptionBudget/sessions',
      'batch/v1 CronJob/sessions-flush',
    ]);
    for (const child of apply) {
      expect(child.metadata.namespace).toBe('shop');
      expect(child.metadata.labels['app.kubernetes.io/managed-by']).toBe('ripplecache-operator');
      expect(child.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'cache.ripplecache.io/v1alpha1',
          kind: 'CacheCluster',
          name: 'sessions',
          uid: 'uid-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(child).not.toHaveProperty('status');
      expect(child.metadata).not.toHaveProperty('resourceVersion');
    }
  });

  it('fits the k8s adapter (type-checked: the children are KubeObjects)', () => {
    const objects: KubeObject[] = desiredChildren(cc({ topology: 'replication', flush: { schedule: '@daily' } })).apply;
    expect(objects).toHaveLength(7);
  });

  it('builds one StatefulSet per shard for topology cluster, a client Service over every node, no replicas Service', () => {
    const children = desiredChildren(
      cc({ topology: 'cluster', shards: 4, replicas: 1, flush: { schedule: '@daily' } }),
    );
    const names = children.apply.map((c) => `${c.kind}/${c.metadata.name}`);
    expect(names).toEqual([
      'ConfigMap/sessions-config',
      'Service/sessions-headless',
      'Service/sessions',
      'StatefulSet/sessions-shard-0',
      'StatefulSet/sessions-shard-1',
      'StatefulSet/sessions-shard-2',
      'StatefulSet/sessions-shard-3',
      'PodDisruptionBudget/sessions',
      'CronJob/sessions-flush',
    ]);
    const sts = children.apply.filter((c) => c.kind === 'StatefulSet') as Array<{
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ ports: unknown[] }> } };
      };
    }>;
    sts.forEach((s, i) => {
      expect(s.spec.replicas).toBe(2);
      expect(s.spec.selector.matchLabels).toEqual({
        'cache.ripplecache.io/cluster': 'sessions',
        'app.kubernetes.io/component': 'server',
        'cache.ripplecache.io/shard': String(i),
      });
      expect(s.spec.template.metadata.labels['cache.ripplecache.io/shard']).toBe(String(i));
      expect(s.spec.template.spec.containers[0]!.ports).toContainEqual({
        name: 'cluster-bus',
        containerPort: 16379,
        protocol: 'TCP',
      });
    });
    const client = children.apply.find((c) => c.kind === 'Service' && c.metadata.name === 'sessions') as {
      spec: { selector: Record<string, string> };
    };
    expect(client.spec.selector).toEqual({
      'cache.ripplecache.io/cluster': 'sessions',
      'app.kubernetes.io/component': 'server',
    });
    const conf = (children.apply[0] as { data: Record<string, string> }).data['redis.conf']!;
    expect(conf).toContain('cluster-enabled yes\n');
    expect(conf).toContain('cluster-config-file /data/nodes.conf\n');
    expect(conf).toContain('cluster-allow-replica-migration no\n');
    expect(children.deleteIfPresent.map((c) => `${c.kind}/${c.name}`)).toEqual([
      'StatefulSet/sessions',
      'Service/sessions-replicas',
    ]);
  });

  it('gives deep-equal output for equal input, and does not share objects between calls', () => {
    const spec: CacheClusterSpec = {
      topology: 'replication',
      replicas: 2,
      resources: { limits: { memory: '1Gi' } },
      eviction: { maxMemoryPercent: 50 },
    };
    const a = desiredChildren(cc(spec));
    const b = desiredChildren(cc(structuredClone(spec)));
    expect(a).toEqual(b);
    (a.apply[3] as { spec: { replicas: number } }).spec.replicas = 99;
    expect(desiredChildren(cc(spec))).toEqual(b);
  });

  it('does not change the CacheCluster it is given', () => {
    const input = cc({
      topology: 'replication',
      replicas: 1,
      resources: { limits: { memory: '1Gi' } },
      flush: { schedule: '@daily' },
    });
    const copy = structuredClone(input);
    desiredChildren(input);
    expect(input).toEqual(copy);
  });
});
