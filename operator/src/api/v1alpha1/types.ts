/**
 * The `CacheCluster` resource as TypeScript types (architecture §2), and the defaults the operator
 * applies to fields left out. The OpenAPI schema in `schema.ts` describes the same shape to the API
 * server; keep the two in step (`schema.test.ts` fails when a spec field exists in only one of them).
 */
import type {
  API_VERSION,
  DURABILITY_MODES,
  EVICTION_POLICIES,
  KIND,
  L1_POLICIES,
  PERSISTENCE_MODES,
  Phase,
  RETENTION_POLICIES,
  TOPOLOGIES,
  WRITE_POLICIES,
} from './constants.js';

/** A Kubernetes quantity as stored: `256Mi`, `1G`, or a plain integer of bytes. */
export type Quantity = string | number;

export type Topology = (typeof TOPOLOGIES)[number];
export type EvictionPolicy = (typeof EVICTION_POLICIES)[number];
export type PersistenceMode = (typeof PERSISTENCE_MODES)[number];
export type RetentionPolicy = (typeof RETENTION_POLICIES)[number];
export type L1Policy = (typeof L1_POLICIES)[number];
export type WritePolicy = (typeof WRITE_POLICIES)[number];
export type DurabilityMode = (typeof DURABILITY_MODES)[number];

/** A key of a Secret in the CacheCluster's namespace. */
export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface EvictionSpec {
  /** `maxmemory-policy`. Default `allkeys-lru`. */
  policy?: EvictionPolicy;
  /** `maxmemory` as a quantity (`256Mi`). Exactly one of `maxMemory` and `maxMemoryPercent`. */
  maxMemory?: Quantity;
  /** `maxmemory` as a percentage (10–95) of `resources.limits.memory`. */
  maxMemoryPercent?: number;
}

export interface FlushSpec {
  /** Cron schedule (5 fields, or `@daily` …) of the whole-cache flush. */
  schedule: string;
  /** IANA time zone of the schedule. Default: the kube-controller-manager's (normally UTC). */
  timeZone?: string;
}

export interface AuthSpec {
  /** The Secret key holding the Redis password. */
  secretRef: SecretKeyRef;
}

/** Kubernetes `apps/v1 StatefulSetPersistentVolumeClaimRetentionPolicy`. */
export interface PersistentVolumeClaimRetentionPolicy {
  /** What happens to the volumes when the CacheCluster (and so its StatefulSet) is deleted. Default `Delete`. */
  whenDeleted?: RetentionPolicy;
  /** What happens to the volume of a pod removed by scaling `replicas` down. Default `Retain`. */
  whenScaled?: RetentionPolicy;
}

/** One PersistentVolumeClaim per Redis pod, mounted at `/data`. Immutable once the CacheCluster exists. */
export interface StorageSpec {
  /** Volume size per pod, a quantity (`1Gi`). */
  size: Quantity;
  /** StorageClass of the volumes. Default: the cluster's default class. */
  className?: string;
}

export interface PersistenceSpec {
  /** Default `none`. A live setting (CONFIG SET appendonly / save); `rdb` and `aof` need `storage`. */
  mode?: PersistenceMode;
  storage?: StorageSpec;
  /** Only with `storage`. */
  persistentVolumeClaimRetentionPolicy?: PersistentVolumeClaimRetentionPolicy;
}

// ---- Placement: Kubernetes core/v1 types, only the fields the schema describes ------------------------

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** `metav1.LabelSelector`. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

export interface NodeAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
  preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number; preference: NodeSelectorTerm }>;
}

export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  namespaces?: string[];
  topologyKey: string;
  namespaceSelector?: LabelSelector;
  matchLabelKeys?: string[];
  mismatchLabelKeys?: string[];
}

export interface WeightedPodAffinityTerm {
  weight: number;
  podAffinityTerm: PodAffinityTerm;
}

/** `core/v1 PodAffinity` and `PodAntiAffinity` (the same shape). */
export interface PodAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
}

