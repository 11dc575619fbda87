/**
 * The shapes of the Kubernetes objects the desired-state builders return: plain data, only the fields
 * the builders set. Type aliases (not interfaces) so that they are assignable to index-signature types
 * such as the k8s adapter's `KubeObject`.
 */
import type { Affinity, Toleration, TopologySpreadConstraint } from '../api/v1alpha1/types.js';

export type OwnerReference = {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
};

export type ChildMetadata = {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences: OwnerReference[];
};

export type LabelSelector = { matchLabels: Record<string, string> };

export type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
};

export type ContainerPort = { name: string; containerPort: number; protocol: 'TCP' };

export type Probe = {
  exec?: { command: string[] };
  tcpSocket?: { port: string | number };
  httpGet?: { path: string; port: string | number };
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
};

export type ResourceList = Record<string, string | number>;

export type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { limits?: ResourceList; requests?: ResourceList };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  securityContext?: ContainerSecurityContext;
};

/** What Pod Security `restricted` asks of every container, plus a read-only root filesystem. */
export type ContainerSecurityContext = {
  allowPrivilegeEscalation: false;
  readOnlyRootFilesystem: true;
  capabilities: { drop: ['ALL'] };
};

/** Pod-level: a non-root user and group, the group owning writable volumes, the runtime's seccomp profile. */
export type PodSecurityContext = {
  runAsNonRoot: true;
  runAsUser: number;
  runAsGroup: number;
  fsGroup: number;
  seccompProfile: { type: 'RuntimeDefault' };
};

export type Volume = {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: { sizeLimit?: string };
};

export type PodSpec = {
  enableServiceLinks: boolean;
  automountServiceAccountToken?: boolean;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  affinity?: Affinity;
  topologySpreadConstraints?: TopologySpreadConstraint[];
  priorityClassName?: string;
  imagePullSecrets?: Array<{ name: string }>;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  securityContext?: PodSecurityContext;
  containers: Container[];
  volumes?: Volume[];
};

export type PodTemplateSpec = {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
};

export type ConfigMap = {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ChildMetadata;
  data: Record<string, string>;
};

export type ServicePort = { name: string; port: number; targetPort: string | number; protocol: 'TCP' };

export type Service = {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ChildMetadata;
  spec: {
    type: 'ClusterIP';
    clusterIP?: 'None';
    publishNotReadyAddresses?: boolean;
    selector: Record<string, string>;
    ports: ServicePort[];
  };
};

export type StatefulSet = {
  apiVersion: 'apps/v1';
  kind: 'StatefulSet';
  metadata: ChildMetadata;
  spec: {
    serviceName: string;
    replicas: number;
    selector: LabelSelector;
    template: PodTemplateSpec;
    updateStrategy?: { type: 'OnDelete' } | { type: 'RollingUpdate' };
    volumeClaimTemplates?: PersistentVolumeClaimTemplate[];
    persistentVolumeClaimRetentionPolicy?: { whenDeleted: 'Retain' | 'Delete'; whenScaled: 'Retain' | 'Delete' };
  };
};

export type PersistentVolumeClaimTemplate = {
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    accessModes: ['ReadWriteOnce'];
    storageClassName?: string;
    resources: { requests: { storage: string | number } };
  };
};

export type PodDisruptionBudget = {
  apiVersion: 'policy/v1';
  kind: 'PodDisruptionBudget';
  metadata: ChildMetadata;
  spec: { maxUnavailable: number; selector: LabelSelector };
};

export type CronJob = {
  apiVersion: 'batch/v1';
  kind: 'CronJob';
  metadata: ChildMetadata;
  spec: {
    schedule: string;
    timeZone?: string;
    concurrencyPolicy: 'Forbid';
    startingDeadlineSeconds: number;
    successfulJobsHistoryLimit: number;
    failedJobsHistoryLimit: number;
    jobTemplate: {
      metadata: { labels: Record<string, string> };
      spec: {
        backoffLimit: number;
        activeDeadlineSeconds: number;
        template: PodTemplateSpec;
      };
    };
  };
};

/** Any child of a CacheCluster. */
export type Deployment = {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ChildMetadata;
  spec: {
    replicas: number;
    strategy: { type: 'Recreate' };
    selector: LabelSelector;
    template: PodTemplateSpec;
  };
};

export type DesiredChild = ConfigMap | Service | StatefulSet | PodDisruptionBudget | CronJob | Deployment;
