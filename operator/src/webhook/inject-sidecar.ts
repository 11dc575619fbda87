/**
 * Sidecar injection as a pure function: (pod, CacheCluster, options) → JSON Patch operations (RFC 6902)
 * that the mutating webhook returns to the API server. The sidecar is a native sidecar (Kubernetes ≥ 1.29):
 * an init container with `restartPolicy: Always`, so the kubelet starts it, and waits for its startup
 * probe, before any app container; keeps it running beside them; stops it only after they exited (the
 * app's last cache calls still find it); and does not wait for it to complete a Job. Idempotent: a pod
 * that already has the sidecar (as an init container, or as a plain container from an older injection or
 * by hand) gets no operations, so a re-invoked webhook (reinvocationPolicy) or a pod created from an
 * already-injected manifest is never injected twice.
 */
import { ANNOTATION_INJECT, LABEL_SIDECAR, SIDECAR_CONF_KEY, SIDECAR_INJECTED } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { configMapName } from '../desired/names.js';
import { parseQuantity } from '../desired/quantity.js';
import { resolveSpec } from '../desired/resolved-spec.js';

/** The injected container's name; its presence marks a pod as injected. */
export const SIDECAR_CONTAINER_NAME = 'ripplecache-sidecar';
/** The volume holding `sidecar.yaml` (from the ConfigMap `<cachecluster>-config`). */
export const SIDECAR_CONFIG_VOLUME = 'ripplecache-config';
/** Where the sidecar sees its config directory; the file is `<dir>/sidecar.yaml`. */
export const SIDECAR_CONFIG_DIR = '/etc/ripplecache';
/** The sidecar's API port on 127.0.0.1 (the sidecar's default `--listen`). */
export const SIDECAR_API_PORT = 7070;
/**
 * The sidecar's metrics and probe port on the pod IP (`--metrics-listen [::]:7071`): only `/metrics`,
 * `/healthz` and `/readyz`, for Prometheus (the chart's PodMonitor) and the kubelet's httpGet probes.
 */
export const SIDECAR_METRICS_PORT = 7071;
/**
 * The host the metrics listener binds: `::`, which Node opens dual-stack (IPv4 and IPv6), because the kubelet
 * probes the pod's primary IP and in an IPv6 or dual-stack cluster that is an IPv6 address (`0.0.0.0` listened
 * on IPv4 only: every probe of an IPv6 pod failed).
 */
export const SIDECAR_METRICS_HOST = '::';
/** The name of the metrics container port, which the probes and the chart's PodMonitor refer to. */
export const SIDECAR_METRICS_PORT_NAME = 'rc-metrics';
/** The sidecar's RESP front on 127.0.0.1, for Redis clients that cannot use a Unix socket. */
export const SIDECAR_RESP_PORT = 7379;
/**
 * The shared `emptyDir` holding the sidecar's Unix sockets: mounted read-write in the sidecar, read-only
 * in every app container (connecting to a socket needs no write access to the file system).
 */
export const SIDECAR_SOCKET_VOLUME = 'ripplecache-sockets';
export const SIDECAR_SOCKET_DIR = '/var/run/ripplecache';
/** The HTTP API on a Unix socket (the same API as 127.0.0.1:7070). */
export const SIDECAR_HTTP_SOCKET = `${SIDECAR_SOCKET_DIR}/http.sock`;
/** The RESP front on a Unix socket: the fastest way in (README "Benchmarks"). */
export const SIDECAR_RESP_SOCKET = `${SIDECAR_SOCKET_DIR}/resp.sock`;
/**
 * Permissions of the sockets: every container of the pod, whatever its user, may connect, as every
 * container of the pod may reach 127.0.0.1:7070; nothing outside the pod sees the emptyDir.
 */
export const SIDECAR_SOCKET_MODE = '0666';
/**
 * The sidecar's listen addresses, as environment variables (`--listen`, `--listen-resp`, `--socket-mode`)
 * rather than arguments: a sidecar image older than the flags ignores unknown variables (it keeps serving
 * 127.0.0.1:7070), where it would refuse unknown arguments.
 */
