import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec, PodTemplate } from '../api/v1alpha1/types.js';
import { desiredChildren } from './children.js';
import { desiredFlushCronJob } from './flush-cron-job.js';
import { defaultPodAntiAffinity, podPlacement } from './pod-placement.js';
import { desiredStatefulSet } from './stateful-set.js';
import { cacheCluster, withGeneration, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster =>
  cacheCluster('sessions', withUid('uid-1'), withGeneration(3), withSpec(spec));
const selector = { 'cache.ripplecache.io/cluster': 'sessions', 'app.kubernetes.io/component': 'server' };

const placement: PodTemplate = {
  metadata: { labels: { team: 'checkout' }, annotations: { 'example.com/owner': 'shop' } },
  spec: {
    nodeSelector: { 'node.example.com/pool': 'cache' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cache', effect: 'NoSchedule' }],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }],
        },
      },
    },
    topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
    ],
    priorityClassName: 'cache-critical',
    imagePullSecrets: [{ name: 'registry' }],
  },
};

describe('pod placement of the Redis pods', () => {
  it('by default prefers spreading one CacheCluster over nodes (kubernetes.io/hostname), nothing else', () => {
    const pod = desiredStatefulSet(cc({ topology: 'replication', replicas: 2 })).spec.template.spec;
    expect(pod.affinity).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' },
          },
        ],
      },
    });
    for (const f of [
      'nodeSelector',
      'tolerations',
      'topologySpreadConstraints',
      'priorityClassName',
      'imagePullSecrets',
    ])
      expect(pod).not.toHaveProperty(f);
  });

  it('copies nodeSelector, tolerations, affinity, spread constraints, priority class and pull secrets', () => {
    const sts = desiredStatefulSet(cc({ podTemplate: placement }));
    const pod = sts.spec.template.spec;
    expect(pod.nodeSelector).toEqual({ 'node.example.com/pool': 'cache' });
    expect(pod.tolerations).toEqual(placement.spec!.tolerations);
    expect(pod.affinity?.nodeAffinity).toEqual(placement.spec!.affinity!.nodeAffinity);
    // The default anti-affinity stays next to a user's node affinity.
    expect(pod.affinity?.podAntiAffinity).toEqual(defaultPodAntiAffinity(cc({})));
    // A spread constraint without a labelSelector counts this CacheCluster's Redis pods.
    expect(pod.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selector },
      },
    ]);
    expect(pod.priorityClassName).toBe('cache-critical');
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry' }]);
    expect(sts.spec.template.metadata.labels).toMatchObject({ team: 'checkout', ...selector });
    expect(sts.spec.template.metadata.annotations).toMatchObject({ 'example.com/owner': 'shop' });
    expect(sts.spec.template.metadata.annotations?.['cache.ripplecache.io/restart-hash']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('lets podAntiAffinity replace the default, and {} turn it off', () => {
    const own = {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app: 'x' } }, topologyKey: 'topology.kubernetes.io/zone' },
      ],
    };
    expect(podPlacement(cc({ podTemplate: { spec: { affinity: { podAntiAffinity: own } } } })).affinity).toEqual({
      podAntiAffinity: own,
    });
    expect(podPlacement(cc({ podTemplate: { spec: { affinity: { podAntiAffinity: {} } } } }))).not.toHaveProperty(
      'affinity',
    );
  });

  it('never lets podTemplate labels or annotations replace the operator’s (even if stored before the CRD rule)', () => {
    const sts = desiredStatefulSet(
      cc({
        podTemplate: {
          metadata: {
            labels: {
              'cache.ripplecache.io/cluster': 'other',
              'cache.ripplecache.io/role': 'primary',
              'app.kubernetes.io/component': 'flush',
              'app.kubernetes.io/name': 'x',
              'statefulset.kubernetes.io/pod-name': 'x',
              team: 'a',
            },
            annotations: { 'cache.ripplecache.io/restart-hash': '0000000000000000', note: 'n' },
          },
        },
      }),
    );
    const meta = sts.spec.template.metadata;
    expect(meta.labels).toEqual({
      'app.kubernetes.io/name': 'redis',
      'app.kubernetes.io/instance': 'sessions',
      'app.kubernetes.io/managed-by': 'ripplecache-operator',
      ...selector,
      team: 'a',
    });
    expect(meta.annotations?.['cache.ripplecache.io/restart-hash']).not.toBe('0000000000000000');
    expect(meta.annotations?.note).toBe('n');
  });

  it('cannot weaken Pod Security restricted: only the named placement fields are copied', () => {
    // What a podTemplate could carry if the API server had not pruned it (an old CRD, a direct etcd write).
    const hostile = {
      metadata: { labels: { team: 'a' } },
      spec: {
        nodeSelector: { a: 'b' },
        hostNetwork: true,
        hostPID: true,
        serviceAccountName: 'admin',
        securityContext: { runAsUser: 0, runAsNonRoot: false, privileged: true },
        containers: [{ name: 'redis', securityContext: { privileged: true } }],
        volumes: [{ name: 'host', hostPath: { path: '/' } }],
      },
    } as unknown as PodTemplate;
    const safe = desiredStatefulSet(
      cc({ podTemplate: { metadata: { labels: { team: 'a' } }, spec: { nodeSelector: { a: 'b' } } } }),
    );
    const sts = desiredStatefulSet(cc({ podTemplate: hostile }));
    expect(sts).toEqual(safe);
    const pod = sts.spec.template.spec as Record<string, unknown>;
    for (const f of ['hostNetwork', 'hostPID', 'serviceAccountName']) expect(pod).not.toHaveProperty(f);
    expect(sts.spec.template.spec.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 999,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const c of sts.spec.template.spec.containers)
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
  });

  it('does not share objects with the spec (a later change of the output leaves the CacheCluster alone)', () => {
    const c = cc({ podTemplate: structuredClone(placement) });
    const pod = desiredStatefulSet(c).spec.template.spec;
    pod.tolerations![0]!.value = 'changed';
    pod.nodeSelector!['x'] = 'y';
    expect(c.spec.podTemplate).toEqual(placement);
  });

  it('gives the flush CronJob pods the pull secrets (same image) and no other placement', () => {
    const job = desiredFlushCronJob(cc({ podTemplate: placement, flush: { schedule: '@daily' } }))!;
    const pod = job.spec.jobTemplate.spec.template.spec;
    expect(pod.imagePullSecrets).toEqual([{ name: 'registry' }]);
    expect(pod).not.toHaveProperty('nodeSelector');
    expect(pod).not.toHaveProperty('affinity');
    expect(
      desiredFlushCronJob(cc({ flush: { schedule: '@daily' } }))!.spec.jobTemplate.spec.template.spec,
    ).not.toHaveProperty('imagePullSecrets');
  });
});

