import { describe, expect, it } from 'vitest';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import {
  ENV_ORIGIN, ENV_REDIS_PASSWORD, INJECT_DEFAULTS, InjectionConflictError, SIDECAR_CONFIG_VOLUME, SIDECAR_CONTAINER_NAME,
  injectSidecar, isInjected, requestedCacheCluster, type JsonPatchOperation, type PodLike,
} from './inject-sidecar.js';

const cc = (spec: CacheCluster['spec'] = {}): CacheCluster => ({
  apiVersion: 'cache.ripplecache.io/v1alpha1', kind: 'CacheCluster', metadata: { name: 'sessions', namespace: 'shop' }, spec,
});

const pod = (extra: Partial<NonNullable<PodLike['spec']>> = {}): PodLike => ({
  metadata: { name: 'web', namespace: 'shop', annotations: { 'cache.ripplecache.io/inject': 'sessions' } },
  spec: { containers: [{ name: 'app' }], ...extra },
});

/** Applies `add` operations the way the API server does (enough for these tests). */
function apply(p: PodLike, ops: JsonPatchOperation[]): PodLike {
  const out = structuredClone(p) as Record<string, unknown>;
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let node = out as Record<string, unknown> | unknown[];
    for (const part of parts.slice(0, -1)) node = (node as Record<string, unknown>)[part] as Record<string, unknown>;
    const last = parts.at(-1)!;
    if (Array.isArray(node) && last === '-') node.push(op.value);
    else (node as Record<string, unknown>)[last] = op.value;
  }
  return out as PodLike;
}

type Container = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function injectedContainer(ops: JsonPatchOperation[]): Container {
  const op = ops.find((o) => o.path === '/spec/containers/-');
  expect(op).toBeDefined();
  return op!.value as Container;
}

describe('injectSidecar', () => {
  it('adds the sidecar container after the app containers and the config volume from <cc>-config', () => {
    const ops = injectSidecar(pod(), cc());
    expect(ops.map((o) => o.path)).toEqual(['/spec/containers/-', '/spec/volumes']);
    const c = injectedContainer(ops);
    expect(c.name).toBe(SIDECAR_CONTAINER_NAME);
    expect(c.image).toBe(INJECT_DEFAULTS.image);
    expect(c.args).toEqual(['--config', '/etc/ripplecache/sidecar.yaml']);
    expect(c.volumeMounts).toEqual([{ name: SIDECAR_CONFIG_VOLUME, mountPath: '/etc/ripplecache', readOnly: true }]);
    expect(ops[1]!.value).toEqual([{ name: SIDECAR_CONFIG_VOLUME, configMap: { name: 'sessions-config', items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] } }]);
    const after = apply(pod(), ops);
    expect(after.spec!.containers!.map((x) => x.name)).toEqual(['app', SIDECAR_CONTAINER_NAME]);
  });

  it('appends to existing volumes instead of replacing them', () => {
    const ops = injectSidecar(pod({ volumes: [{ name: 'data' }] }), cc());
    expect(ops.map((o) => o.path)).toEqual(['/spec/containers/-', '/spec/volumes/-']);
    const after = apply(pod({ volumes: [{ name: 'data' }] }), ops);
    expect(after.spec!.volumes!.map((v) => v.name)).toEqual(['data', SIDECAR_CONFIG_VOLUME]);
  });

  it('is idempotent: an injected pod gets no operations', () => {
    const once = apply(pod(), injectSidecar(pod(), cc()));
    expect(isInjected(once)).toBe(true);
    expect(injectSidecar(once, cc())).toEqual([]);
    // Also when the sidecar was added as a native sidecar (init container) by hand.
    expect(injectSidecar(pod({ initContainers: [{ name: SIDECAR_CONTAINER_NAME }] }), cc())).toEqual([]);
  });

  it('reads the Redis password from the auth Secret, never copying it', () => {
    const c = injectedContainer(injectSidecar(pod(), cc({ auth: { secretRef: { name: 'sessions-auth', key: 'password' } } })));
    expect(c.env).toEqual([{ name: ENV_REDIS_PASSWORD, valueFrom: { secretKeyRef: { name: 'sessions-auth', key: 'password' } } }]);
    expect(injectedContainer(injectSidecar(pod(), cc())).env).toBeUndefined();
  });

  it('passes a PostgreSQL origin URL from its Secret through the environment', () => {
    const c = injectedContainer(injectSidecar(pod(), cc({ sidecar: { origin: { postgres: { secretRef: { name: 'db', key: 'url' } } } } })));
    expect(c.env).toContainEqual({ name: ENV_ORIGIN, valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } });
  });

  it('sizes memory from the L1 byte bound and sets a CPU request', () => {
    expect(injectedContainer(injectSidecar(pod(), cc())).resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '192Mi' } });
    const big = injectedContainer(injectSidecar(pod(), cc({ sidecar: { l1: { maxBytes: '256Mi' } } })));
    expect(big.resources).toEqual({ requests: { cpu: '50m', memory: '320Mi' }, limits: { memory: '576Mi' } });
  });

  it('probes /readyz and /healthz on 127.0.0.1:7070 from inside the container, and drains on preStop', () => {
    const c = injectedContainer(injectSidecar(pod(), cc(), { drainSeconds: 7 }));
    expect(c.readinessProbe.exec.command.join(' ')).toContain('http://127.0.0.1:7070/readyz');
    expect(c.livenessProbe.exec.command.join(' ')).toContain('http://127.0.0.1:7070/healthz');
    expect(c.lifecycle).toEqual({ preStop: { sleep: { seconds: 7 } } });
  });

  it('runs non-root with a read-only root filesystem and no capabilities', () => {
    expect(injectedContainer(injectSidecar(pod(), cc())).securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('uses the image from the options', () => {
    expect(injectedContainer(injectSidecar(pod(), cc(), { image: 'example.com/sidecar:dev' })).image).toBe('example.com/sidecar:dev');
  });

  it('refuses pods that clash with the sidecar', () => {
    expect(() => injectSidecar(pod({ volumes: [{ name: SIDECAR_CONFIG_VOLUME }] }), cc())).toThrow(InjectionConflictError);
    expect(() => injectSidecar(pod({ containers: [{ name: 'app', ports: [{ containerPort: 7070 }] }] }), cc())).toThrow(/port 7070/);
  });

  it('gives deep-equal output for equal input', () => {
    expect(injectSidecar(pod(), cc({ topology: 'replication', replicas: 2 }))).toEqual(injectSidecar(pod(), cc({ topology: 'replication', replicas: 2 })));
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