export const ENV_LISTEN = 'RIPPLECACHE_LISTEN';
export const ENV_LISTEN_RESP = 'RIPPLECACHE_LISTEN_RESP';
export const ENV_SOCKET_MODE = 'RIPPLECACHE_SOCKET_MODE';
/** Set in every app container: where the sidecar's sockets are. */
export const ENV_APP_HTTP_SOCKET = 'RIPPLECACHE_HTTP_SOCKET';
export const ENV_APP_RESP_SOCKET = 'RIPPLECACHE_RESP_SOCKET';
export const ENV_APP_RESP_ADDR = 'RIPPLECACHE_RESP_ADDR';
/** Environment variable carrying the Redis password (the sidecar's `--redis-password`). */
export const ENV_REDIS_PASSWORD = 'RIPPLECACHE_REDIS_PASSWORD';
/** Environment variable carrying a PostgreSQL origin URL (the sidecar's `--origin`); never in the ConfigMap. */
export const ENV_ORIGIN = 'RIPPLECACHE_ORIGIN';
/**
 * Environment variable naming the CacheCluster (the sidecar's `--cache-cluster`, the label `cachecluster` of
 * its metrics). In the container rather than in `sidecar.yaml`: the ConfigMap is shared by sidecars of every
 * version, and a sidecar older than the key would refuse the file, while an unknown variable is ignored.
 */
export const ENV_CACHE_CLUSTER = 'RIPPLECACHE_CACHE_CLUSTER';

export interface InjectOptions {
  /** The sidecar image. Default `ghcr.io/ripplecache/sidecar:0.1.0`. */
  image: string;
  /** Default `IfNotPresent`. */
  imagePullPolicy: 'IfNotPresent' | 'Always' | 'Never';
  /** UID and GID the sidecar runs as (non-root). Default 65532. */
  runAsUser: number;
  /** CPU request. Default `50m`. Memory is derived from the CacheCluster's `spec.sidecar.l1.maxBytes`. */
  cpuRequest: string;
  /** Memory on top of L1's bound for the runtime: request `maxBytes + this`, limit `2 × maxBytes + this`. Default 64 Mi. */
  memoryOverheadBytes: number;
}

export const INJECT_DEFAULTS: InjectOptions = {
  image: 'ghcr.io/ripplecache/sidecar:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  runAsUser: 65532,
  cpuRequest: '50m',
  memoryOverheadBytes: 64 * 1024 * 1024,
};

/** The fields of a container that injection reads. */
export interface PodContainerLike {
  name: string;
  ports?: Array<{ containerPort?: number }>;
  env?: Array<{ name: string }>;
  volumeMounts?: Array<{ name?: string; mountPath?: string }>;
}

/** The fields of a Pod that injection reads. */
export interface PodLike {
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec?: {
    containers?: Array<PodContainerLike>;
    initContainers?: Array<PodContainerLike>;
    volumes?: Array<{ name: string }>;
  };
}

export interface JsonPatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** Escapes one JSON Pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapeJsonPointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The pod cannot take the sidecar as it is; the message is shown to whoever created the pod. */
export class InjectionConflictError extends Error {
  override readonly name = 'InjectionConflictError';
  readonly code = 'InjectionConflict';
}

/** The CacheCluster a pod asks for, from its `cache.ripplecache.io/inject` annotation (trimmed), or undefined. */
export function requestedCacheCluster(pod: PodLike): string | undefined {
  const v = pod.metadata?.annotations?.[ANNOTATION_INJECT]?.trim();
  return v ? v : undefined;
}

/** Whether the pod already has the sidecar, as an init container or as a plain container. */
export function isInjected(pod: PodLike): boolean {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].some(
    (c) => c.name === SIDECAR_CONTAINER_NAME,
  );
}

function mebibytes(bytes: number): string {
  return `${Math.ceil(bytes / (1024 * 1024))}Mi`;
}

/**
 * A kubelet httpGet probe of the metrics listener. The API stays on 127.0.0.1 (the kubelet dials the pod
 * IP), the metrics listener answers /healthz and /readyz with the same logic.
 */
function httpGet(path: string): Record<string, unknown> {
  return { path, port: SIDECAR_METRICS_PORT_NAME };
}

/**
 * The sidecar container for `cc`: a native sidecar (`restartPolicy: Always`, for `spec.initContainers`).
 * Its startup probe asks `/healthz` on the metrics listener, which starts after the API listener on
 * 127.0.0.1:7070: once it answers, the app's `http://127.0.0.1:7070` answers too, and the kubelet starts
 * the next container. `/healthz` (the process serves) and not `/readyz` (Redis reachable), so that a Redis
 * outage does not keep the app from starting; readiness still reports it.
 */
