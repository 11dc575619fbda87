/**
 * Names and numbers of the `cache.ripplecache.io/v1alpha1` API that other programs depend on:
 * the group, version and kind, the labels and annotations the operator writes, the ports, the
 * condition types and the phases. Change none of them without a note: users select on the labels,
 * dashboards scrape the ports, and sidecars subscribe to the channel.
 */

export const GROUP = 'cache.ripplecache.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;
export const KIND = 'CacheCluster';
export const LIST_KIND = 'CacheClusterList';
export const PLURAL = 'cacheclusters';
export const SINGULAR = 'cachecluster';
export const SHORT_NAMES: readonly string[] = ['cc'];
export const CATEGORIES: readonly string[] = ['ripplecache'];
/** `cacheclusters.cache.ripplecache.io`, the CRD's own name. */
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** The one field manager under which the operator server-side-applies every child. */
export const FIELD_MANAGER = 'ripplecache-operator';

// ---- Labels ---------------------------------------------------------------------------------------

/** Always `redis` on the children of a CacheCluster. */
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_NAME_VALUE = 'redis';
/** The CacheCluster's name. */
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
/** `ripplecache-operator`. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_MANAGED_BY_VALUE = FIELD_MANAGER;
/** What a pod does inside the CacheCluster: `server` (Redis pods) or `flush` (the flush CronJob's pods). */
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const COMPONENT_SERVER = 'server';
export const COMPONENT_FLUSH = 'flush';
/** The cross-cluster invalidation bridge's Deployment, pods and Service. */
export const COMPONENT_BRIDGE = 'bridge';
/** The bridge's HTTP port: /metrics, /healthz, /readyz, /v1/peers (what the operator reads). */
export const BRIDGE_PORT = 7072;
/** The CacheCluster's name; the label selectors of the operator's children use this one. */
export const LABEL_CLUSTER = 'cache.ripplecache.io/cluster';
/**
 * `primary` or `replica`, written on Redis pods only by the operator. Topology replication: `primary` on the pod
 * it made the primary (`status.primary`, once Redis reports it as master), `replica` on pods that replicate from
 * it with their link up; the client Service selects `primary`, the `<name>-replicas` Service `replica`.
 * Topology cluster: per shard, as Redis Cluster reports it (`status.shards[].primary` / `.replicas`, see
 * reconcile/cluster-roles.ts); no Service selects it there.
 */
export const LABEL_ROLE = 'cache.ripplecache.io/role';
export const ROLE_PRIMARY = 'primary';
export const ROLE_REPLICA = 'replica';
/** Topology cluster: the shard (`0`, `1`, …) of a Redis pod, i.e. of its StatefulSet `<name>-shard-<i>`. */
export const LABEL_SHARD = 'cache.ripplecache.io/shard';
/**
 * On application pods: `injected` once the webhook added the cache sidecar. The chart's PodMonitor selects
 * on it to scrape the sidecars' metrics port.
 */
export const LABEL_SIDECAR = 'cache.ripplecache.io/sidecar';
export const SIDECAR_INJECTED = 'injected';
/** Set by the StatefulSet controller on every pod it creates. */
export const LABEL_POD_NAME = 'statefulset.kubernetes.io/pod-name';

/** Label keys the StatefulSet controller sets on every pod it creates, besides `LABEL_POD_NAME`. */
export const LABEL_CONTROLLER_REVISION_HASH = 'controller-revision-hash';
export const LABEL_POD_INDEX = 'apps.kubernetes.io/pod-index';
/**
 * The prefix of the operator's own label and annotation keys (`cache.ripplecache.io/cluster`, `/role`,
 * `/restart-hash`, …). `spec.podTemplate.metadata` may set no key with it.
 */
export const RESERVED_KEY_PREFIX = `${GROUP}/`;
/**
 * The other pod label keys `spec.podTemplate.metadata.labels` may not set: the operator's selector and
 * identity labels, and those the StatefulSet controller sets.
 */
export const RESERVED_POD_LABELS: readonly string[] = [
  LABEL_NAME,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_COMPONENT,
  LABEL_POD_NAME,
  LABEL_CONTROLLER_REVISION_HASH,
  LABEL_POD_INDEX,
];

// ---- Annotations ----------------------------------------------------------------------------------

/**
 * On the Redis pod template: a hash of the settings that need a restart (image, topology,
 * persistence, resources, exporter, auth Secret). Live settings (eviction) never change it.
 */
