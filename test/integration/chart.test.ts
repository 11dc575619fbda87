/**
 * The Helm chart (charts/ripplecache): `helm lint` and `helm template` for the defaults and every
 * ci/*.yaml, the values schema rejecting unknown keys, and `helm install` into the real test control plane
 * followed by the operator running with the ServiceAccount identity the chart created (a token for it, not
 * the admin certificate) and the exact flags of the chart's Deployment: it must reconcile a CacheCluster to
 * Ready (every child kind, the auth Secret, status, events, the Lease, the webhook certificate), and verbs
 * the chart does not grant must be refused.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withAuth,
  withEviction,
  withFlush,
  withMetrics,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { kubeBinDir, repoRoot, trackTempDir } from '../harness/tools.js';
import {
  BRIDGE_PORT,
  COMPONENT_BRIDGE,
  LABEL_CLUSTER,
  LABEL_COMPONENT,
  LABEL_SIDECAR,
  SIDECAR_INJECTED,
} from '../../operator/src/api/v1alpha1/constants.js';
import { desiredBridgeDeployment } from '../../operator/src/desired/bridge.js';
import { SIDECAR_METRICS_PORT_NAME } from '../../operator/src/webhook/inject-sidecar.js';
import { replicasDefaultPolicy } from '../../operator/src/api/v1alpha1/replicas-default-policy.js';

const CHART = join(repoRoot, 'charts/ripplecache');
const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const helmHome = mkdtempSync(join(tmpdir(), 'ripplecache-helm-'));
trackTempDir(helmHome);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [k: string]: any;
  };
  [k: string]: any;
};

async function helm(args: string[]): Promise<Run> {
  const bin = join(await kubeBinDir(), 'helm');
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(helmHome, 'cache'),
          HELM_CONFIG_HOME: join(helmHome, 'config'),
          HELM_DATA_HOME: join(helmHome, 'data'),
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function render(args: string[] = []): Promise<Obj[]> {
  const r = await helm(['template', 'rc', CHART, '--namespace', 'ripplecache-system', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJSON() as Obj)
    .filter(Boolean);
}

/**
 * Starts the operator as the Deployment `release-ripplecache` in `namespace` would run it: its container
 * arguments and environment, except the listen addresses (loopback ports) and the Lease namespace (which
 * the harness otherwise pins to `default`).
 */