/** `core/v1 Affinity`. */
export interface Affinity {
  nodeAffinity?: NodeAffinity;
  podAffinity?: PodAffinity;
  /** Replaces the default (a preferred spread over `kubernetes.io/hostname`); `{}` turns it off. */
  podAntiAffinity?: PodAffinity;
}

/** `core/v1 Toleration`. */
export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

/** `core/v1 TopologySpreadConstraint`. */
export interface TopologySpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway';
  /** Default: the CacheCluster's Redis pods. */
  labelSelector?: LabelSelector;
  minDomains?: number;
  nodeAffinityPolicy?: 'Honor' | 'Ignore';
  nodeTaintsPolicy?: 'Honor' | 'Ignore';
  matchLabelKeys?: string[];
}

/** What of the Redis pods' spec a CacheCluster may set: placement and image pulls, nothing about security. */
export interface PodTemplatePodSpec {
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  affinity?: Affinity;
  topologySpreadConstraints?: TopologySpreadConstraint[];
  priorityClassName?: string;
  /** Also used by the flush CronJob's pods (they run the same image). */
  imagePullSecrets?: Array<{ name: string }>;
}

/** Extra metadata and placement of the Redis pods. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: PodTemplatePodSpec;
}

/** Kubernetes `core/v1 ResourceRequirements` (without `claims`). */
export interface ResourceRequirements {
  limits?: Record<string, Quantity>;
  requests?: Record<string, Quantity>;
}

export interface MetricsSpec {
  /** Run `redis_exporter` next to Redis on port 9121. Default `false`. */
  exporter?: boolean;
  /** Create a Prometheus-operator ServiceMonitor. Default `false`. Not supported yet. */
  serviceMonitor?: boolean;
}

export interface L1Spec {
  /** Default `tinylfu`. */
  policy?: L1Policy;
  /** Default 10000. */
  maxEntries?: number;
  /** Default `64Mi`. */
  maxBytes?: Quantity;
  /** Default 60. */
  maxTTLSeconds?: number;
}

export interface WriteBackSpec {
  /** Default 1000. */
  flushIntervalMs?: number;
  /** Default 500. */
  flushBatchSize?: number;
  /** Default 100000. */
  maxPending?: number;
  /** Default 0 (off): hold each key's writes this long so that a hot key is written once per window. */
  coalesceWindowMs?: number;
}

export interface PostgresOriginSpec {
  /** A Secret key holding a `postgres://` connection URL. */
  secretRef: SecretKeyRef;
  /** Default `cache_entries`. */
  table?: string;
}

export interface HttpOriginSpec {
  url: string;
}

/** Exactly one of `postgres` and `http`. */
export interface OriginSpec {
  postgres?: PostgresOriginSpec;
  http?: HttpOriginSpec;
}

export interface SidecarSpec {
  l1?: L1Spec;
  /** Default `write-through`. */
  writePolicy?: WritePolicy;
  writeBack?: WriteBackSpec;
  origin?: OriginSpec;
}

/** Automatic failover of a `replication` CacheCluster (`spec.failover`). */
export interface FailoverSpec {
  /**
   * Seconds the primary must be lost (its pod not Ready, or its Redis unreachable from the operator) before
   * the operator promotes a replica. Default 2.
   */
  afterSeconds?: number;
}

/**
 * When a sidecar acknowledges a write-back journal append or a versioned record write (README
 * "Durability"): `replicated` waits (`WAIT 1 <timeoutMs>`) until at least one replica has it, and the
 * operator fences the primary (`min-replicas-to-write 1`, `min-replicas-max-lag maxLagSeconds`) so that a
 * primary cut off from every replica refuses writes; `primary` acknowledges once the primary has it.
 */
export interface DurabilitySpec {
  /** Default `replicated` with topology `replication` and at least one replica, else `primary`. */
  mode?: DurabilityMode;
  /** Longest wait for a replica's acknowledgement, ms; then the write is answered 503. Default 1000. */
  timeoutMs?: number;
  /**
   * `min-replicas-max-lag` of the fence: a replica whose last acknowledgement is older than this many
   * seconds does not count, and with none left the primary refuses writes (NOREPLICAS). Default 3.
   */
  maxLagSeconds?: number;
}

