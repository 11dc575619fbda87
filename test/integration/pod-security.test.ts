/**
 * Pod Security `restricted` against the real API server's PodSecurity admission plugin (on by default).
 *
 * A namespace labelled `pod-security.kubernetes.io/enforce=restricted` and `warn=restricted`: the API
 * server rejects a Pod that violates the profile (enforce), and for a workload (StatefulSet, CronJob,
 * Deployment) it checks the pod template and answers with a `Warning` response header (warn), which
 * kubectl prints on stderr as `Warning: would violate PodSecurity "restricted:latest": …`. Every object is
 * created with a server-side dry run (`--dry-run=server`), so the whole admission chain runs and nothing
 * is stored: no kubelet is needed.
 *
 * What is checked: the operator's StatefulSet (several CacheCluster shapes) and flush CronJob are admitted
 * without a warning, a Pod built from each pod template is admitted under enforce, and the same for the
 * chart's operator Deployment and `helm test` Pod.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../../operator/src/api/v1alpha1/types.js';
import { desiredFlushCronJob } from '../../operator/src/desired/flush-cron-job.js';
import { desiredStatefulSet } from '../../operator/src/desired/stateful-set.js';
import { cacheCluster, inNamespace, withGeneration, withSpec, withUid } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { waitFor } from '../harness/ports.js';
import { kubeBinDir, repoRoot, trackTempDir } from '../harness/tools.js';

const NS = 'restricted';
type Json = Record<string, any>;

let cp: ControlPlane;

const cc = (name: string, spec: CacheClusterSpec): CacheCluster =>
  cacheCluster(
    name,
    inNamespace(NS),
    withUid('00000000-0000-0000-0000-000000000001'),
    withGeneration(1),
    withSpec(spec),
  );

const SHAPES: Array<[string, CacheClusterSpec]> = [
  ['defaults', {}],
  [
    'replication-exporter-auth',
    {
      topology: 'replication',
      replicas: 2,
      metrics: { exporter: true },
      auth: { secretRef: { name: 'cache-auth', key: 'password' } },
      resources: { limits: { memory: '512Mi' } },
      eviction: { policy: 'allkeys-lfu', maxMemoryPercent: 60 },
      flush: { schedule: '0 3 * * *', timeZone: 'Europe/Berlin' },
    },
  ],
  ['debian-image', { image: 'redis:7.2', flush: { schedule: '@hourly' } }],
  [
    'persistence-placement',
    {
      topology: 'replication',
      persistence: { mode: 'aof', storage: { size: '1Gi' } },
      podTemplate: {
        metadata: { labels: { team: 'checkout' }, annotations: { 'example.com/owner': 'shop' } },
        spec: {
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cache', effect: 'NoSchedule' }],
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
          ],
          imagePullSecrets: [{ name: 'registry' }],
        },
      },
      flush: { schedule: '@hourly' },
    },
  ],
];

/** Server-side dry-run create in the restricted namespace; resolves with kubectl's exit code and stderr. */
async function dryRunCreate(obj: Json): Promise<{ code: number; stderr: string; stored: Json | undefined }> {
  const r = await cp.kubectl(['create', '--dry-run=server', '-n', NS, '-o', 'json', '-f', '-'], JSON.stringify(obj));
  return { code: r.code, stderr: r.stderr, stored: r.code === 0 ? (JSON.parse(r.stdout) as Json) : undefined };
}

/** Expects the object to be admitted, with no warning at all (PodSecurity's warn mode answers with one). */
async function expectAdmittedWithoutWarnings(obj: Json): Promise<Json> {
  const { code, stderr, stored } = await dryRunCreate(obj);
  expect(code, `${obj.kind} ${obj.metadata?.name}: ${stderr}`).toBe(0);
  expect(stderr, `${obj.kind} ${obj.metadata?.name}`).not.toMatch(/warning/i);
  expect(stored?.kind).toBe(obj.kind);
  return stored!;
}