export const ANNOTATION_RESTART_HASH = 'cache.ripplecache.io/restart-hash';
/** On an application pod: `<cachecluster-name>` asks the webhook to inject a sidecar configured from it. */
export const ANNOTATION_INJECT = 'cache.ripplecache.io/inject';

// ---- Ports, images, names -------------------------------------------------------------------------

export const REDIS_PORT = 6379;
export const REDIS_PORT_NAME = 'redis';
/** Topology cluster: the Redis Cluster bus (node-to-node gossip and failover), the client port + 10000. */
export const REDIS_CLUSTER_BUS_PORT = 16379;
export const REDIS_CLUSTER_BUS_PORT_NAME = 'cluster-bus';
/** The hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;
export const EXPORTER_PORT = 9121;
export const EXPORTER_PORT_NAME = 'metrics';
export const DEFAULT_EXPORTER_IMAGE = 'oliver006/redis_exporter:v1.62.0';
/** Keys of the ConfigMap `<name>-config`. */
export const REDIS_CONF_KEY = 'redis.conf';
export const SIDECAR_CONF_KEY = 'sidecar.yaml';
/** Where the Redis container sees `redis.conf`. */
export const REDIS_CONF_DIR = '/etc/redis';
export const REDIS_DATA_DIR = '/data';
/**
 * Where every Redis pod of topology replication starts replicating from: an address on the pod's own loopback
 * where nothing listens. A pod (re)starts as a replica without a master link, so it refuses SYNC/PSYNC from
 * other replicas (`-NOMASTERLINK`) and cannot hand them its emptiness; only the operator makes it a primary
 * (`REPLICAOF NO ONE`) or a replica of the primary. Port 1 is never a pod's Redis port.
 */
export const PLACEHOLDER_PRIMARY = { host: '127.0.0.1', port: 1 } as const;

// ---- Conditions and phases ------------------------------------------------------------------------

export const CONDITION_READY = 'Ready';
export const CONDITION_PROGRESSING = 'Progressing';
export const CONDITION_DEGRADED = 'Degraded';
export const CONDITION_CONFIG_APPLIED = 'ConfigApplied';
/** True when the spec sets fields the API accepts but this operator version does not act on yet. */
export const CONDITION_UNSUPPORTED = 'Unsupported';
/**
 * Topology replication: True while the recorded primary answers as master; False while it is lost (reasons
 * PrimaryLost, FailingOver, FailoverBlocked). Reason FailoverCompleted after a failover.
 */
export const CONDITION_PRIMARY_AVAILABLE = 'PrimaryAvailable';
/**
 * Topology replication, once the operator has looked at a roll: False/UpToDate, True/InProgress (a pod restarted,
 * a switchover), True/RollStuck (no progress for 2 minutes: the message names the pod and why; a Warning Event).
 */
export const CONDITION_ROLLING_UPDATE = 'RollingUpdate';
/** Only with `spec.invalidation.peers`: the bridge reaches every peer (fed by the bridge's /v1/peers). */
export const CONDITION_PEERS_REACHABLE = 'PeersReachable';

export const CONDITION_TYPES = [
  CONDITION_READY,
  CONDITION_PROGRESSING,
  CONDITION_DEGRADED,
  CONDITION_CONFIG_APPLIED,
  CONDITION_UNSUPPORTED,
  CONDITION_PRIMARY_AVAILABLE,
  CONDITION_ROLLING_UPDATE,
  CONDITION_PEERS_REACHABLE,
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const PHASES = ['Pending', 'Provisioning', 'Ready', 'Degraded', 'Failed'] as const;
export type Phase = (typeof PHASES)[number];

// ---- Enumerations of the spec ---------------------------------------------------------------------

export const TOPOLOGIES = ['standalone', 'replication', 'cluster'] as const;
export const EVICTION_POLICIES = [
  'noeviction',
  'allkeys-lru',
  'allkeys-lfu',
  'allkeys-random',
  'volatile-lru',
  'volatile-lfu',
  'volatile-random',
  'volatile-ttl',
] as const;
export const PERSISTENCE_MODES = ['none', 'rdb', 'aof'] as const;
export const RETENTION_POLICIES = ['Retain', 'Delete'] as const;
export const L1_POLICIES = ['lru', 'lfu', 'fifo', 'ttl', 'tinylfu'] as const;
export const WRITE_POLICIES = ['write-through', 'write-back', 'write-around'] as const;
/** `spec.durability.mode`: wait for a replica (`WAIT 1`) before a write is acknowledged, or not. */
export const DURABILITY_MODES = ['replicated', 'primary'] as const;
