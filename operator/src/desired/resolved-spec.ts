/** The spec with every default applied, as the builders use it. */
import { DEFAULTS } from '../api/v1alpha1/types.js';
import type {
  CacheCluster,
  DurabilityMode,
  L1Policy,
  PersistenceMode,
  Quantity,
  ResourceRequirements,
  RetentionPolicy,
  SecretKeyRef,
  Topology,
  WritePolicy,
} from '../api/v1alpha1/types.js';

export interface ResolvedSpec {
  topology: Topology;
  /** Read replicas per primary (0 for standalone). */
  replicas: number;
  /** Redis pods of the StatefulSet: 1 for standalone, 1 + replicas for replication (per shard for cluster). */
  pods: number;
  /** Topology cluster: `spec.shards` (default 3); 1 otherwise (the one StatefulSet). */
  shards: number;
  image: string;
  defaultTTLSeconds: number;
  persistence: {
    mode: PersistenceMode;
    /** The volumes, when asked for (then also the retention policy, defaults applied). */
    storage?: { size: Quantity; className?: string };
    retention?: { whenDeleted: RetentionPolicy; whenScaled: RetentionPolicy };
  };
  resources?: ResourceRequirements;
  exporter: boolean;
  serviceMonitor: boolean;
  authSecretRef?: SecretKeyRef;
  /** `spec.failover.afterSeconds` (topology replication). */
  failoverAfterSeconds: number;
  sidecar: {
    l1: { policy: L1Policy; maxEntries: number; maxBytes: Quantity; maxTTLSeconds: number };
    writePolicy: WritePolicy;
    writeBack: { flushIntervalMs: number; flushBatchSize: number; maxPending: number; coalesceWindowMs: number };
  };
  /** `spec.durability` with its defaults (mode `replicated` only with topology replication and a replica). */
  durability: { mode: DurabilityMode; timeoutMs: number; maxLagSeconds: number };
}

export function resolveSpec(cc: CacheCluster): ResolvedSpec {
  const s = cc.spec;
  const topology = s.topology ?? DEFAULTS.topology;
  const replicas = topology === 'standalone' ? DEFAULTS.replicasStandalone : (s.replicas ?? DEFAULTS.replicas);
  const p = s.persistence ?? {};
  const mode = p.mode ?? DEFAULTS.persistence.mode;
  const l1 = s.sidecar?.l1 ?? {};
  const wb = s.sidecar?.writeBack ?? {};
  const d = s.durability ?? {};
  const hasReplica = topology === 'replication' && replicas >= 1;
  const resolved: ResolvedSpec = {
    topology,
    replicas,
    pods: 1 + replicas,
    shards: topology === 'cluster' ? (s.shards ?? DEFAULTS.shards) : 1,
    image: s.image ?? DEFAULTS.image,
    defaultTTLSeconds: s.defaultTTLSeconds ?? DEFAULTS.defaultTTLSeconds,
    persistence:
      p.storage === undefined
        ? { mode }
        : {
            mode,
            storage: {
              size: p.storage.size,
              ...(p.storage.className !== undefined ? { className: p.storage.className } : {}),
            },
            retention: {
              whenDeleted: p.persistentVolumeClaimRetentionPolicy?.whenDeleted ?? DEFAULTS.persistence.whenDeleted,
              whenScaled: p.persistentVolumeClaimRetentionPolicy?.whenScaled ?? DEFAULTS.persistence.whenScaled,
            },
          },
    exporter: s.metrics?.exporter ?? DEFAULTS.metrics.exporter,
    serviceMonitor: s.metrics?.serviceMonitor ?? DEFAULTS.metrics.serviceMonitor,
    failoverAfterSeconds: s.failover?.afterSeconds ?? DEFAULTS.failover.afterSeconds,
    sidecar: {
      l1: {
        policy: l1.policy ?? DEFAULTS.sidecar.l1.policy,
        maxEntries: l1.maxEntries ?? DEFAULTS.sidecar.l1.maxEntries,
        maxBytes: l1.maxBytes ?? DEFAULTS.sidecar.l1.maxBytes,
        maxTTLSeconds: l1.maxTTLSeconds ?? DEFAULTS.sidecar.l1.maxTTLSeconds,
      },
      writePolicy: s.sidecar?.writePolicy ?? DEFAULTS.sidecar.writePolicy,
      writeBack: {
        flushIntervalMs: wb.flushIntervalMs ?? DEFAULTS.sidecar.writeBack.flushIntervalMs,
        flushBatchSize: wb.flushBatchSize ?? DEFAULTS.sidecar.writeBack.flushBatchSize,
        maxPending: wb.maxPending ?? DEFAULTS.sidecar.writeBack.maxPending,
        coalesceWindowMs: wb.coalesceWindowMs ?? DEFAULTS.sidecar.writeBack.coalesceWindowMs,
      },
    },
    durability: {
      mode: d.mode ?? (hasReplica ? DEFAULTS.durability.modeWithReplicas : DEFAULTS.durability.modeWithoutReplicas),
      timeoutMs: d.timeoutMs ?? DEFAULTS.durability.timeoutMs,
      maxLagSeconds: d.maxLagSeconds ?? DEFAULTS.durability.maxLagSeconds,
    },
  };
  if (s.resources !== undefined) resolved.resources = s.resources;
  if (s.auth?.secretRef !== undefined)
    resolved.authSecretRef = { name: s.auth.secretRef.name, key: s.auth.secretRef.key };
  return resolved;
}
