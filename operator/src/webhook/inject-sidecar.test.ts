import { describe, expect, it } from 'vitest';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import {
  ENV_CACHE_CLUSTER,
  ENV_ORIGIN,
  ENV_REDIS_PASSWORD,
  INJECT_DEFAULTS,
  InjectionConflictError,
  SIDECAR_CONFIG_VOLUME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_METRICS_PORT,
  SIDECAR_SOCKET_VOLUME,
  escapeJsonPointer,
  injectSidecar,
  isInjected,
  requestedCacheCluster,
  type JsonPatchOperation,
  type PodLike,
} from './inject-sidecar.js';
import { cacheCluster, withSpec } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheCluster['spec'] = {}): CacheCluster => cacheCluster('sessions', withSpec(spec));

const pod = (extra: Partial<NonNullable<PodLike['spec']>> = {}, labels?: Record<string, string>): PodLike => ({
  metadata: {
    name: 'web',
    namespace: 'shop',
    annotations: { 'cache.ripplecache.io/inject': 'sessions' },
    ...(labels ? { labels } : {}),
  },
  spec: { containers: [{ name: 'app' }], ...extra },
});

/** Applies `add` operations the way the API server does (enough for these tests). */
function apply(p: PodLike, ops: JsonPatchOperation[]): PodLike {
  const out = structuredClone(p) as Record<string, unknown>;
  for (const op of ops) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let node = out as Record<string, unknown> | unknown[];
    for (const part of parts.slice(0, -1)) node = (node as Record<string, unknown>)[part] as Record<string, unknown>;
    const last = parts.at(-1)!;
    if (Array.isArray(node) && last === '-') node.push(op.value);
    else (node as Record<string, unknown>)[last] = op.value;
  }
  return out;
}

type Container = Record<string, any>;

/** The sidecar's listen addresses, in its environment (an older sidecar ignores unknown variables). */
const LISTEN_ENV = [
  { name: 'RIPPLECACHE_LISTEN', value: '127.0.0.1:7070,unix:/var/run/ripplecache/http.sock' },
  { name: 'RIPPLECACHE_LISTEN_RESP', value: '127.0.0.1:7379,unix:/var/run/ripplecache/resp.sock' },
  { name: 'RIPPLECACHE_SOCKET_MODE', value: '0666' },
];

/** The injected sidecar: the init container the patch adds (the first operation). */
function injectedContainer(ops: JsonPatchOperation[]): Container {
  const op = ops.find((o) => o.path.startsWith('/spec/initContainers'));
  expect(op).toBeDefined();
  return (op!.path === '/spec/initContainers' ? (op!.value as Container[])[0] : op!.value) as Container;
}