/**
 * One peer of `spec.invalidation.peers`: another CacheCluster, or an external Redis, caching rows of the
 * same database (exactly one of `cacheCluster` and `redis`).
 */
export interface InvalidationPeer {
  cacheCluster?: { name: string; /** Default: this CacheCluster's namespace. */ namespace?: string };
  redis?: {
    /** `redis://host:port[/db]` or `rediss://…`, without a password. */ url: string;
    /** Default `ripplecache:invalidations`. */ channel?: string;
    /** `url` is a seed address of a Redis Cluster (records in the sidecars' bucketed layout). Default false. */
    cluster?: boolean;
  };
  /**
   * The peer's Redis password, from a Secret in this CacheCluster's namespace. Default for a CacheCluster
   * peer in the same namespace: that CacheCluster's auth Secret; otherwise none.
   */
  passwordSecretRef?: SecretKeyRef;
}

/** Cross-CacheCluster invalidation (README "Invalidation across CacheClusters"). */
export interface InvalidationSpec {
  peers?: InvalidationPeer[];
}

export interface CacheClusterSpec {
  /** Default `standalone`. */
  topology?: Topology;
  /** Read replicas per primary. Default 0 for `standalone`, 1 otherwise. */
  replicas?: number;
  /** Primaries, `cluster` topology only. Default 3 there. */
  shards?: number;
  /** Default `redis:7.2-alpine`. */
  image?: string;
  eviction?: EvictionSpec;
  /** TTL sidecars apply when a write names none; 0 means no expiry. Default 3600. */
  defaultTTLSeconds?: number;
  flush?: FlushSpec;
  auth?: AuthSpec;
  persistence?: PersistenceSpec;
  /** Labels, annotations and placement of the Redis pods. */
  podTemplate?: PodTemplate;
  resources?: ResourceRequirements;
  metrics?: MetricsSpec;
  sidecar?: SidecarSpec;
  /** Automatic failover (topology `replication`). */
  failover?: FailoverSpec;
  durability?: DurabilitySpec;
  invalidation?: InvalidationSpec;
}

/** `metav1.Condition`. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  /** RFC 3339, seconds precision. */
  lastTransitionTime: string;
  /** CamelCase. */
  reason: string;
  message: string;
}

/** What one pod reported after the operator's last `CONFIG SET` / `CONFIG GET`. */
export interface PodAppliedConfig {
  pod: string;
  /** Bytes, as `CONFIG GET maxmemory` reported (0 when the pod could not be read). */
  maxmemory: number;
  maxmemoryPolicy: string;
  applied: boolean;
  message?: string;
}

export interface AppliedConfig {
  /** Bytes, verified with `CONFIG GET` on every pod. */
  maxmemory: number;
  maxmemoryPolicy: string;
  pods?: PodAppliedConfig[];
}

/** The step a failover has completed last (each step is idempotent; a new leader redoes from the start). */
export type FailoverStep = 'Started' | 'Unlabelled' | 'Promoted' | 'Repointed';

/** Why the primary moved: it was lost, or a planned switchover of a rolling update (the primary restarts last). */
export type FailoverReason = 'PrimaryLost' | 'Planned';

/** A failover in progress, recorded before its first change so that any leader can finish it. */
export interface FailoverInProgress {
  /** The lost primary. */
  from: string;
  /** The replica being promoted. */
  to: string;
  /** The last step completed. */
  step: FailoverStep;
  /** RFC 3339. */
  startedAt: string;
  /** The promoted replica's replication offset when it was chosen. */
  toOffset: number;
  /** The highest offset the lost primary was last seen at (absent when never observed). */
  fromOffset?: number;
  /** Absent: PrimaryLost (a failover recorded before rolling updates). */
  reason?: FailoverReason;
}

/** The last completed failover. */
export interface FailoverRecord {
  from: string;
  to: string;
  toOffset: number;
  fromOffset?: number;
  reason?: FailoverReason;
  /** RFC 3339. */
  startedAt: string;
  /** RFC 3339. */
  completedAt: string;
}

