import {
  ANNOTATION_RESTART_HASH,
  DEFAULT_EXPORTER_IMAGE,
  LABEL_SHARD,
  REDIS_CLUSTER_BUS_PORT,
  REDIS_CLUSTER_BUS_PORT_NAME,
  EXPORTER_PORT,
  EXPORTER_PORT_NAME,
  REDIS_CONF_DIR,
  REDIS_CONF_KEY,
  REDIS_DATA_DIR,
  REDIS_PORT,
  REDIS_PORT_NAME,
} from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { Container, EnvVar, PersistentVolumeClaimTemplate, StatefulSet, Volume } from './kube-types.js';
import { commonLabels, selectorLabels, serverPodLabels } from './labels.js';
import { configMapName, headlessServiceName, shardStatefulSetName, statefulSetName } from './names.js';
import { childMetadata } from './owner-reference.js';
import { passwordEnv } from './password-env.js';
import { mergePodMetadata, podPlacement } from './pod-placement.js';
import { redisPodSecurityContext, restrictedContainerSecurityContext } from './pod-security.js';
import { redisResources } from './redis-resources.js';
import { resolveSpec } from './resolved-spec.js';
import type { ResolvedSpec } from './resolved-spec.js';
import { restartHash } from './restart-hash.js';

/**
 * The Redis container's shell entrypoint: redis-server with the mounted config and the password (when set) as
 * requirepass/masterauth. The same for every pod: with topology replication every pod starts as a replica of
 * the placeholder primary in `redis.conf`, and the operator makes one the primary (REPLICAOF NO ONE) and the
 * others its replicas, by the addresses it resolves (the headless Service's DNS names, never an IP).
 */
export function redisEntrypoint(): string {
  return [
    'set -eu',
    `set -- ${REDIS_CONF_DIR}/${REDIS_CONF_KEY}`,
    'if [ -n "${REDIS_PASSWORD:-}" ]; then set -- "$@" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD"; fi',
    'exec redis-server "$@"',
  ].join('\n');
}

function redisContainer(spec: ResolvedSpec): Container {
  const c: Container = {
    name: 'redis',
    image: spec.image,
    command: ['sh', '-c', redisEntrypoint()],
    ports: [
      { name: REDIS_PORT_NAME, containerPort: REDIS_PORT, protocol: 'TCP' },
      ...(spec.topology === 'cluster'
        ? [{ name: REDIS_CLUSTER_BUS_PORT_NAME, containerPort: REDIS_CLUSTER_BUS_PORT, protocol: 'TCP' as const }]
        : []),
    ],
    readinessProbe: {
      exec: { command: ['sh', '-c', `redis-cli -h 127.0.0.1 -p ${REDIS_PORT} ping | grep -q PONG`] },
      initialDelaySeconds: 2,
      periodSeconds: 5,
      timeoutSeconds: 3,
      successThreshold: 1,
      failureThreshold: 3,
    },
    livenessProbe: {
      tcpSocket: { port: REDIS_PORT_NAME },
      initialDelaySeconds: 15,
      periodSeconds: 10,
      timeoutSeconds: 3,
      successThreshold: 1,
      failureThreshold: 6,
    },
    volumeMounts: [
      { name: 'config', mountPath: REDIS_CONF_DIR, readOnly: true },
      { name: 'data', mountPath: REDIS_DATA_DIR },
    ],
    resources: redisResources(spec.resources),
    // Redis writes only to `dir` (/data: an emptyDir, or the pod's volume claim with persistence.storage);
    // the config is read from the ConfigMap volume.
    securityContext: restrictedContainerSecurityContext(),
  };
  const env: EnvVar[] = [...passwordEnv(spec, ['REDIS_PASSWORD', 'REDISCLI_AUTH'])];
  if (env.length > 0) c.env = env;
  return c;
}

function exporterContainer(spec: ResolvedSpec, image: string): Container {
  return {
    name: 'redis-exporter',
    image,
    env: [{ name: 'REDIS_ADDR', value: `redis://127.0.0.1:${REDIS_PORT}` }, ...passwordEnv(spec, ['REDIS_PASSWORD'])],
    ports: [{ name: EXPORTER_PORT_NAME, containerPort: EXPORTER_PORT, protocol: 'TCP' }],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
    // A static binary that writes nothing; runs as the pod's user.
    securityContext: restrictedContainerSecurityContext(),
  };
}

