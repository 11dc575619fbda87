/**
 * The rendered `sidecar.yaml`, checked against the sidecar itself: every rendering is loaded with the
 * sidecar's own config loader (`sidecar/src/config.ts`, which rejects unknown keys and bad values), with the
 * arguments and environment variables of the container the webhook injects, so that the operator, the
 * webhook and the sidecar cannot drift apart.
 */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../sidecar/src/config.js';
import type { SidecarConfig } from '../../../sidecar/src/config-defaults.js';
import { SIDECAR_CONF_KEY, WRITE_POLICIES } from '../api/v1alpha1/constants.js';
import type { CacheCluster, CacheClusterSpec, OriginSpec } from '../api/v1alpha1/types.js';
import {
  SIDECAR_CONFIG_DIR,
  SIDECAR_METRICS_PORT,
  SIDECAR_METRICS_PORT_NAME,
  sidecarContainer,
} from '../webhook/inject-sidecar.js';
import { desiredSidecarConfig, renderSidecarYaml } from './sidecar-config.js';
import { cacheCluster, withGeneration, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster =>
  cacheCluster('sessions', withUid('uid-1'), withGeneration(1), withSpec(spec));

/** The Secrets the injected container's environment refers to. */
const SECRETS: Record<string, string> = {
  'sessions-auth/password': 's3cret',
  'db/url': 'postgres://app:pg-pass@db.shop.svc:5432/app',
};

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };

/**
 * Starts the sidecar's config loader the way the kubelet starts the injected container: its arguments, its
 * environment (Secret references resolved from {@link SECRETS}), and the ConfigMap's `sidecar.yaml` mounted
 * at the path the arguments name.
 */
function loadAsInjected(c: CacheCluster): SidecarConfig {
  const container = sidecarContainer(c) as { args: string[]; env?: EnvVar[] };
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    const value = ref ? SECRETS[`${ref.name}/${ref.key}`] : e.value;
    if (value === undefined) throw new Error(`test setup: no value for ${e.name}`);
    env[e.name] = value;
  }
  const mounted = `${SIDECAR_CONFIG_DIR}/${SIDECAR_CONF_KEY}`;
  const result = parseConfig({
    argv: container.args,
    env,
    readFile: (path) => {
      if (path !== mounted) throw new Error(`ENOENT: ${path} (only ${mounted} is mounted)`);
      return renderSidecarYaml(c);
    },
  });
  if (result.kind !== 'config') throw new Error('expected a configuration');
  return result.config;
}

const ORIGINS: Array<[string, OriginSpec | undefined]> = [
  ['no origin', undefined],
  ['http origin', { http: { url: 'https://api.shop.svc:8443/items' } }],
  ['postgres origin', { postgres: { secretRef: { name: 'db', key: 'url' } } }],
  ['postgres origin with a table', { postgres: { secretRef: { name: 'db', key: 'url' }, table: 'app.cache_items' } }],
];

describe('desiredSidecarConfig origins', () => {
  it('renders a PostgreSQL origin as originTable only (the URL comes from the Secret through RIPPLECACHE_ORIGIN)', () => {
    const cfg = desiredSidecarConfig(
      cc({ sidecar: { origin: { postgres: { secretRef: { name: 'db', key: 'url' }, table: 'app.cache_items' } } } }),
    );
    expect(cfg.originTable).toBe('app.cache_items');
    expect(cfg).not.toHaveProperty('origin');
    expect(
      desiredSidecarConfig(cc({ sidecar: { origin: { postgres: { secretRef: { name: 'db', key: 'url' } } } } }))
        .originTable,
    ).toBe('cache_entries');
  });

  it('renders an HTTP origin as origin: <url>, without originTable', () => {
    const cfg = desiredSidecarConfig(
      cc({ sidecar: { origin: { http: { url: 'http://origin.shop.svc:8080/cache' } } } }),
    );
    expect(cfg.origin).toBe('http://origin.shop.svc:8080/cache');
    expect(cfg).not.toHaveProperty('originTable');
  });

  it('points a cluster sidecar at the client Service as a Redis Cluster seed (redisCluster), without replicas', () => {
    const cfg = desiredSidecarConfig(cc({ topology: 'cluster', shards: 3, replicas: 1 }));
    expect(cfg.redis).toBe('redis://sessions.shop.svc:6379');
    expect(cfg.redisCluster).toBe(true);
    expect(cfg.redisReplicas).toEqual([]);
    expect(desiredSidecarConfig(cc({ topology: 'replication', replicas: 1 }))).not.toHaveProperty('redisCluster');
    expect(desiredSidecarConfig(cc({}))).not.toHaveProperty('redisCluster');
  });

  it('renders neither without an origin', () => {
    const cfg = desiredSidecarConfig(cc({}));
    expect(cfg).not.toHaveProperty('origin');
    expect(cfg).not.toHaveProperty('originTable');
  });
});