export interface CacheClusterStatus {
  phase?: Phase;
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  /**
   * Read replicas that exist (Redis pods other than the primary): `spec.replicas`' unit, the `/scale`
   * subresource's `status.replicas`.
   */
  currentReplicas?: number;
  /** The label selector of the Redis pods, serialised (the `/scale` subresource's selector, for an HPA). */
  selector?: string;
  /** `<ready>/<desired>` Redis pods, e.g. `2/3` (the READY column of `kubectl get cc`). */
  ready?: string;
  /** The verified maxmemory as a quantity, e.g. `256Mi` (the MAXMEMORY column of `kubectl get cc -o wide`). */
  maxMemory?: string;
  /**
   * The pod that is the primary. With topology replication this is the operator's record (it survives the
   * pod's death): the pod labelled `cache.ripplecache.io/role: primary` once it runs as a primary.
   */
  primary?: string;
  /** A failover in progress (absent otherwise). */
  failover?: FailoverInProgress;
  /** The last completed failover. */
  lastFailover?: FailoverRecord;
  endpoints?: { service?: string; replicas?: string };
  appliedConfig?: AppliedConfig;
  /** RFC 3339. */
  lastFlushTime?: string;
  /** Topology cluster: `cluster_state` of `CLUSTER INFO` (`ok` or `fail`) as the operator last read it. */
  clusterState?: string;
  /** Topology cluster: hash slots assigned to a primary, of 16384. */
  slotsAssigned?: number;
  /** Topology cluster: one entry per shard (StatefulSet `<name>-shard-<i>`). */
  shards?: ShardStatus[];
  /** Topology cluster: slots being moved between shards (absent when none are). */
  resharding?: ReshardingStatus;
  conditions?: Condition[];
}

/** One shard of a Redis Cluster as observed (`CLUSTER NODES`). */
export interface ShardStatus {
  /** The shard's index: its StatefulSet is `<name>-shard-<index>`. */
  index: number;
  /** The slot ranges it owns, e.g. `0-5460` or `0-4095,12288-13652`; empty when none. */
  slots: string;
  slotCount: number;
  /** The pod that is its primary (a master owning its slots), when one is up; while `primaryLost`, the one that was. */
  primary?: string;
  /** The pods that replicate its primary. */
  replicas: string[];
  /**
   * Of `replicas`, those whose link to the primary is down or whose first sync has not finished (their own
   * `INFO replication`): Redis Cluster would not fail over to them. Absent when there are none.
   */
  unsyncedReplicas?: string[];
  /**
   * `ok`: a primary is up and every replica follows it, synced; `degraded`: a replica is missing, not
   * following or not synced;
   * `primaryLost`: its slots are owned by a node that is down (Redis Cluster fails over to a replica);
   * `draining`: being removed (scale-in), its slots moving away; `pending`: not part of the cluster yet.
   */
  state: 'ok' | 'degraded' | 'primaryLost' | 'draining' | 'pending';
}

/** Slots moving between shards after `spec.shards` changed. */
export interface ReshardingStatus {
  /** The shard count being reached. */
  toShards: number;
  /** Slots to move when the resharding started. */
  slotsToMove: number;
  /** Slots still to move (including the one in flight), from the slot owners observed now. */
  slotsRemaining: number;
  /** Keys moved with MIGRATE since the resharding started (a progress figure, never a lock). */
  keysMoved: number;
  /** The move in flight: `slot <n> from shard <i> to shard <j>`. */
  current?: string;
  /** RFC 3339. */
  startedAt: string;
}

export interface CacheClusterMetadata {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface CacheCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: CacheClusterMetadata;
  spec: CacheClusterSpec;
  status?: CacheClusterStatus;
}

/**
 * The defaults for every optional field, in one place. The CRD schema quotes them in its
 * descriptions; the builders in `desired/` apply them.
 */