/** The volume claim template `data` of `persistence.storage`: one ReadWriteOnce volume per pod. */
export function dataVolumeClaimTemplate(
  cc: CacheCluster,
  storage: NonNullable<ResolvedSpec['persistence']['storage']>,
): PersistentVolumeClaimTemplate {
  return {
    metadata: { name: 'data', labels: { ...commonLabels(cc), ...selectorLabels(cc) } },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(storage.className !== undefined ? { storageClassName: storage.className } : {}),
      resources: { requests: { storage: storage.size } },
    },
  };
}

/**
 * `<name>`: the Redis pods. 1 pod for standalone, 1 + replicas for replication (pod 0 the primary).
 * The pod template depends only on restart-requiring settings and on `podTemplate` (labels, annotations,
 * placement); eviction and the persistence mode reach the pods through CONFIG SET and the ConfigMap
 * (mounted under a fixed name), so changing them never rolls the pods. With `persistence.storage`, /data is
 * a volume claim template `data` (one PVC per pod, kept or deleted as the retention policy says); else an
 * emptyDir. By default the pods prefer different nodes (`podPlacement`).
 * Topology `cluster` has one StatefulSet per shard instead (`desiredShardStatefulSet`). The pods meet Pod
 * Security `restricted`: Redis and the exporter run as the Redis image's user (not root), without
 * capabilities or privilege escalation, on a read-only root filesystem, with the runtime's seccomp profile;
 * `podTemplate` cannot change that (only its named placement fields are copied).
 */
export function desiredStatefulSet(cc: CacheCluster, opts: DesiredOptions = {}): StatefulSet {
  return buildStatefulSet(cc, opts, statefulSetName(cc), {});
}

/**
 * Topology cluster: `<name>-shard-<shard>`, one shard's pods (1 + replicas; which one is the primary is Redis
 * Cluster's business, the operator only makes the others replicate it). Its pods and selector carry
 * `cache.ripplecache.io/shard: "<shard>"`, so that scale-in deletes one shard's StatefulSet once its slots
 * have moved. Every pod is a Redis Cluster node (`cluster-enabled yes` in redis.conf); the operator forms the
 * cluster (`reconcile/cluster-step.ts`). Rolling updates are the StatefulSet controller's: a restarted
 * primary's replica is promoted by Redis Cluster, and the pod rejoins as a replica.
 */
export function desiredShardStatefulSet(cc: CacheCluster, shard: number, opts: DesiredOptions = {}): StatefulSet {
  return buildStatefulSet(cc, opts, shardStatefulSetName(cc, shard), { [LABEL_SHARD]: String(shard) });
}

function buildStatefulSet(
  cc: CacheCluster,
  opts: DesiredOptions,
  name: string,
  extraSelector: Record<string, string>,
): StatefulSet {
  const spec = resolveSpec(cc);
  const containers = [redisContainer(spec)];
  if (spec.exporter) containers.push(exporterContainer(spec, opts.exporterImage ?? DEFAULT_EXPORTER_IMAGE));
  const { storage, retention } = spec.persistence;
  const volumes: Volume[] = [
    { name: 'config', configMap: { name: configMapName(cc), items: [{ key: REDIS_CONF_KEY, path: REDIS_CONF_KEY }] } },
  ];
  // Without storage, the data lives in the pod (a cache); with it, the claim template `data` provides the volume.
  if (storage === undefined) volumes.push({ name: 'data', emptyDir: {} });
  const userMeta = cc.spec.podTemplate?.metadata;
  const sts: StatefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: childMetadata(cc, name, extraSelector),
    spec: {
      serviceName: headlessServiceName(cc),
      replicas: spec.pods,
      selector: { matchLabels: { ...selectorLabels(cc), ...extraSelector } },
      // Replication: the operator restarts the pods itself (replicas first, then a switchover, then the old
      // primary: rolling-decision.ts). Standalone: one pod, nothing to switch over to, the controller rolls it.
      updateStrategy: spec.topology === 'replication' ? { type: 'OnDelete' } : { type: 'RollingUpdate' },
      template: {
        metadata: {
          labels: mergePodMetadata(userMeta?.labels, { ...serverPodLabels(cc), ...extraSelector }, 'label'),
          annotations: mergePodMetadata(
            userMeta?.annotations,
            { [ANNOTATION_RESTART_HASH]: restartHash(cc, opts) },
            'annotation',
          ),
        },
        spec: {
          enableServiceLinks: false,
          ...podPlacement(cc),
          securityContext: redisPodSecurityContext(),
          containers,
          volumes,
        },
      },
    },
  };
  if (storage !== undefined) {
    sts.spec.volumeClaimTemplates = [dataVolumeClaimTemplate(cc, storage)];
    if (retention !== undefined) sts.spec.persistentVolumeClaimRetentionPolicy = { ...retention };
  }
  return sts;
}