/**
 * A bare Pod from a pod template, as a controller would create it: the profile's `enforce` mode applies. With
 * `claims` (a StatefulSet's volumeClaimTemplates), the volumes the StatefulSet controller adds for them.
 */
function podFrom(name: string, template: Json, claims: Json[] = []): Json {
  const spec = structuredClone(template.spec);
  for (const c of claims)
    spec.volumes = [
      ...(spec.volumes ?? []),
      { name: c.metadata.name, persistentVolumeClaim: { claimName: `${c.metadata.name}-${name}` } },
    ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: template.metadata?.labels ?? {} },
    spec,
  };
}

async function helmTemplate(args: string[]): Promise<Json[]> {
  const helm = join(await kubeBinDir(), 'helm');
  const home = mkdtempSync(join(tmpdir(), 'ripplecache-helm-'));
  trackTempDir(home);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      helm,
      ['template', 'rc', join(repoRoot, 'charts/ripplecache'), '--namespace', NS, ...args],
      { env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home } },
      (err, out, stderr) => (err ? reject(new Error(`helm template: ${stderr}`)) : resolve(out)),
    );
  });
  return parseAllDocuments(stdout)
    .map((d) => d.toJSON() as Json)
    .filter(Boolean);
}

beforeAll(async () => {
  cp = await startControlPlane();
  const r = await cp.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: NS,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/warn-version': 'latest',
        },
      },
    }),
  );
  expect(r.code, r.stderr).toBe(0);
  // Pods need the namespace's default ServiceAccount (the controller manager creates it).
  await waitFor(
    `ServiceAccount ${NS}/default`,
    async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', NS])).code === 0,
    30_000,
    200,
  );
});

afterAll(async () => {
  await cp?.stop();
});

describe('the namespace really enforces restricted (the check can fail)', () => {
  it('rejects a root pod and warns about a root StatefulSet', async () => {
    const template = {
      metadata: { labels: { app: 'root' } },
      spec: { containers: [{ name: 'c', image: 'redis:7.2-alpine' }] },
    };
    const pod = await dryRunCreate(podFrom('root', template));
    expect(pod.code).not.toBe(0);
    expect(pod.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
    const sts = await dryRunCreate({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'root', namespace: NS },
      spec: { serviceName: 'root', selector: { matchLabels: { app: 'root' } }, template },
    });
    expect(sts.code).toBe(0);
    expect(sts.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest"/);
  });
});

describe.each(SHAPES)('CacheCluster %s', (name, spec) => {
  it('StatefulSet: admitted without warnings; a Pod from its template is admitted under enforce', async () => {
    const sts = desiredStatefulSet(cc(name, spec));
    const stored = await expectAdmittedWithoutWarnings(sts);
    // What the API server would store runs Redis as the image's redis user, never root.
    expect(stored.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });
    await expectAdmittedWithoutWarnings(podFrom(`${name}-0`, sts.spec.template, sts.spec.volumeClaimTemplates));
  });

  it('flush CronJob: admitted without warnings; a Pod from its template is admitted under enforce', async () => {
    const cronJob = desiredFlushCronJob(cc(name, { ...spec, flush: spec.flush ?? { schedule: '@daily' } }))!;
    await expectAdmittedWithoutWarnings(cronJob);
    await expectAdmittedWithoutWarnings(podFrom(`${name}-flush`, cronJob.spec.jobTemplate.spec.template));
  });
});

describe('the chart', () => {
  it('the operator Deployment and the helm test Pod are admitted without warnings', async () => {
    const objs = await helmTemplate([]);
    const deployment = objs.find((o) => o.kind === 'Deployment');
    expect(deployment).toBeDefined();
    await expectAdmittedWithoutWarnings(deployment!);
    // A Pod from the Deployment's template, without the ServiceAccount the chart would have created.
    const template = structuredClone(deployment!.spec.template) as Json;
    delete template.spec.serviceAccountName;
    await expectAdmittedWithoutWarnings(podFrom('operator', template));
    const testPod = objs.find((o) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test');
    expect(testPod).toBeDefined();
    await expectAdmittedWithoutWarnings(testPod!);
  });
});