export function sidecarContainer(cc: CacheCluster, opts: InjectOptions = INJECT_DEFAULTS): Record<string, unknown> {
  const spec = resolveSpec(cc);
  const l1Bytes = parseQuantity(spec.sidecar.l1.maxBytes);
  const env: Array<Record<string, unknown>> = [
    { name: ENV_CACHE_CLUSTER, value: cc.metadata.name },
    { name: ENV_LISTEN, value: `127.0.0.1:${SIDECAR_API_PORT},unix:${SIDECAR_HTTP_SOCKET}` },
    { name: ENV_LISTEN_RESP, value: `127.0.0.1:${SIDECAR_RESP_PORT},unix:${SIDECAR_RESP_SOCKET}` },
    { name: ENV_SOCKET_MODE, value: SIDECAR_SOCKET_MODE },
  ];
  if (spec.authSecretRef) {
    env.push({
      name: ENV_REDIS_PASSWORD,
      valueFrom: { secretKeyRef: { name: spec.authSecretRef.name, key: spec.authSecretRef.key } },
    });
  }
  const pg = cc.spec.sidecar?.origin?.postgres;
  if (pg)
    env.push({ name: ENV_ORIGIN, valueFrom: { secretKeyRef: { name: pg.secretRef.name, key: pg.secretRef.key } } });
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: opts.image,
    imagePullPolicy: opts.imagePullPolicy,
    restartPolicy: 'Always',
    args: [
      '--config',
      `${SIDECAR_CONFIG_DIR}/${SIDECAR_CONF_KEY}`,
      `--metrics-listen=[${SIDECAR_METRICS_HOST}]:${SIDECAR_METRICS_PORT}`,
    ],
    env,
    ports: [{ name: SIDECAR_METRICS_PORT_NAME, containerPort: SIDECAR_METRICS_PORT, protocol: 'TCP' }],
    resources: {
      requests: { cpu: opts.cpuRequest, memory: mebibytes(l1Bytes + opts.memoryOverheadBytes) },
      limits: { memory: mebibytes(2 * l1Bytes + opts.memoryOverheadBytes) },
    },
    startupProbe: {
      httpGet: httpGet('/healthz'),
      periodSeconds: 1,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 60,
    },
    readinessProbe: {
      httpGet: httpGet('/readyz'),
      initialDelaySeconds: 1,
      periodSeconds: 5,
      timeoutSeconds: 3,
      successThreshold: 1,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: httpGet('/healthz'),
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      successThreshold: 1,
      failureThreshold: 6,
    },
    volumeMounts: [
      { name: SIDECAR_CONFIG_VOLUME, mountPath: SIDECAR_CONFIG_DIR, readOnly: true },
      { name: SIDECAR_SOCKET_VOLUME, mountPath: SIDECAR_SOCKET_DIR },
    ],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: opts.runAsUser,
      runAsGroup: opts.runAsUser,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

/**
 * The JSON Patch that injects the sidecar configured from `cc` into `pod`: the sidecar appended to the
 * init containers (after the pod's own, which therefore run before it and cannot use the cache), the
 * config volume (the whole ConfigMap directory, not a subPath, so that config changes reach the running
 * sidecar), the shared `emptyDir` of its Unix sockets (mounted read-only into every app container, with
 * RIPPLECACHE_HTTP_SOCKET, RIPPLECACHE_RESP_SOCKET and RIPPLECACHE_RESP_ADDR in their environment) and the
 * label `cache.ripplecache.io/sidecar: injected`. Returns [] for a pod that already has the sidecar. Throws
 * InjectionConflictError when the pod already uses one of the sidecar's volume names, mounts something at
 * its socket directory, or declares one of its ports (7070, 7071, 7379).
 */
export function injectSidecar(
  pod: PodLike,
  cc: CacheCluster,
  options: Partial<InjectOptions> = {},
): JsonPatchOperation[] {
  if (isInjected(pod)) return [];
  const opts: InjectOptions = { ...INJECT_DEFAULTS, ...options };
  for (const name of [SIDECAR_CONFIG_VOLUME, SIDECAR_SOCKET_VOLUME]) {
    if ((pod.spec?.volumes ?? []).some((v) => v.name === name)) {
      throw new InjectionConflictError(
        `the pod already has a volume named "${name}", which the ripplecache sidecar needs`,
      );
    }
  }
  const clashingMount = (pod.spec?.containers ?? []).find((c) =>
    (c.volumeMounts ?? []).some((m) => m.mountPath?.replace(/\/+$/, '') === SIDECAR_SOCKET_DIR),
  );
  if (clashingMount) {
    throw new InjectionConflictError(
      `container "${clashingMount.name}" already mounts something at ${SIDECAR_SOCKET_DIR}, where the ripplecache sidecar's sockets go`,
    );
  }
  for (const [port, where] of [
    [SIDECAR_API_PORT, `127.0.0.1:${SIDECAR_API_PORT}`],
    [SIDECAR_RESP_PORT, `127.0.0.1:${SIDECAR_RESP_PORT}, the Redis-protocol front`],
    [SIDECAR_METRICS_PORT, `[${SIDECAR_METRICS_HOST}]:${SIDECAR_METRICS_PORT}, metrics and probes`],
  ] as const) {
    const clash = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((c) =>
      (c.ports ?? []).some((p) => p.containerPort === port),
    );
    if (clash) {
      throw new InjectionConflictError(
        `container "${clash.name}" declares port ${port}, which the ripplecache sidecar listens on (${where})`,
      );
    }
  }
  const volume = {
    name: SIDECAR_CONFIG_VOLUME,
    configMap: { name: configMapName(cc), items: [{ key: SIDECAR_CONF_KEY, path: SIDECAR_CONF_KEY }] },
  };
  const ops: JsonPatchOperation[] = [];
  const sidecar = sidecarContainer(cc, opts);
  if (pod.spec?.initContainers === undefined) ops.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else ops.push({ op: 'add', path: '/spec/initContainers/-', value: sidecar });
  const sockets = { name: SIDECAR_SOCKET_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } };
  if (pod.spec?.volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: [volume, sockets] });
  else
    ops.push(
      { op: 'add', path: '/spec/volumes/-', value: volume },
      { op: 'add', path: '/spec/volumes/-', value: sockets },
    );
  ops.push(...appContainerOps(pod));
  // The label selects the pod for the chart's PodMonitor. `add` on an existing member replaces it.
  if (!pod.metadata)
    ops.push({ op: 'add', path: '/metadata', value: { labels: { [LABEL_SIDECAR]: SIDECAR_INJECTED } } });
  else if (!pod.metadata.labels)
    ops.push({ op: 'add', path: '/metadata/labels', value: { [LABEL_SIDECAR]: SIDECAR_INJECTED } });
  else ops.push({ op: 'add', path: `/metadata/labels/${escapeJsonPointer(LABEL_SIDECAR)}`, value: SIDECAR_INJECTED });
  return ops;
}