describe('injectSidecar', () => {
  it('adds the sidecar as a native sidecar (init container, restartPolicy Always) and the config volume from <cc>-config', () => {
    const ops = injectSidecar(pod(), cc());
    expect(ops.map((o) => o.path)).toEqual([
      '/spec/initContainers',
      '/spec/volumes',
      '/spec/containers/0/volumeMounts',
      '/spec/containers/0/env',
      '/metadata/labels',
    ]);
    const c = injectedContainer(ops);
    expect(c.name).toBe(SIDECAR_CONTAINER_NAME);
    expect(c.restartPolicy).toBe('Always');
    expect(c.image).toBe(INJECT_DEFAULTS.image);
    expect(c.args).toEqual(['--config', '/etc/ripplecache/sidecar.yaml', '--metrics-listen=[::]:7071']);
    expect(c.volumeMounts).toEqual([
      { name: SIDECAR_CONFIG_VOLUME, mountPath: '/etc/ripplecache', readOnly: true },
      { name: SIDECAR_SOCKET_VOLUME, mountPath: '/var/run/ripplecache' },
    ]);
    expect(ops[1]!.value).toEqual([
      {
        name: SIDECAR_CONFIG_VOLUME,
        configMap: { name: 'sessions-config', items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] },
      },
      { name: SIDECAR_SOCKET_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    ]);
    const after = apply(pod(), ops);
    expect(after.spec!.containers!.map((x) => x.name)).toEqual(['app']);
    expect(after.spec!.initContainers!.map((x) => x.name)).toEqual([SIDECAR_CONTAINER_NAME]);
  });

  it("appends to the pod's own init containers, which run before it", () => {
    const p = pod({ initContainers: [{ name: 'migrate' }] });
    const ops = injectSidecar(p, cc());
    expect(ops[0]).toMatchObject({
      op: 'add',
      path: '/spec/initContainers/-',
      value: { name: SIDECAR_CONTAINER_NAME },
    });
    const after = apply(p, ops);
    expect(after.spec!.initContainers!.map((x) => x.name)).toEqual(['migrate', SIDECAR_CONTAINER_NAME]);
    expect(after.spec!.containers!.map((x) => x.name)).toEqual(['app']);
  });

  it('appends to existing volumes instead of replacing them', () => {
    const ops = injectSidecar(pod({ volumes: [{ name: 'data' }] }), cc());
    expect(ops.map((o) => o.path)).toEqual([
      '/spec/initContainers',
      '/spec/volumes/-',
      '/spec/volumes/-',
      '/spec/containers/0/volumeMounts',
      '/spec/containers/0/env',
      '/metadata/labels',
    ]);
    const after = apply(pod({ volumes: [{ name: 'data' }] }), ops);
    expect(after.spec!.volumes!.map((v) => v.name)).toEqual(['data', SIDECAR_CONFIG_VOLUME, SIDECAR_SOCKET_VOLUME]);
  });

  it('is idempotent: an injected pod gets no operations', () => {
    const once = apply(pod(), injectSidecar(pod(), cc()));
    expect(isInjected(once)).toBe(true);
    expect(once.metadata!.labels).toEqual({ 'cache.ripplecache.io/sidecar': 'injected' });
    expect(injectSidecar(once, cc())).toEqual([]);
    const labelled = apply(pod({}, { app: 'shop' }), injectSidecar(pod({}, { app: 'shop' }), cc()));
    expect(injectSidecar(labelled, cc())).toEqual([]);
    // Its own port 7071 on the injected container is no clash for a second admission.
    expect(() => injectSidecar(once, cc())).not.toThrow();
    expect(once.spec!.initContainers!.filter((c) => c.name === SIDECAR_CONTAINER_NAME)).toHaveLength(1);
    // Also when the sidecar was added by hand, as an init container or as a plain container (the way
    // this webhook injected it before it became a native sidecar).
    expect(injectSidecar(pod({ initContainers: [{ name: SIDECAR_CONTAINER_NAME }] }), cc())).toEqual([]);
    const plain = pod({ containers: [{ name: 'app' }, { name: SIDECAR_CONTAINER_NAME }] });
    expect(isInjected(plain)).toBe(true);
    expect(injectSidecar(plain, cc())).toEqual([]);
  });

  it('reads the Redis password from the auth Secret, never copying it', () => {
    const c = injectedContainer(
      injectSidecar(pod(), cc({ auth: { secretRef: { name: 'sessions-auth', key: 'password' } } })),
    );
    expect(c.env).toEqual([
      { name: ENV_CACHE_CLUSTER, value: 'sessions' },
      ...LISTEN_ENV,
      { name: ENV_REDIS_PASSWORD, valueFrom: { secretKeyRef: { name: 'sessions-auth', key: 'password' } } },
    ]);
    expect(injectedContainer(injectSidecar(pod(), cc())).env).toEqual([
      { name: ENV_CACHE_CLUSTER, value: 'sessions' },
      ...LISTEN_ENV,
    ]);
  });

  it('passes a PostgreSQL origin URL from its Secret through the environment', () => {
    const c = injectedContainer(
      injectSidecar(pod(), cc({ sidecar: { origin: { postgres: { secretRef: { name: 'db', key: 'url' } } } } })),
    );
    expect(c.env).toContainEqual({ name: ENV_ORIGIN, valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } });
  });

  it('sizes memory from the L1 byte bound and sets a CPU request', () => {
    expect(injectedContainer(injectSidecar(pod(), cc())).resources).toEqual({
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { memory: '192Mi' },
    });
    const big = injectedContainer(injectSidecar(pod(), cc({ sidecar: { l1: { maxBytes: '256Mi' } } })));
    expect(big.resources).toEqual({ requests: { cpu: '50m', memory: '320Mi' }, limits: { memory: '576Mi' } });
  });

  it('opens the metrics port rc-metrics (7071) and probes it with httpGet: startup and liveness /healthz, readiness /readyz', () => {
    const c = injectedContainer(injectSidecar(pod(), cc()));
    expect(SIDECAR_METRICS_PORT).toBe(7071);
    expect(c.ports).toEqual([{ name: 'rc-metrics', containerPort: 7071, protocol: 'TCP' }]);
    // Dual-stack (`::`): the kubelet probes the pod's primary IP, IPv6 in an IPv6 or dual-stack cluster;
    // `0.0.0.0` listened on IPv4 only and every probe of such a pod failed.
    expect(c.args).toContain('--metrics-listen=[::]:7071');
    expect(c.args).not.toContain('--metrics-listen=0.0.0.0:7071');
    // The kubelet starts the app containers only once the startup probe succeeded: the sidecar serves.
    expect(c.startupProbe).toEqual({
      httpGet: { path: '/healthz', port: 'rc-metrics' },
      periodSeconds: 1,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 60,
    });
    expect(c.readinessProbe).toMatchObject({
      httpGet: { path: '/readyz', port: 'rc-metrics' },
      periodSeconds: 5,
      failureThreshold: 3,
    });
    expect(c.livenessProbe).toMatchObject({
      httpGet: { path: '/healthz', port: 'rc-metrics' },
      periodSeconds: 10,
      failureThreshold: 6,
    });
    expect(c.readinessProbe).not.toHaveProperty('exec');
    expect(c.livenessProbe).not.toHaveProperty('exec');
    // The API and RESP ports themselves are never declared: they listen on 127.0.0.1 only.
    expect(JSON.stringify(c.ports)).not.toMatch(/7070|7379/);
    // A native sidecar is stopped only after the app containers exited: no preStop delay is needed.
    expect(c.lifecycle).toBeUndefined();
  });

  it('labels the pod cache.ripplecache.io/sidecar: injected, whether or not it has labels', () => {
    // No labels: the whole map is added.
    const bare = injectSidecar(pod(), cc());
    expect(bare.at(-1)).toEqual({
      op: 'add',
      path: '/metadata/labels',
      value: { 'cache.ripplecache.io/sidecar': 'injected' },
    });
    expect(apply(pod(), bare).metadata!.labels).toEqual({ 'cache.ripplecache.io/sidecar': 'injected' });
    // Existing labels are kept; the key's "/" is escaped as ~1 in the JSON Pointer.
    const labelled = pod({}, { app: 'shop', 'app.kubernetes.io/name': 'web' });
    const ops = injectSidecar(labelled, cc());
    expect(ops.at(-1)).toEqual({
      op: 'add',
      path: '/metadata/labels/cache.ripplecache.io~1sidecar',
      value: 'injected',
    });
    expect(apply(labelled, ops).metadata!.labels).toEqual({
      app: 'shop',
      'app.kubernetes.io/name': 'web',
      'cache.ripplecache.io/sidecar': 'injected',
    });
    // An empty map, and a pod that set another value (add replaces a member).
    expect(apply(pod({}, {}), injectSidecar(pod({}, {}), cc())).metadata!.labels).toEqual({
      'cache.ripplecache.io/sidecar': 'injected',
    });
    const other = pod({}, { 'cache.ripplecache.io/sidecar': 'no' });
    expect(apply(other, injectSidecar(other, cc())).metadata!.labels).toEqual({
      'cache.ripplecache.io/sidecar': 'injected',
    });
    // No metadata at all.
    const anonymous: PodLike = { spec: { containers: [{ name: 'app' }] } };
    expect(apply(anonymous, injectSidecar(anonymous, cc())).metadata).toEqual({
      labels: { 'cache.ripplecache.io/sidecar': 'injected' },
    });
  });

  it('escapes JSON Pointer tokens (RFC 6901)', () => {
    expect(escapeJsonPointer('cache.ripplecache.io/sidecar')).toBe('cache.ripplecache.io~1sidecar');
    expect(escapeJsonPointer('a~b/c')).toBe('a~0b~1c');
    expect(escapeJsonPointer('plain')).toBe('plain');
  });

  it('runs non-root with a read-only root filesystem and no capabilities', () => {
    expect(injectedContainer(injectSidecar(pod(), cc())).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('uses the image from the options', () => {
    expect(injectedContainer(injectSidecar(pod(), cc(), { image: 'example.com/sidecar:dev' })).image).toBe(
      'example.com/sidecar:dev',
    );
  });

  it('refuses pods that clash with the sidecar', () => {
    expect(() => injectSidecar(pod({ volumes: [{ name: SIDECAR_CONFIG_VOLUME }] }), cc())).toThrow(
      InjectionConflictError,
    );
    expect(() => injectSidecar(pod({ containers: [{ name: 'app', ports: [{ containerPort: 7070 }] }] }), cc())).toThrow(
      /port 7070/,
    );
    expect(() =>
      injectSidecar(
        pod({ containers: [{ name: 'app', ports: [{ containerPort: 8080 }, { containerPort: 7071 }] }] }),
        cc(),
      ),
    ).toThrow(
      /container "app" declares port 7071, which the ripplecache sidecar listens on \(\[::\]:7071, metrics and probes\)/,
    );
    expect(() =>
      injectSidecar(
        pod({ containers: [{ name: 'app' }, { name: 'exporter', ports: [{ containerPort: 7071 }] }] }),
        cc(),
      ),
    ).toThrow(InjectionConflictError);
    expect(() =>
      injectSidecar(pod({ initContainers: [{ name: 'proxy', ports: [{ containerPort: 7070 }] }] }), cc()),
    ).toThrow(/container "proxy" declares port 7070/);
    expect(() =>
      injectSidecar(pod({ containers: [{ name: 'app', ports: [{ containerPort: 8080 }] }] }), cc()),
    ).not.toThrow();
  });

  it('gives deep-equal output for equal input', () => {
    expect(injectSidecar(pod(), cc({ topology: 'replication', replicas: 2 }))).toEqual(
      injectSidecar(pod(), cc({ topology: 'replication', replicas: 2 })),
    );
  });
});

describe('requestedCacheCluster', () => {
  it('reads the annotation, trimmed; empty means none', () => {
    expect(requestedCacheCluster(pod())).toBe('sessions');
    expect(requestedCacheCluster({ metadata: { annotations: { 'cache.ripplecache.io/inject': ' a ' } } })).toBe('a');
    expect(requestedCacheCluster({ metadata: { annotations: { 'cache.ripplecache.io/inject': '' } } })).toBeUndefined();
    expect(requestedCacheCluster({ metadata: {} })).toBeUndefined();
  });
});

describe('the Unix sockets on a shared emptyDir', () => {
  it('mounts the sockets read-only into every app container with their addresses, not into the pod init containers', () => {
    const p = pod({
      initContainers: [{ name: 'migrate' }],
      containers: [
        { name: 'app', env: [{ name: 'A' }], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        { name: 'worker', env: [{ name: 'RIPPLECACHE_RESP_SOCKET' }] },
      ],
    });
    const after = apply(p, injectSidecar(p, cc())) as {
      spec: { containers: Container[]; initContainers: Container[] };
    };
    const mount = { name: SIDECAR_SOCKET_VOLUME, mountPath: '/var/run/ripplecache', readOnly: true };
    const [app, worker] = after.spec.containers;
    expect(app!.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }, mount]);
    expect(app!.env).toEqual([
      { name: 'A' },
      { name: 'RIPPLECACHE_HTTP_SOCKET', value: '/var/run/ripplecache/http.sock' },
      { name: 'RIPPLECACHE_RESP_SOCKET', value: '/var/run/ripplecache/resp.sock' },
      { name: 'RIPPLECACHE_RESP_ADDR', value: '127.0.0.1:7379' },
    ]);
    expect(worker!.volumeMounts).toEqual([mount]);
    // A variable the container defines itself is kept as it is.
    expect(worker!.env).toEqual([
      { name: 'RIPPLECACHE_RESP_SOCKET' },
      { name: 'RIPPLECACHE_HTTP_SOCKET', value: '/var/run/ripplecache/http.sock' },
      { name: 'RIPPLECACHE_RESP_ADDR', value: '127.0.0.1:7379' },
    ]);
    const migrate = after.spec.initContainers.find((c) => c.name === 'migrate');
    expect(migrate!.volumeMounts).toBeUndefined();
    expect(migrate!.env).toBeUndefined();
    // The sidecar's own mount is writable (it creates the sockets).
    const sidecar = after.spec.initContainers.find((c) => c.name === SIDECAR_CONTAINER_NAME);
    expect(sidecar!.volumeMounts).toContainEqual({ name: SIDECAR_SOCKET_VOLUME, mountPath: '/var/run/ripplecache' });
  });

  it.each([
    [
      'the socket volume name',
      pod({ volumes: [{ name: 'ripplecache-sockets' }] }),
      /volume named "ripplecache-sockets"/,
    ],
    [
      'a mount at the socket directory',
      pod({ containers: [{ name: 'app', volumeMounts: [{ name: 'x', mountPath: '/var/run/ripplecache/' }] }] }),
      /container "app" already mounts something at \/var\/run\/ripplecache/,
    ],
    ['the RESP port', pod({ containers: [{ name: 'app', ports: [{ containerPort: 7379 }] }] }), /declares port 7379/],
  ])('refuses a pod that already uses %s', (_what, p, message) => {
    expect(() => injectSidecar(p, cc())).toThrow(InjectionConflictError);
    expect(() => injectSidecar(p, cc())).toThrow(message);
  });
});