async function startOperatorLikeDeployment(
  cp: ControlPlane,
  opts: { namespace: string; deployment: string; kubeconfigPath: string; podAddresses: Record<string, string> },
): Promise<{ operator: OperatorProcess; webhookPort: number }> {
  const r = await cp.kubectl(['get', 'deployment', opts.deployment, '-n', opts.namespace, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  const container = (JSON.parse(r.stdout) as Obj).spec.template.spec.containers[0] as {
    args: string[];
    env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  };
  expect(container.env.map((e) => e.valueFrom?.fieldRef?.fieldPath)).toEqual(['metadata.namespace', 'metadata.name']);
  const webhookPort = await freePort();
  const args = container.args
    .filter((a) => !a.startsWith('--metrics-listen='))
    .map((a) => (a.startsWith('--webhook-listen=') ? `--webhook-listen=127.0.0.1:${webhookPort}` : a));
  const podName = `${opts.deployment}-7d9f-abcde`;
  const operator = await startOperator({
    kubeconfigPath: opts.kubeconfigPath,
    identity: podName,
    podAddresses: opts.podAddresses,
    extraArgs: [...args, `--leader-election-namespace=${opts.namespace}`],
    env: { POD_NAMESPACE: opts.namespace, POD_NAME: podName },
  });
  return { operator, webhookPort };
}

async function waitForReady(cp: ControlPlane, namespace: string, name: string): Promise<void> {
  await waitFor(
    `CacheCluster ${namespace}/${name} to be Ready with ConfigApplied=True`,
    async () => {
      const r = await cp.kubectl(['get', 'cachecluster', name, '-n', namespace, '-o', 'json']);
      if (r.code !== 0) return false;
      const cc = JSON.parse(r.stdout) as Obj;
      const applied = (cc.status?.conditions ?? []).find((c: { type: string }) => c.type === 'ConfigApplied');
      return cc.status?.phase === 'Ready' && applied?.status === 'True';
    },
    60_000,
    300,
  );
}

const find = (objs: Obj[], kind: string, name?: string) =>
  objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

describe('chart files', () => {
  it('carries the same CRDs as crds/ (scripts/sync-chart-crds.sh copies them)', () => {
    const src = readdirSync(join(repoRoot, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const copy = readdirSync(join(CHART, 'files/crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(copy).toEqual(src);
    for (const f of src) {
      expect(
        readFileSync(join(CHART, 'files/crds', f), 'utf8'),
        `charts/ripplecache/files/crds/${f} differs from crds/${f}: run scripts/sync-chart-crds.sh`,
      ).toBe(readFileSync(join(repoRoot, 'crds', f), 'utf8'));
    }
  });

  it('comments every key of values.yaml', () => {
    const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
    const indent = (l: string) => l.length - l.trimStart().length;
    const isKey = (l: string) => /^\s*[A-Za-z][\w.-]*:/.test(l);
    /** A documented key whose block holds no documented keys is a default value (e.g. `resources`), described as a whole. */
    const isDocumentedValueBlock = (j: number) => {
      if (!(lines[j - 1]?.trim() ?? '').startsWith('# --')) return false;
      for (let n = j + 1; n < lines.length && (lines[n]!.trim() === '' || indent(lines[n]!) > indent(lines[j]!)); n++) {
        if (lines[n]!.trim().startsWith('# --')) return false;
      }
      return true;
    };
    const uncommented: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (!isKey(lines[i]!) || lines[i - 1]?.trim().startsWith('#')) continue;
      let covered = false;
      for (let j = i - 1, level = indent(lines[i]!); j >= 0 && level > 0 && !covered; j--) {
        if (isKey(lines[j]!) && indent(lines[j]!) < level) {
          level = indent(lines[j]!);
          covered = isDocumentedValueBlock(j);
        }
      }
      if (!covered) uncommented.push(`${i + 1}: ${lines[i]}`);
    }
    expect(uncommented).toEqual([]);
  });
});

describe('helm lint and helm template', () => {
  it('lints cleanly (--strict) with the defaults and with every ci/*.yaml', async () => {
    expect(CI_VALUES).toEqual(
      expect.arrayContaining([
        'default-values.yaml',
        'namespace-scope-values.yaml',
        'cert-manager-values.yaml',
        'monitoring-values.yaml',
      ]),
    );
    for (const args of [[], ...CI_VALUES.map((f) => ['-f', join(CHART, 'ci', f)])]) {
      const r = await helm(['lint', CHART, '--strict', ...args]);
      expect(r.code, `helm lint ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('renders the defaults: operator Deployment, least-privilege RBAC, PDB, CRD kept, webhook with a self-managed certificate', async () => {
    const objs = await render();
    const [dep] = find(objs, 'Deployment');
    expect(dep!.spec.replicas).toBe(2);
    const pod = dep!.spec.template.spec;
    const c = pod.containers[0];
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--leader-elect=true',
        '--webhook-listen=[::]:9443',
        '--metrics-listen=[::]:8080',
        '--webhook-configuration=rc-ripplecache-sidecar-injector',
        '--webhook-secret=ripplecache-system/rc-ripplecache-webhook-tls',
        '--sidecar-image=ghcr.io/ripplecache/sidecar:0.1.0',
      ]),
    );
    expect(c.image).toBe('ghcr.io/ripplecache/operator:0.1.0');
    expect(c.env.map((e: { name: string }) => e.name)).toEqual(['POD_NAMESPACE', 'POD_NAME']);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    expect(find(objs, 'PodDisruptionBudget')[0]!.spec.minAvailable).toBe(1);
    const [crd] = find(objs, 'CustomResourceDefinition');
    expect(crd!.metadata.name).toBe('cacheclusters.cache.ripplecache.io');
    expect(crd!.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    const [mwc] = find(objs, 'MutatingWebhookConfiguration');
    const wh = mwc!.webhooks[0];
    expect(wh.failurePolicy).toBe('Fail');
    expect(wh.clientConfig.caBundle).toBeUndefined();
    expect(wh.matchConditions[0].expression).toContain("'cache.ripplecache.io/inject' in object.metadata.annotations");
    expect(wh.namespaceSelector.matchExpressions[0].values).toEqual([
      'kube-system',
      'kube-node-lease',
      'ripplecache-system',
    ]);
    expect(find(objs, 'Secret', 'rc-ripplecache-webhook-tls')).toHaveLength(1);
    // Exactly these roles, with exactly these rules, each bound to the chart's ServiceAccount.
    const readWrite = ['get', 'list', 'watch', 'create', 'patch', 'delete'];
    const roles = [...find(objs, 'ClusterRole'), ...find(objs, 'Role')];
    expect(roles.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual([
      'ClusterRole/rc-ripplecache-manager',
      'ClusterRole/rc-ripplecache-webhook',
      'Role/rc-ripplecache-operator',
    ]);
    expect(find(objs, 'ClusterRole', 'rc-ripplecache-manager')[0]!.rules).toEqual([
      { apiGroups: ['cache.ripplecache.io'], resources: ['cacheclusters'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['cache.ripplecache.io'], resources: ['cacheclusters/status'], verbs: ['get', 'patch', 'update'] },
      { apiGroups: ['apps'], resources: ['statefulsets', 'deployments'], verbs: readWrite },
      { apiGroups: [''], resources: ['services', 'configmaps'], verbs: readWrite },
      { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: readWrite },
      { apiGroups: ['batch'], resources: ['cronjobs'], verbs: readWrite },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      // Failover: pods' readiness and their role label; rolling updates delete them; never create or get them.
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'patch', 'delete'] },
    ]);
    expect(find(objs, 'ClusterRole', 'rc-ripplecache-webhook')[0]!.rules).toEqual([
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: ['rc-ripplecache-sidecar-injector'],
        verbs: ['get', 'patch'],
      },
    ]);
    const operatorRole = find(objs, 'Role', 'rc-ripplecache-operator')[0]!;
    expect(operatorRole.metadata.namespace).toBe('ripplecache-system');
    expect(operatorRole.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['rc-ripplecache-leader'],
        verbs: ['get', 'update'],
      },
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['rc-ripplecache-webhook-tls'],
        verbs: ['get', 'patch'],
      },
    ]);
    const serviceAccount = [{ kind: 'ServiceAccount', name: 'rc-ripplecache', namespace: 'ripplecache-system' }];
    const bindings = [...find(objs, 'ClusterRoleBinding'), ...find(objs, 'RoleBinding')];
    expect(bindings.map((b) => `${b.kind}/${b.metadata.name} -> ${b.roleRef.kind}/${b.roleRef.name}`)).toEqual([
      'ClusterRoleBinding/rc-ripplecache-manager -> ClusterRole/rc-ripplecache-manager',
      'ClusterRoleBinding/rc-ripplecache-webhook -> ClusterRole/rc-ripplecache-webhook',
      'RoleBinding/rc-ripplecache-operator -> Role/rc-ripplecache-operator',
    ]);
    for (const b of bindings) expect(b.subjects, b.metadata.name).toEqual(serviceAccount);
    // Nothing grants writes to Secrets, anything on nodes or RBAC, or more on pods than list/watch/patch/delete.
    for (const role of roles) {
      for (const rule of role.rules) {
        expect(rule.verbs, `${role.metadata.name}`).not.toContain('*');
        expect(rule.resources).not.toContain('*');
        if (rule.resources.includes('pods')) expect(rule.verbs).toEqual(['list', 'watch', 'patch', 'delete']);
        expect(rule.resources).not.toContain('nodes');
        if (rule.resources.includes('secrets')) {
          expect(
            rule.verbs.every((v: string) => v === 'get' || (rule.resourceNames?.length === 1 && v === 'patch')),
          ).toBe(true);
        }
      }
    }
    // The helm test hook, not selected by the operator's Service or PDB.
    const [testPod] = find(objs, 'Pod');
    expect(testPod!.metadata.annotations!['helm.sh/hook']).toBe('test');
    expect(testPod!.metadata.labels!['app.kubernetes.io/component']).toBe('test');
  });

  it('renders namespace scope: Roles in each watched namespace, --watch-namespaces, webhook limited to them', async () => {
    const objs = await render(['-f', join(CHART, 'ci/namespace-scope-values.yaml')]);
    expect(
      find(objs, 'Role', 'rc-ripplecache-manager')
        .map((r) => r.metadata.namespace)
        .sort(),
    ).toEqual(['payments', 'shop']);
    expect(find(objs, 'RoleBinding', 'rc-ripplecache-manager')).toHaveLength(2);
    // Cluster-wide: only the right to write the caBundle of its own webhook configuration.
    const clusterRoles = find(objs, 'ClusterRole');
    expect(clusterRoles.map((r) => r.metadata.name)).toEqual(['rc-ripplecache-webhook']);
    expect(clusterRoles[0]!.rules).toEqual([
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: ['rc-ripplecache-sidecar-injector'],
        verbs: ['get', 'patch'],
      },
    ]);
    expect(find(objs, 'Deployment')[0]!.spec.template.spec.containers[0].args).toContain(
      '--watch-namespaces=shop,payments',
    );
    const wh = find(objs, 'MutatingWebhookConfiguration')[0]!.webhooks[0];
    expect(wh.failurePolicy).toBe('Ignore');
    expect(wh.namespaceSelector.matchExpressions[1]).toEqual({
      key: 'kubernetes.io/metadata.name',
      operator: 'In',
      values: ['shop', 'payments'],
    });
    expect(find(objs, 'PodDisruptionBudget')).toHaveLength(0);
  });

  it('namespace scope without watchNamespaces: the webhook can reach the one watched namespace, the release namespace', async () => {
    const objs = await render(['--set', 'rbac.scope=namespace']);
    const wh = find(objs, 'MutatingWebhookConfiguration')[0]!.webhooks[0];
    // Before: NotIn [..., ripplecache-system] and In [ripplecache-system], which no namespace satisfies.
    expect(wh.namespaceSelector.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease'] },
      { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ripplecache-system'] },
    ]);
    expect(find(objs, 'Deployment')[0]!.spec.template.spec.containers[0].args).toContain(
      '--watch-namespaces=ripplecache-system',
    );
    // Watching every namespace (cluster scope), the release namespace stays excluded.
    const cluster = find(await render(), 'MutatingWebhookConfiguration')[0]!.webhooks[0];
    expect(cluster.namespaceSelector.matchExpressions[0].values).toContain('ripplecache-system');
  });

  it('renders cert-manager mode: Issuer, Certificate, mounted certificate, CA injection annotation, no self-managed Secret rights', async () => {
    const objs = await render(['-f', join(CHART, 'ci/cert-manager-values.yaml')]);
    const [cert] = find(objs, 'Certificate');
    expect(cert!.spec.secretName).toBe('rc-ripplecache-webhook-tls');
    expect(cert!.spec.dnsNames).toContain('rc-ripplecache-webhook.ripplecache-system.svc');
    expect(find(objs, 'Issuer')[0]!.spec).toEqual({ selfSigned: {} });
    expect(find(objs, 'MutatingWebhookConfiguration')[0]!.metadata.annotations).toEqual({
      'cert-manager.io/inject-ca-from': 'ripplecache-system/rc-ripplecache-webhook',
    });
    const dep = find(objs, 'Deployment')[0]!;
    expect(dep.spec.template.spec.containers[0].args).toContain('--webhook-cert-dir=/etc/ripplecache/webhook-certs');
    expect(dep.spec.template.spec.volumes[0].secret.secretName).toBe('rc-ripplecache-webhook-tls');
    expect(find(objs, 'Secret')).toHaveLength(0);
    expect(find(objs, 'ClusterRole', 'rc-ripplecache-webhook')).toHaveLength(0);
    const operatorRole = find(objs, 'Role', 'rc-ripplecache-operator')[0]!;
    expect(operatorRole.rules.some((r: { resources: string[] }) => r.resources.includes('secrets'))).toBe(false);
  });

  it("renders monitoring: ServiceMonitors, the sidecars' and bridges' PodMonitors, the alerts, and a Grafana dashboard ConfigMap with valid JSON", async () => {
    const objs = await render(['-f', join(CHART, 'ci/monitoring-values.yaml')]);
    expect(find(objs, 'ServiceMonitor').map((s) => s.metadata.name)).toEqual([
      'rc-ripplecache',
      'rc-ripplecache-redis',
    ]);
    // The redis_exporter series get the CacheCluster as `cachecluster`, like the sidecars' (the dashboard
    // variable and the alerts use it); the operator's keep the target's own labels (no honorLabels).
    const [operatorMonitor, redisMonitor] = find(objs, 'ServiceMonitor');
    expect(redisMonitor!.spec.endpoints[0].relabelings).toEqual([
      { sourceLabels: ['__meta_kubernetes_service_label_cache_ripplecache_io_cluster'], targetLabel: 'cachecluster' },
    ]);
    expect(operatorMonitor!.spec.endpoints[0].honorLabels).toBeUndefined();
    // The injected sidecars, by the label the webhook sets, on the port the webhook declares.
    const [podMonitor] = find(objs, 'PodMonitor');
    expect(podMonitor!.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(podMonitor!.metadata.name).toBe('rc-ripplecache-sidecars');
    expect(podMonitor!.metadata.namespace).toBe('ripplecache-system');
    expect(podMonitor!.metadata.labels!.release).toBe('kube-prometheus-stack');
    expect(podMonitor!.spec.selector).toEqual({ matchLabels: { [LABEL_SIDECAR]: SIDECAR_INJECTED } });
    expect(podMonitor!.spec.namespaceSelector).toEqual({ any: true });
    expect(podMonitor!.spec.podMetricsEndpoints).toEqual([
      { port: SIDECAR_METRICS_PORT_NAME, path: '/metrics', interval: '30s', scrapeTimeout: '10s' },
    ]);
    // The cross-cluster bridges: the labels and port the operator renders on their pods.
    const bridge = desiredBridgeDeployment(
      {
        apiVersion: 'cache.ripplecache.io/v1alpha1',
        kind: 'CacheCluster',
        metadata: { name: 'sessions', namespace: 'shop', uid: 'u1' },
        spec: { invalidation: { peers: [{ cacheCluster: { name: 'other' } }] } },
      },
      [{ name: 'shop/other', url: 'redis://other.shop.svc:6379', channel: 'ripplecache:invalidations' }],
      'img',
    );
    const bridgePodLabels = bridge.spec.template.metadata.labels;
    const bridgeMonitor = find(objs, 'PodMonitor', 'rc-ripplecache-bridges')[0]!;
    expect(bridgeMonitor.metadata.labels!.release).toBe('kube-prometheus-stack');
    expect(bridgeMonitor.spec.namespaceSelector).toEqual({ any: true });
    const selector = bridgeMonitor.spec.selector.matchLabels as Record<string, string>;
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(selector)) expect(bridgePodLabels[k], k).toBe(v);
    // … and not the Redis pods of the same CacheCluster.
    expect(selector[LABEL_COMPONENT]).toBe(COMPONENT_BRIDGE);
    const bridgePort = bridge.spec.template.spec.containers[0]!.ports![0]!;
    expect(bridgePort.containerPort).toBe(BRIDGE_PORT);
    expect(bridgeMonitor.spec.podMetricsEndpoints).toEqual([
      {
        port: bridgePort.name,
        path: '/metrics',
        interval: '30s',
        scrapeTimeout: '10s',
        relabelings: [
          { sourceLabels: ['__meta_kubernetes_pod_label_cache_ripplecache_io_cluster'], targetLabel: 'cachecluster' },
        ],
      },
    ]);
    expect(bridgePodLabels[LABEL_CLUSTER]).toBe('sessions');
    const rules = find(objs, 'PrometheusRule')[0]!.spec.groups.flatMap(
      (g: { rules: Array<{ alert: string; expr: string }> }) => g.rules,
    );
    const alerts = Object.fromEntries(rules.map((r: { alert: string; expr: string }) => [r.alert, r.expr]));
    expect(alerts.RippleCacheEvictionsClimbing).toContain('redis_evicted_keys_total');
    expect(alerts.RippleCacheMemoryNearMaxmemory).toContain('redis_memory_max_bytes');
    expect(alerts.RippleCacheInvalidationGaps).toContain('ripplecache_sidecar_invalidation_gaps_total');
    expect(alerts.RippleCacheWriteBackBacklogGrowing).toContain(
      'max by (namespace, cachecluster) (ripplecache_sidecar_writeback_pending)',
    );
    expect(alerts.RippleCacheWriteBackStale).toContain(
      'max by (namespace, cachecluster) (ripplecache_sidecar_writeback_oldest_pending_seconds)',
    );
    // The operator alerts select the job of the chart's ServiceMonitor: the metrics Service's name.
    const metricsService = find(objs, 'Service').find((s) =>
      s.spec.ports.some((p: { name: string }) => p.name === 'metrics'),
    );
    const op = `job="${metricsService!.metadata.name}", namespace="ripplecache-system"`;
    expect(metricsService!.metadata.name).toBe('rc-ripplecache-metrics');
    expect(alerts.RippleCacheConfigNotApplied).toContain(
      `ripplecache_operator_cachecluster_condition{${op}, type="ConfigApplied", status="False"}`,
    );
    expect(alerts.RippleCacheConfigNotApplied).toContain('"namespace", "$1", "cachecluster_namespace", "(.*)"');
    expect(alerts.RippleCacheOperatorDown).toContain(`absent(up{${op}})`);
    expect(alerts.RippleCacheOperatorNoLeader).toContain(`absent(ripplecache_operator_leader{${op}})`);
    expect(alerts.RippleCacheReconcileErrors).toContain(`ripplecache_operator_reconcile_total{${op}, result="error"}`);
    expect(alerts.RippleCachePeersUnreachable).toContain(
      `ripplecache_operator_cachecluster_condition{${op}, type="PeersReachable", status=~"False|Unknown"}`,
    );
    // test/promtool/ has the unit tests of every alert (make promtool-test).
    expect(Object.keys(alerts).sort()).toEqual([
      'RippleCacheConfigNotApplied',
      'RippleCacheEvictionsClimbing',
      'RippleCacheInvalidationGaps',
      'RippleCacheMemoryNearMaxmemory',
      'RippleCacheOperatorDown',
      'RippleCacheOperatorNoLeader',
      'RippleCachePeersUnreachable',
      'RippleCacheReconcileErrors',
      'RippleCacheWriteBackBacklogGrowing',
      'RippleCacheWriteBackStale',
    ]);
    const cm = find(objs, 'ConfigMap', 'rc-ripplecache-dashboard')[0]!;
    expect(cm.metadata.labels!.grafana_dashboard).toBe('1');
    const dashboard = JSON.parse(cm.data['ripplecache.json'] as string) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ name: string; definition?: string }> };
    };
    const exprs = dashboard.panels
      .flatMap((p) => p.targets ?? [])
      .map((t) => t.expr)
      .join('\n');
    for (const metric of [
      'ripplecache_sidecar_requests_total',
      'ripplecache_sidecar_request_duration_seconds_bucket',
      'redis_memory_used_bytes',
      'redis_evicted_keys_total',
      'ripplecache_sidecar_invalidation_gaps_total',
      'ripplecache_sidecar_writeback_pending',
      'ripplecache_sidecar_writeback_oldest_pending_seconds',
      'ripplecache_operator_kube_api_requests_total',
      'ripplecache_operator_kube_api_throttle_wait_seconds_bucket',
    ]) {
      expect(exprs).toContain(metric);
    }
    expect(dashboard.panels.map((p) => p.title)).toContain('Hit ratio per tier');
    // Same-named pods of different namespaces stay apart, and every sidecar and Redis query follows the
    // CacheCluster variable.
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'cachecluster']);
    expect(dashboard.templating.list[2]!.definition).toMatch(/, cachecluster\)$/);
    expect(exprs).not.toMatch(/by \(pod\)/);
    expect(exprs).toContain('by (namespace, pod)');
    for (const selector of exprs.match(/(ripplecache_sidecar_|redis_)\w+\{[^}]*\}/g) ?? []) {
      expect(selector).toContain('namespace=~"$namespace", cachecluster=~"$cachecluster"');
    }
    expect(exprs).toContain('cachecluster_namespace=~"$namespace", cachecluster=~"$cachecluster"');
  });

  it("renders the sidecars' and bridges' PodMonitors only when enabled, limited to the watched namespaces", async () => {
    expect(find(await render(), 'PodMonitor')).toHaveLength(0);
    const objs = await render([
      '-f',
      join(CHART, 'ci/namespace-scope-values.yaml'),
      '--set',
      'metrics.podMonitor.enabled=true',
      '--set',
      'metrics.podMonitor.interval=15s',
    ]);
    const podMonitors = find(objs, 'PodMonitor');
    expect(podMonitors.map((m) => m.metadata.name)).toEqual(['rc-ripplecache-sidecars', 'rc-ripplecache-bridges']);
    for (const podMonitor of podMonitors) {
      expect(podMonitor.spec.namespaceSelector).toEqual({ matchNames: ['shop', 'payments'] });
      expect(podMonitor.spec.podMetricsEndpoints[0].interval).toBe('15s');
    }
    // Without ServiceMonitors or rules: the PodMonitor stands alone.
    expect(find(objs, 'ServiceMonitor')).toHaveLength(0);
  });

  it('rejects unknown keys and bad values through values.schema.json', async () => {
    for (const [set, expected] of [
      ['replicaCont=3', /replicaCont/],
      ['webhook.certManager.enabeld=true', /enabeld/],
      ['metrics.serviceMonitor.extra=1', /extra/],
      ['metrics.podMonitor.enable=true', /enable/],
      ['metrics.podMonitor.interval=soon', /interval/],
      ['rbac.scope=everywhere', /scope/],
      ['webhook.failurePolicy=Sometimes', /failurePolicy/],
      // Image references the operator would refuse (it exits 2): refused at install, not in a crash loop.
      ['sidecar.image.tag=bad tag', /\/sidecar\/image\/tag/],
      ['image.repository=Bad Repo', /\/image\/repository/],
      ['exporterImage=bad image', /\/exporterImage/],
    ] as const) {
      const r = await helm(['template', 'rc', CHART, '--set', set]);
      expect(r.code, `--set ${set} should be rejected`).not.toBe(0);
      expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr).toMatch(expected);
    }
    const ok = await helm(['template', 'rc', CHART, '--set', 'crds.install=false']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).not.toContain('kind: CustomResourceDefinition');
  });

  it('renders the replicas-default MutatingAdmissionPolicy only where the API server serves it', async () => {
    const withApi = ['--api-versions', 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy'];
    const objs = await render(withApi);
    const policy = find(objs, 'MutatingAdmissionPolicy');
    const binding = find(objs, 'MutatingAdmissionPolicyBinding');
    expect([...policy, ...binding]).toEqual(replicasDefaultPolicy());
    expect(
      find(await render([...withApi, '--set', 'crds.replicasDefaultPolicy=false']), 'MutatingAdmissionPolicy'),
    ).toEqual([]);
    expect(find(await render([...withApi, '--set', 'crds.install=false']), 'MutatingAdmissionPolicy')).toEqual([]);
    // A default `helm template` knows only the API versions built into helm: whatever it renders, it renders both or none.
    const plain = await render();
    expect(find(plain, 'MutatingAdmissionPolicy').length).toBe(find(plain, 'MutatingAdmissionPolicyBinding').length);
  });

  it('passes the Lease timing to the operator, and refuses a renew deadline not shorter than the lease', async () => {
    const [dep] = find(await render(), 'Deployment');
    expect(dep!.spec.template.spec.containers[0].args).toEqual(
      expect.arrayContaining([
        '--lease-duration-seconds=15',
        '--renew-deadline-seconds=10',
        '--retry-period-seconds=2',
      ]),
    );
    for (const [set, expected] of [
      [
        'leaderElection.leaseDurationSeconds=8',
        /renewDeadlineSeconds \(10\) must be less than .*leaseDurationSeconds \(8\)/,
      ],
      [
        'leaderElection.renewDeadlineSeconds=15',
        /renewDeadlineSeconds \(15\) must be less than .*leaseDurationSeconds \(15\)/,
      ],
      [
        'leaderElection.retryPeriodSeconds=10',
        /retryPeriodSeconds \(10\) must be less than .*renewDeadlineSeconds \(10\)/,
      ],
    ] as const) {
      const r = await helm(['template', 'rc', CHART, '--set', set]);
      expect(r.code, `--set ${set} should be rejected`).not.toBe(0);
      expect(r.stderr).toMatch(expected);
    }
  });

  it('passes the workers and the Kubernetes API rate limit to the operator, and refuses values it would reject', async () => {
    const argsOf = async (args: string[] = []) =>
      (find(await render(args), 'Deployment')[0]!.spec.template.spec.containers[0].args as string[]).filter((a) =>
        /^--(workers|kube-api-qps|kube-api-burst)=/.test(a),
      );
    expect(await argsOf()).toEqual(['--workers=4', '--kube-api-qps=200', '--kube-api-burst=400']);
    // A QPS may be fractional, 0 turns the limit off, the burst goes up to the schema's maximum.
    expect(await argsOf(['--set-json', 'kubeApi={"qps":2.5,"burst":1000}', '--set', 'workers=16'])).toEqual([
      '--workers=16',
      '--kube-api-qps=2.5',
      '--kube-api-burst=1000',
    ]);
    expect(await argsOf(['--set-json', 'kubeApi={"qps":0,"burst":100000}'])).toEqual([
      '--workers=4',
      '--kube-api-qps=0',
      '--kube-api-burst=100000',
    ]);
    for (const [set, expected] of [
      ['kubeApi={"qps":-1}', /kubeApi\/qps/],
      ['kubeApi={"burst":0}', /kubeApi\/burst/],
      ['kubeApi={"burst":1.5}', /kubeApi\/burst/],
      ['kubeApi={"qsp":10}', /qsp/],
      ['workers=0', /workers/],
    ] as const) {
      const r = await helm(['template', 'rc', CHART, '--set-json', set]);
      expect(r.code, `--set-json ${set} should be rejected`).not.toBe(0);
      expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr).toMatch(expected);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('helm install into the test control plane', () => {
  const SYSTEM = 'ripplecache-system';
  const APP = 'shop';
  const SA = 'rc-ripplecache';
  let cp: ControlPlane;
  let saKubeconfig: string;
  let operator: OperatorProcess | undefined;
  let redis: RedisProcess | undefined;
  let sim: PodSimulator | undefined;
  let webhookPort: number;

  async function k(args: string[], input?: string): Promise<string> {
    const r = await cp.kubectl(args, input);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }
  const json = async (args: string[]) => JSON.parse(await k([...args, '-o', 'json'])) as Obj;
  const asOperator = (args: string[]) => cp.kubectl(['--kubeconfig', saKubeconfig, ...args]);

  beforeAll(async () => {
    cp = await startControlPlane();
    await k(['create', 'namespace', SYSTEM]);
    await k(['create', 'namespace', APP]);
    const install = await helm(['install', 'rc', CHART, '--namespace', SYSTEM, '--kubeconfig', cp.kubeconfigPath]);
    expect(install.code, install.stderr).toBe(0);
    await cp.waitForCrdsServed(['cacheclusters.cache.ripplecache.io']);
    saKubeconfig = await cp.makeKubeconfigForServiceAccount(SYSTEM, SA);
  });

  afterAll(async () => {
    sim?.stop();
    await operator?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await cp?.stop();
  });

  it('installed the CRD (kept on uninstall), the ServiceAccount, RBAC, Services, PDB and the webhook configuration', async () => {
    const crd = await json(['get', 'crd', 'cacheclusters.cache.ripplecache.io']);
    expect(crd.metadata.annotations!['helm.sh/resource-policy']).toBe('keep');
    expect(crd.metadata.annotations!['meta.helm.sh/release-name']).toBe('rc');
    await k(['get', 'serviceaccount', SA, '-n', SYSTEM]);
    await k(['get', 'deployment', 'rc-ripplecache', '-n', SYSTEM]);
    await k(['get', 'service', 'rc-ripplecache-metrics', '-n', SYSTEM]);
    await k(['get', 'service', 'rc-ripplecache-webhook', '-n', SYSTEM]);
    await k(['get', 'pdb', 'rc-ripplecache', '-n', SYSTEM]);
    await k(['get', 'clusterrole', 'rc-ripplecache-manager']);
    const mwc = await json(['get', 'mutatingwebhookconfiguration', 'rc-ripplecache-sidecar-injector']);
    expect(mwc.webhooks[0].clientConfig.caBundle).toBeUndefined();
  });

  it("runs the operator as the chart's ServiceAccount with the Deployment's flags: it reconciles a CacheCluster to Ready", async () => {
    const whoami = JSON.parse((await asOperator(['auth', 'whoami', '-o', 'json'])).stdout) as {
      status: { userInfo: { username: string } };
    };
    expect(whoami.status.userInfo.username).toBe(`system:serviceaccount:${SYSTEM}:${SA}`);

    // A password-protected redis-server plays the CacheCluster's only pod.
    const password = 'chart-test-password';
    redis = await startRedis({ password });
    await k(['create', 'secret', 'generic', 'sessions-auth', '-n', APP, `--from-literal=password=${password}`]);
    sim = new PodSimulator(cp.kubeconfigPath, APP, new Set(['sessions-0']));
    sim.start();

    ({ operator, webhookPort } = await startOperatorLikeDeployment(cp, {
      namespace: SYSTEM,
      deployment: 'rc-ripplecache',
      kubeconfigPath: saKubeconfig,
      podAddresses: { [`${APP}/sessions-0`]: `127.0.0.1:${redis.port}` },
    }));

    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        cacheCluster(
          'sessions',
          inNamespace(APP),
          withTopology('standalone'),
          withEviction({ policy: 'allkeys-lfu', maxMemory: '32Mi' }),
          withAuth({ name: 'sessions-auth', key: 'password' }),
          withFlush({ schedule: '0 3 * * *' }),
          withMetrics({ exporter: true }),
        ),
      ),
    );
    await waitForReady(cp, APP, 'sessions');
    for (const [kind, name] of [
      ['statefulset', 'sessions'],
      ['service', 'sessions'],
      ['service', 'sessions-headless'],
      ['configmap', 'sessions-config'],
      ['cronjob', 'sessions-flush'],
    ]) {
      const obj = await json(['get', kind!, name!, '-n', APP, '--show-managed-fields']);
      expect(
        obj.metadata.managedFields.map((f: { manager: string }) => f.manager),
        `${kind}/${name}`,
      ).toContain('ripplecache-operator');
    }
    // Standalone (one pod): no PodDisruptionBudget of its own.
    expect((await k(['get', 'pdb', '-n', APP, '-o', 'name'])).trim()).toBe('');
    // The live settings reached Redis, with the password the operator read from the Secret.
    const r = new Redis({ port: redis.port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      expect(await r.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lfu']);
      expect(await r.call('CONFIG', 'GET', 'maxmemory')).toEqual(['maxmemory', String(32 * 1024 * 1024)]);
    } finally {
      r.disconnect();
    }
    const events = await json([
      'get',
      'events',
      '-n',
      APP,
      '--field-selector',
      'involvedObject.name=sessions,involvedObject.kind=CacheCluster',
    ]);
    expect(events.items.length).toBeGreaterThan(0);
    // The password never shows in the operator's logs, the status, the events or the metrics.
    const status = await json(['get', 'cachecluster', 'sessions', '-n', APP]);
    const metricsText = await (await fetch(operator.metricsUrl)).text();
    for (const [where, text] of [
      ['log', operator.log()],
      ['status', JSON.stringify(status.status)],
      ['events', JSON.stringify(events)],
      ['metrics', metricsText],
    ] as const) {
      expect(text.length, where).toBeGreaterThan(0);
      expect(text, where).not.toContain(password);
    }
    const lease = await json(['get', 'lease', 'rc-ripplecache-leader', '-n', SYSTEM]);
    expect(lease.spec.holderIdentity).toBe(operator.identity);
    expect(await operator.metric('ripplecache_operator_leader')).toBe(1);
    // The standard Node.js metric names (no doubled ripplecache_operator_process_ prefix) and the build info.
    expect(metricsText).toMatch(/^process_cpu_seconds_total \d/m);
    expect(metricsText).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(metricsText).not.toContain('ripplecache_operator_process_');
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(metricsText).toContain(
      `ripplecache_operator_build_info{version="${version}",node_version="${process.versions.node}"} 1`,
    );
  });

  it("makes its own webhook certificate with the chart's RBAC: fills the Secret and writes the caBundle", async () => {
    let secret: Obj | undefined;
    await waitFor(
      'the webhook Secret to hold a certificate',
      async () => {
        secret = await json(['get', 'secret', 'rc-ripplecache-webhook-tls', '-n', SYSTEM]);
        return Boolean(secret.data?.['tls.crt']);
      },
      30_000,
      300,
    );
    const data = secret!.data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const mwc = await json(['get', 'mutatingwebhookconfiguration', 'rc-ripplecache-sidecar-injector']);
    expect(mwc.webhooks[0].clientConfig.caBundle).toBe(data['ca.crt']);
    const ca = Buffer.from(data['ca.crt']!, 'base64').toString('utf8');
    // The operator serves it, for the Service's DNS name, trusted through the CA alone.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: webhookPort,
          path: '/healthz',
          ca,
          servername: `rc-ripplecache-webhook.${SYSTEM}.svc`,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });

  it('is refused what the chart does not grant', async () => {
    const canI = async (...args: string[]) => (await asOperator(['auth', 'can-i', ...args])).stdout.trim();
    // Granted.
    expect(await canI('patch', 'statefulsets', '-n', APP)).toBe('yes');
    expect(await canI('get', 'secrets', '-n', APP)).toBe('yes');
    expect(await canI('patch', 'secret/rc-ripplecache-webhook-tls', '-n', SYSTEM)).toBe('yes');
    expect(await canI('patch', 'mutatingwebhookconfigurations/rc-ripplecache-sidecar-injector')).toBe('yes');
    // Failover: the pods' readiness and their role label.
    expect(await canI('list', 'pods', '-n', APP)).toBe('yes');
    expect(await canI('patch', 'pods', '-n', APP)).toBe('yes');
    // Rolling updates of replication (OnDelete): the operator restarts Redis pods one at a time.
    expect(await canI('delete', 'pods', '-n', APP)).toBe('yes');
    // Not granted.
    for (const args of [
      ['delete', 'secrets', '-n', APP],
      ['create', 'secrets', '-n', SYSTEM],
      ['patch', 'secret/sessions-auth', '-n', APP],
      ['list', 'secrets', '-n', APP],
      ['delete', 'nodes'],
      ['create', 'pods', '-n', APP],
      ['create', 'pods/exec', '-n', APP],
      ['delete', 'cacheclusters', '-n', APP],
      ['patch', 'mutatingwebhookconfigurations/someone-elses'],
      ['create', 'clusterrolebindings'],
      ['update', 'lease/another-lease', '-n', SYSTEM],
    ]) {
      expect(await canI(...args), `can-i ${args.join(' ')}`).toBe('no');
    }
    // And a real attempt fails with Forbidden.
    const del = await asOperator(['delete', 'secret', 'sessions-auth', '-n', APP]);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/Forbidden|forbidden/);
    expect((await cp.kubectl(['get', 'secret', 'sessions-auth', '-n', APP])).code).toBe(0);
    // The operator itself never hit a refusal: the chart grants everything it does.
    expect(operator!.log()).not.toMatch(/forbidden/i);
  });

  it('keeps the self-managed certificate across helm upgrade, and the CRD across helm uninstall', async () => {
    const before = await json(['get', 'secret', 'rc-ripplecache-webhook-tls', '-n', SYSTEM]);
    const upgrade = await helm([
      'upgrade',
      'rc',
      CHART,
      '--namespace',
      SYSTEM,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--set',
      'logLevel=debug',
    ]);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const after = await json(['get', 'secret', 'rc-ripplecache-webhook-tls', '-n', SYSTEM]);
    expect(after.data).toEqual(before.data);
    const mwc = await json(['get', 'mutatingwebhookconfiguration', 'rc-ripplecache-sidecar-injector']);
    expect(mwc.webhooks[0].clientConfig.caBundle).toBe((before.data as Record<string, string>)['ca.crt']);
    expect(
      (await json(['get', 'deployment', 'rc-ripplecache', '-n', SYSTEM])).spec.template.spec.containers[0].args,
    ).toContain('--log-level=debug');

    await operator?.stop();
    operator = undefined;
    const uninstall = await helm(['uninstall', 'rc', '--namespace', SYSTEM, '--kubeconfig', cp.kubeconfigPath]);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    expect((await cp.kubectl(['get', 'deployment', 'rc-ripplecache', '-n', SYSTEM])).code).not.toBe(0);
    await k(['get', 'crd', 'cacheclusters.cache.ripplecache.io']);
    await k(['get', 'cachecluster', 'sessions', '-n', APP]);
  });
});

describe('helm install with rbac.scope=namespace', () => {
  const SYSTEM = 'rcns-system';
  const WATCHED = 'team-a';
  const OTHER = 'team-b';
  let cp: ControlPlane;
  let saKubeconfig: string;
  let operator: OperatorProcess | undefined;
  let redis: RedisProcess | undefined;
  let sim: PodSimulator | undefined;

  async function k(args: string[], input?: string): Promise<string> {
    const r = await cp.kubectl(args, input);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    for (const ns of [SYSTEM, WATCHED, OTHER]) await k(['create', 'namespace', ns]);
    const install = await helm([
      'install',
      'rcns',
      CHART,
      '--namespace',
      SYSTEM,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--set',
      'rbac.scope=namespace',
      '--set',
      `watchNamespaces={${WATCHED}}`,
      '--set',
      'replicaCount=1',
    ]);
    expect(install.code, install.stderr).toBe(0);
    await cp.waitForCrdsServed(['cacheclusters.cache.ripplecache.io']);
    saKubeconfig = await cp.makeKubeconfigForServiceAccount(SYSTEM, 'rcns-ripplecache');
  });

  afterAll(async () => {
    sim?.stop();
    await operator?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await cp?.stop();
  });

  it('reconciles a CacheCluster in the watched namespace with Roles only, and may not read elsewhere', async () => {
    redis = await startRedis();
    sim = new PodSimulator(cp.kubeconfigPath, WATCHED, new Set(['orders-0']));
    sim.start();
    ({ operator } = await startOperatorLikeDeployment(cp, {
      namespace: SYSTEM,
      deployment: 'rcns-ripplecache',
      kubeconfigPath: saKubeconfig,
      podAddresses: { [`${WATCHED}/orders-0`]: `127.0.0.1:${redis.port}` },
    }));
    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        cacheCluster('orders', inNamespace(WATCHED), withEviction({ policy: 'volatile-ttl', maxMemory: '16Mi' })),
      ),
    );
    await waitForReady(cp, WATCHED, 'orders');
    await k(['get', 'statefulset', 'orders', '-n', WATCHED]);

    const canI = async (...args: string[]) =>
      (await cp.kubectl(['--kubeconfig', saKubeconfig, 'auth', 'can-i', ...args])).stdout.trim();
    expect(await canI('patch', 'statefulsets', '-n', WATCHED)).toBe('yes');
    expect(await canI('get', 'cacheclusters', '-n', OTHER)).toBe('no');
    expect(await canI('patch', 'statefulsets', '-n', OTHER)).toBe('no');
    expect(await canI('get', 'secrets', '-n', OTHER)).toBe('no');
    expect(await canI('list', 'cacheclusters', '--all-namespaces')).toBe('no');
    // Cluster-wide it has exactly one right: its own webhook configuration's caBundle.
    const review = await cp.kubectl(
      ['--kubeconfig', saKubeconfig, 'create', '--validate=false', '-o', 'json', '-f', '-'],
      JSON.stringify({
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectRulesReview',
        spec: { namespace: OTHER },
      }),
    );
    expect(review.code, review.stderr).toBe(0);
    const rules = (
      JSON.parse(review.stdout) as {
        status: { resourceRules: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[] }> };
      }
    ).status;
    const granted = rules.resourceRules.filter((r) => !(r.resources ?? []).some((x) => x.startsWith('selfsubject')));
    expect(granted).toEqual([
      {
        verbs: ['get', 'patch'],
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: ['rcns-ripplecache-sidecar-injector'],
      },
    ]);
    expect(operator.log()).not.toMatch(/forbidden/i);
  });
});