describe("sidecar.yaml loaded by the sidecar's own config loader", () => {
  const cases = WRITE_POLICIES.flatMap((writePolicy) =>
    ORIGINS.flatMap(([originName, origin]) =>
      (['standalone', 'replication', 'cluster'] as const).map((topology) => ({
        writePolicy,
        originName,
        origin,
        topology,
      })),
    ),
  );

  it.each(cases)(
    '$writePolicy, $originName, $topology: loads without errors and means what the CacheCluster says',
    ({ writePolicy, origin, topology }) => {
      const spec: CacheClusterSpec = {
        topology,
        ...(topology === 'replication' ? { replicas: 2 } : {}),
        ...(topology === 'cluster' ? { shards: 3, replicas: 1 } : {}),
        auth: { secretRef: { name: 'sessions-auth', key: 'password' } },
        defaultTTLSeconds: 120,
        sidecar: {
          writePolicy,
          l1: { policy: 'lfu', maxEntries: 2000, maxBytes: '16Mi', maxTTLSeconds: 30 },
          writeBack: { flushIntervalMs: 250, flushBatchSize: 100, maxPending: 5000 },
          ...(origin ? { origin } : {}),
        },
      };
      const config = loadAsInjected(cc(spec));
      const rendered = parse(renderSidecarYaml(cc(spec))) as Record<string, unknown>;

      expect(config.redis).toBe('redis://sessions.shop.svc:6379');
      // The label `cachecluster` of every metric of the sidecar (the alerts aggregate by it), from the
      // container's environment: not in the shared file, which sidecars older than the key would refuse.
      expect(config.cacheCluster).toBe('sessions');
      expect(rendered).not.toHaveProperty('cacheCluster');
      expect(config.redisReplicas).toEqual(
        topology === 'replication' ? ['redis://sessions-replicas.shop.svc:6379'] : [],
      );
      // Topology cluster: the client Service is a seed of the Redis Cluster (the sidecar's --redis-cluster).
      expect(config.redisCluster).toBe(topology === 'cluster');
      expect(config.redisPassword).toBe('s3cret');
      expect(config.channel).toBe(rendered.channel);
      expect(config.writePolicy).toBe(writePolicy);
      expect(config.defaultTTLSeconds).toBe(120);
      expect(config.l1).toEqual({ policy: 'lfu', maxEntries: 2000, maxBytes: 16 * 2 ** 20, maxTTLSeconds: 30 });
      expect(config.writeBack).toEqual({
        flushIntervalMs: 250,
        flushBatchSize: 100,
        maxPending: 5000,
        coalesceWindowMs: 0,
      });
      // The API stays on loopback, and on a Unix socket in the pod's shared emptyDir; so does the RESP
      // front. The metrics and probe listener is where the container's port and probes are.
      expect(config.listen).toEqual([{ host: '127.0.0.1', port: 7070 }, { path: '/var/run/ripplecache/http.sock' }]);
      expect(config.listenResp).toEqual([
        { host: '127.0.0.1', port: 7379 },
        { path: '/var/run/ripplecache/resp.sock' },
      ]);
      expect(config.socketMode).toBe(0o666);
      // `::`: dual-stack, so that the kubelet's probes of an IPv6 pod IP reach it (0.0.0.0 is IPv4 only).
      expect(config.metricsListen).toEqual({ host: '::', port: SIDECAR_METRICS_PORT });
      if (origin?.postgres) {
        expect(config.origin).toBe(SECRETS['db/url']);
        expect(config.originTable).toBe(origin.postgres.table ?? 'cache_entries');
      } else if (origin?.http) {
        expect(config.origin).toBe(origin.http.url);
      } else {
        expect(config.origin).toBeUndefined();
      }
      // Nothing secret went into the file.
      expect(JSON.stringify(rendered)).not.toMatch(/s3cret|pg-pass|postgres:/);
    },
  );

  it('renders writeBack.coalesceWindowMs only when set, and the sidecar loads it', () => {
    expect(parse(renderSidecarYaml(cc({}))).writeBack).not.toHaveProperty('coalesceWindowMs');
    const spec: CacheClusterSpec = { sidecar: { writePolicy: 'write-back', writeBack: { coalesceWindowMs: 2000 } } };
    expect(parse(renderSidecarYaml(cc(spec))).writeBack).toMatchObject({ coalesceWindowMs: 2000 });
    expect(loadAsInjected(cc(spec)).writeBack.coalesceWindowMs).toBe(2000);
    expect(loadAsInjected(cc({})).writeBack.coalesceWindowMs).toBe(0);
  });

  it('loads the defaults of an empty spec', () => {
    const config = loadAsInjected(cc({}));
    expect(config).toMatchObject({
      cacheCluster: 'sessions',
      redis: 'redis://sessions.shop.svc:6379',
      redisReplicas: [],
      writePolicy: 'write-through',
      defaultTTLSeconds: 3600,
      l1: { policy: 'tinylfu', maxEntries: 10000, maxBytes: 64 * 2 ** 20, maxTTLSeconds: 60 },
      writeBack: { flushIntervalMs: 1000, flushBatchSize: 500, maxPending: 100000 },
    });
    expect(config.redisPassword).toBeUndefined();
    expect(config.origin).toBeUndefined();
  });

  it.each([
    [
      'the smallest values the CRD accepts',
      {
        defaultTTLSeconds: 0,
        sidecar: {
          l1: { maxEntries: 1, maxBytes: '1', maxTTLSeconds: 0 },
          writeBack: { flushIntervalMs: 10, flushBatchSize: 1, maxPending: 1 },
        },
      },
    ],
    [
      'the largest values the CRD accepts',
      {
        defaultTTLSeconds: 315_360_000,
        sidecar: {
          l1: { maxEntries: 100_000_000, maxBytes: '64Gi', maxTTLSeconds: 86_400 },
          writeBack: { flushIntervalMs: 3_600_000, flushBatchSize: 100_000, maxPending: 100_000_000 },
          origin: { postgres: { secretRef: { name: 'db', key: 'url' }, table: `${'s'.repeat(63)}.${'t'.repeat(63)}` } },
        },
      },
    ],
    ['a fractional byte quantity', { sidecar: { l1: { maxBytes: '1.5Ki' } } }],
    ['the largest coalescing window', { sidecar: { writeBack: { coalesceWindowMs: 14_999 } } }],
  ] satisfies Array<[string, CacheClusterSpec]>)('loads %s', (_name, spec) => {
    expect(() => loadAsInjected(cc(spec))).not.toThrow();
  });

  // Values the sidecar refuses at start are rejected by the API server instead (CEL rule l1MaxBytesRange,
  // the table pattern): test/integration/crd-validation.test.ts shows it on a real kube-apiserver.

  it('gives the metrics port the container declares and the probes use', () => {
    const container = sidecarContainer(cc({})) as {
      ports: Array<{ name: string; containerPort: number }>;
      readinessProbe: { httpGet: { port: string } };
      livenessProbe: { httpGet: { port: string } };
    };
    const config = loadAsInjected(cc({}));
    const port = container.ports.find((p) => p.name === SIDECAR_METRICS_PORT_NAME);
    expect(port?.containerPort).toBe(config.metricsListen?.port);
    expect(container.readinessProbe.httpGet.port).toBe(SIDECAR_METRICS_PORT_NAME);
    expect(container.livenessProbe.httpGet.port).toBe(SIDECAR_METRICS_PORT_NAME);
  });
});