export const DEFAULTS = {
  /** `spec.topology`: `standalone`. */
  topology: 'standalone' as Topology,
  /** `spec.replicas` with topology `standalone`: 0 (there is nothing to replicate to). */
  replicasStandalone: 0,
  /** `spec.replicas` with topology `replication` or `cluster`: 1 read replica per primary. */
  replicas: 1,
  /** `spec.shards` with topology `cluster`: 3 primaries (the Redis Cluster minimum). */
  shards: 3,
  /** `spec.image`: `redis:7.2-alpine`. */
  image: 'redis:7.2-alpine',
  eviction: {
    /** `spec.eviction.policy`: `allkeys-lru` (a cache should evict, not refuse writes). */
    policy: 'allkeys-lru' as EvictionPolicy,
    /**
     * `maxmemory` when neither `maxMemory` nor `maxMemoryPercent` applies and a memory limit is set:
     * 75 % of `resources.limits.memory` (headroom for fragmentation, replication buffers, the exporter).
     */
    maxMemoryPercent: 75,
    /** `maxmemory` when no eviction sizes are given and no memory limit is set: `256Mi`. */
    maxMemory: '256Mi' as Quantity,
  },
  /** `spec.podTemplate.spec.affinity.podAntiAffinity` when not set: preferred, weight 100, over this topology key. */
  antiAffinityTopologyKey: 'kubernetes.io/hostname',
  /** `spec.defaultTTLSeconds`: 3600 (one hour). */
  defaultTTLSeconds: 3600,
  persistence: {
    /** `spec.persistence.mode`: `none` (a cache; nothing is written to disk). */
    mode: 'none' as PersistenceMode,
    /** `spec.persistence.persistentVolumeClaimRetentionPolicy.whenDeleted`: `Delete` (a cache's data goes with it). */
    whenDeleted: 'Delete' as RetentionPolicy,
    /** `spec.persistence.persistentVolumeClaimRetentionPolicy.whenScaled`: `Retain` (scaling up again reuses it). */
    whenScaled: 'Retain' as RetentionPolicy,
  },
  metrics: {
    /** `spec.metrics.exporter`: false. */
    exporter: false,
    /** `spec.metrics.serviceMonitor`: false. */
    serviceMonitor: false,
  },
  sidecar: {
    l1: {
      /** `spec.sidecar.l1.policy`: `tinylfu`. */
      policy: 'tinylfu' as L1Policy,
      /** `spec.sidecar.l1.maxEntries`: 10000. */
      maxEntries: 10000,
      /** `spec.sidecar.l1.maxBytes`: `64Mi`. */
      maxBytes: '64Mi' as Quantity,
      /** `spec.sidecar.l1.maxTTLSeconds`: 60. */
      maxTTLSeconds: 60,
    },
    /** `spec.sidecar.writePolicy`: `write-through`. */
    writePolicy: 'write-through' as WritePolicy,
    writeBack: {
      /** `spec.sidecar.writeBack.flushIntervalMs`: 1000. */
      flushIntervalMs: 1000,
      /** `spec.sidecar.writeBack.flushBatchSize`: 500. */
      flushBatchSize: 500,
      /** `spec.sidecar.writeBack.maxPending`: 100000. */
      maxPending: 100000,
      /** `spec.sidecar.writeBack.coalesceWindowMs`: 0 (off). */
      coalesceWindowMs: 0,
    },
    /** `spec.sidecar.origin.postgres.table`: `cache_entries`. */
    postgresTable: 'cache_entries',
  },
  failover: {
    /** `spec.failover.afterSeconds`: 2 (the failover-time target, p99 under 5 s, includes it). */
    afterSeconds: 2,
  },
  durability: {
    /** `spec.durability.mode` with topology `replication` and `replicas` ≥ 1: `replicated`. */
    modeWithReplicas: 'replicated' as DurabilityMode,
    /** `spec.durability.mode` otherwise (nothing to wait for): `primary`. */
    modeWithoutReplicas: 'primary' as DurabilityMode,
    /** `spec.durability.timeoutMs`: 1000. */
    timeoutMs: 1000,
    /** `spec.durability.maxLagSeconds`: 3 (replicas acknowledge every second). */
    maxLagSeconds: 3,
  },
} as const;