describe('persistence in the StatefulSet', () => {
  it('without storage: /data is an emptyDir, no volume claim templates, no retention policy', () => {
    const sts = desiredStatefulSet(cc({}));
    expect(sts.spec.template.spec.volumes).toContainEqual({ name: 'data', emptyDir: {} });
    expect(sts.spec).not.toHaveProperty('volumeClaimTemplates');
    expect(sts.spec).not.toHaveProperty('persistentVolumeClaimRetentionPolicy');
  });

  it('with storage: a claim template "data" mounted at /data, the class, and the retention policy defaults', () => {
    const sts = desiredStatefulSet(
      cc({ topology: 'replication', persistence: { mode: 'aof', storage: { size: '2Gi', className: 'fast' } } }),
    );
    expect(sts.spec.volumeClaimTemplates).toEqual([
      {
        metadata: {
          name: 'data',
          labels: {
            'app.kubernetes.io/name': 'redis',
            'app.kubernetes.io/instance': 'sessions',
            'app.kubernetes.io/managed-by': 'ripplecache-operator',
            ...selector,
          },
        },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'fast', resources: { requests: { storage: '2Gi' } } },
      },
    ]);
    expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Delete', whenScaled: 'Retain' });
    // The claim template provides the `data` volume: no emptyDir of that name.
    expect(sts.spec.template.spec.volumes?.map((v) => v.name)).toEqual(['config']);
    const redis = sts.spec.template.spec.containers.find((c) => c.name === 'redis')!;
    expect(redis.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
  });

  it('passes the retention policy as given, and keeps storage with mode none (ready for a live switch)', () => {
    const sts = desiredStatefulSet(
      cc({
        persistence: {
          mode: 'none',
          storage: { size: '1Gi' },
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Delete' },
        },
      }),
    );
    expect(sts.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Delete' });
    expect(sts.spec.volumeClaimTemplates?.[0]?.spec).not.toHaveProperty('storageClassName');
    expect(sts.spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage).toBe('1Gi');
  });

  it('builds children for every persistence mode with storage', () => {
    for (const mode of ['none', 'rdb', 'aof'] as const)
      expect(desiredChildren(cc({ persistence: { mode, storage: { size: '1Gi' } } })).apply.length).toBeGreaterThan(0);
  });
});