/**
 * The sockets' directory (read-only) and their addresses (environment) in every app container (`containers`,
 * not the pod's own init containers, which run before the sidecar starts). A variable the container
 * already defines is left as it is.
 */
function appContainerOps(pod: PodLike): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  const mount = { name: SIDECAR_SOCKET_VOLUME, mountPath: SIDECAR_SOCKET_DIR, readOnly: true };
  const vars = [
    { name: ENV_APP_HTTP_SOCKET, value: SIDECAR_HTTP_SOCKET },
    { name: ENV_APP_RESP_SOCKET, value: SIDECAR_RESP_SOCKET },
    { name: ENV_APP_RESP_ADDR, value: `127.0.0.1:${SIDECAR_RESP_PORT}` },
  ];
  (pod.spec?.containers ?? []).forEach((c, i) => {
    const base = `/spec/containers/${i}`;
    if (c.volumeMounts === undefined) ops.push({ op: 'add', path: `${base}/volumeMounts`, value: [mount] });
    else ops.push({ op: 'add', path: `${base}/volumeMounts/-`, value: mount });
    const missing = vars.filter((v) => !(c.env ?? []).some((e) => e.name === v.name));
    if (missing.length === 0) return;
    if (c.env === undefined) ops.push({ op: 'add', path: `${base}/env`, value: missing });
    else for (const v of missing) ops.push({ op: 'add', path: `${base}/env/-`, value: v });
  });
  return ops;
}
