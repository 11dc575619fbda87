/**
 * The sidecar-injection webhook served by the real operator process and called by the real API server.
 * The MutatingWebhookConfiguration is the chart's own (rendered with `helm template`: its rules, failure
 * policy, namespace selector and annotation matchCondition), pointed by URL at the operator on 127.0.0.1.
 *
 * - certificate from a directory (as cert-manager mounts it), issued by the control plane's CA;
 * - self-managed certificate: the operator makes a CA and serving certificate, stores them in a Secret and
 *   writes the caBundle itself.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { freePort, waitFor } from '../harness/ports.js';
import { kubeBinDir, repoRoot, trackTempDir } from '../harness/tools.js';

const NS = 'web';
const MWC = 'ripplecache-test-sidecar-injector';
const SIDECAR_IMAGE = 'registry.example.com/ripplecache/sidecar:test';
type Json = Record<string, any>;

let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let seq = 0;

async function k(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}
const getJson = async (args: string[]): Promise<Json> => JSON.parse(await k([...args, '-o', 'json'])) as Json;

/** The chart's MutatingWebhookConfiguration, pointed at `url` (the API server reaches no Service here). */
async function chartWebhookConfiguration(url: string, caBundle?: string): Promise<Json> {
  const helm = join(await kubeBinDir(), 'helm');
  const home = mkdtempSync(join(tmpdir(), 'ripplecache-helm-'));
  trackTempDir(home);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      helm,
      [
        'template',
        'rc',
        join(repoRoot, 'charts/ripplecache'),
        '--namespace',
        'ripplecache-system',
        '--show-only',
        'templates/webhook.yaml',
      ],
      {
        env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
      },
      (err, out, stderr) => (err ? reject(new Error(`helm template: ${stderr}`)) : resolve(out)),
    );
  });
  const mwc = parseAllDocuments(stdout)
    .map((d) => d.toJSON() as Json)
    .find((o) => o?.kind === 'MutatingWebhookConfiguration')!;
  mwc.metadata = { name: MWC };
  for (const w of mwc.webhooks as Json[]) w.clientConfig = { url, ...(caBundle ? { caBundle } : {}) };
  return mwc;
}

function podManifest(opts: { annotation?: string; name?: string; containers?: Json[] } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: opts.name ?? `app-${++seq}`,
      namespace: NS,
      ...(opts.annotation !== undefined ? { annotations: { 'cache.ripplecache.io/inject': opts.annotation } } : {}),
    },
    spec: { containers: opts.containers ?? [{ name: 'app', image: 'registry.example.com/shop/web:1.0' }] },
  });
}

/**
 * Creates a pod; resolves with the stored object (and kubectl's stderr, where the API server's warnings
 * appear), or with kubectl's error output.
 */
async function createPod(manifest: string): Promise<{ pod?: Json; error?: string; stderr: string }> {
  const r = await cp.kubectl(['create', '-o', 'json', '-f', '-'], manifest);
  return r.code === 0 ? { pod: JSON.parse(r.stdout) as Json, stderr: r.stderr } : { error: r.stderr, stderr: r.stderr };
}

const containerNames = (pod: Json) => (pod.spec.containers as Json[]).map((c) => c.name as string);
const initContainerNames = (pod: Json) => ((pod.spec.initContainers ?? []) as Json[]).map((c) => c.name as string);
/** The injected native sidecar: an init container that the kubelet keeps running (restartPolicy Always). */
const nativeSidecar = (pod: Json): Json | undefined =>
  ((pod.spec.initContainers ?? []) as Json[]).find(
    (c) => c.name === 'ripplecache-sidecar' && c.restartPolicy === 'Always',
  );

/** Waits until the API server sends annotated pods to the webhook (configurations reach it asynchronously). */
async function waitUntilInjecting(): Promise<void> {
  await waitFor(
    'the API server to call the webhook',
    async () => {
      const name = `probe-${++seq}`;
      const { pod } = await createPod(podManifest({ annotation: 'sessions', name }));
      if (pod) await cp.kubectl(['delete', 'pod', name, '-n', NS, '--wait=false']);
      return Boolean(pod && nativeSidecar(pod));
    },
    30_000,
    500,
  );
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  await k(['create', 'namespace', NS]);
  await waitFor(
    `ServiceAccount ${NS}/default`,
    async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', NS])).code === 0,
    30_000,
    200,
  );
  await k(['create', 'secret', 'generic', 'sessions-auth', '-n', NS, '--from-literal=password=s3cret']);
  await k(
    ['apply', '-f', '-'],
    `
apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: sessions, namespace: ${NS} }
spec:
  topology: replication
  replicas: 1
  eviction: { policy: allkeys-lru, maxMemory: 64Mi }
  auth: { secretRef: { name: sessions-auth, key: password } }
  sidecar:
    l1: { policy: lfu, maxEntries: 5000, maxBytes: 32Mi }
`,
  );
});

afterAll(async () => {
  await operator?.stop().catch(() => undefined);
  await cp?.stop();
});

describe('webhook with a certificate directory (as cert-manager mounts it)', () => {
  let port: number;
  let ca: string;

  beforeAll(async () => {
    port = await freePort();
    const tls = await cp.issueCertificate({
      commonName: 'ripplecache-webhook',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    ca = tls.ca;
    const dir = mkdtempSync(join(tmpdir(), 'ripplecache-webhook-certs-'));
    trackTempDir(dir);
    writeFileSync(join(dir, 'tls.crt'), tls.cert);
    writeFileSync(join(dir, 'tls.key'), tls.key, { mode: 0o600 });
    operator = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'webhook-certdir',
      extraArgs: ['--webhook-listen', `127.0.0.1:${port}`, '--webhook-cert-dir', dir, '--sidecar-image', SIDECAR_IMAGE],
    });
    await k(
      ['apply', '-f', '-'],
      JSON.stringify(
        await chartWebhookConfiguration(`https://127.0.0.1:${port}/inject-sidecar`, Buffer.from(ca).toString('base64')),
      ),
    );
    await waitUntilInjecting();
  });

  it('injects the sidecar into an annotated pod: native sidecar, config volume, password from the Secret', async () => {
    const { pod, error } = await createPod(podManifest({ annotation: 'sessions', name: 'web-1' }));
    expect(error).toBeUndefined();
    const stored = await getJson(['get', 'pod', 'web-1', '-n', NS]);
    expect(stored.metadata.uid).toBe(pod!.metadata.uid);
    // What the API server stored: the app alone in containers, the sidecar as a native sidecar.
    expect(containerNames(stored)).toEqual(['app']);
    expect(initContainerNames(stored)).toEqual(['ripplecache-sidecar']);
    const sidecar = (stored.spec.initContainers as Json[])[0]!;
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.startupProbe).toMatchObject({
      httpGet: { path: '/healthz', port: 'rc-metrics', scheme: 'HTTP' },
      periodSeconds: 1,
      failureThreshold: 60,
    });
    expect(sidecar.image).toBe(SIDECAR_IMAGE);
    expect(sidecar.env).toEqual([
      // The label `cachecluster` of the sidecar's metrics.
      { name: 'RIPPLECACHE_CACHE_CLUSTER', value: 'sessions' },
      // Where it listens: loopback and Unix sockets on the shared emptyDir (the app reaches both).
      { name: 'RIPPLECACHE_LISTEN', value: '127.0.0.1:7070,unix:/var/run/ripplecache/http.sock' },
      { name: 'RIPPLECACHE_LISTEN_RESP', value: '127.0.0.1:7379,unix:/var/run/ripplecache/resp.sock' },
      { name: 'RIPPLECACHE_SOCKET_MODE', value: '0666' },
      { name: 'RIPPLECACHE_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'sessions-auth', key: 'password' } } },
    ]);
    expect(sidecar.volumeMounts).toContainEqual({ name: 'ripplecache-sockets', mountPath: '/var/run/ripplecache' });
    const app = (stored.spec.containers as Json[])[0]!;
    expect(app.volumeMounts).toContainEqual({
      name: 'ripplecache-sockets',
      mountPath: '/var/run/ripplecache',
      readOnly: true,
    });
    expect(app.env).toEqual(
      expect.arrayContaining([
        { name: 'RIPPLECACHE_HTTP_SOCKET', value: '/var/run/ripplecache/http.sock' },
        { name: 'RIPPLECACHE_RESP_SOCKET', value: '/var/run/ripplecache/resp.sock' },
        { name: 'RIPPLECACHE_RESP_ADDR', value: '127.0.0.1:7379' },
      ]),
    );
    expect((stored.spec.volumes as Json[]).find((v) => v.name === 'ripplecache-sockets')).toEqual({
      name: 'ripplecache-sockets',
      emptyDir: { medium: 'Memory', sizeLimit: '1Mi' },
    });
    expect(sidecar.volumeMounts).toContainEqual({
      name: 'ripplecache-config',
      mountPath: '/etc/ripplecache',
      readOnly: true,
    });
    expect(sidecar.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '128Mi' } });
    expect(sidecar.lifecycle).toBeUndefined();
    expect(sidecar.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    expect(sidecar.args).toEqual(['--config', '/etc/ripplecache/sidecar.yaml', '--metrics-listen=[::]:7071']);
    expect(sidecar.ports).toEqual([{ name: 'rc-metrics', containerPort: 7071, protocol: 'TCP' }]);
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'rc-metrics', scheme: 'HTTP' });
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'rc-metrics', scheme: 'HTTP' });
    expect(sidecar.readinessProbe.exec).toBeUndefined();
    // The pod had no labels: the label map was added.
    expect(stored.metadata.labels).toEqual({ 'cache.ripplecache.io/sidecar': 'injected' });
    const volume = (stored.spec.volumes as Json[]).find((v) => v.name === 'ripplecache-config');
    expect(volume).toEqual({
      name: 'ripplecache-config',
      configMap: { name: 'sessions-config', items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }], defaultMode: 420 },
    });
    // The ServiceAccount token volume the API server adds is still there: the patch appended, not replaced.
    expect((stored.spec.volumes as Json[]).length).toBeGreaterThan(1);
    expect(
      await operator!.metric('ripplecache_operator_webhook_admission_total', { outcome: 'injected' }),
    ).toBeGreaterThan(0);
  });

  it("rejects a pod that declares the sidecar's metrics port 7071", async () => {
    const { pod, error } = await createPod(
      podManifest({
        annotation: 'sessions',
        name: 'web-7071',
        containers: [
          {
            name: 'app',
            image: 'registry.example.com/shop/web:1.0',
            ports: [{ name: 'metrics', containerPort: 7071 }],
          },
        ],
      }),
    );
    expect(pod).toBeUndefined();
    expect(error).toContain('container "app" declares port 7071, which the ripplecache sidecar listens on');
  });

  it('rejects a pod naming a missing CacheCluster, with a message saying what to do', async () => {
    const { pod, error } = await createPod(podManifest({ annotation: 'no-such-cache', name: 'web-missing' }));
    expect(pod).toBeUndefined();
    expect(error).toContain('admission webhook "sidecar-injector.cache.ripplecache.io" denied the request');
    expect(error).toContain('CacheCluster "no-such-cache" not found in namespace "web"');
    expect(error).toContain('Create the CacheCluster first');
    expect((await cp.kubectl(['get', 'pod', 'web-missing', '-n', NS])).code).not.toBe(0);
  });

  it('does not inject twice: a pod that already has the sidecar keeps exactly one', async () => {
    const injected = await getJson(['get', 'pod', 'web-1', '-n', NS]);
    // As stored, minus the ServiceAccount token mount the API server adds again.
    const withoutToken = (cs: Json[]) =>
      cs.map((c) => ({
        ...c,
        volumeMounts: (c.volumeMounts as Json[] | undefined)?.filter(
          (m) => !String(m.name).startsWith('kube-api-access'),
        ),
      }));
    const again = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1-copy', namespace: NS, annotations: injected.metadata.annotations },
      spec: {
        initContainers: withoutToken(injected.spec.initContainers as Json[]),
        containers: withoutToken(injected.spec.containers as Json[]),
        volumes: (injected.spec.volumes as Json[]).filter((v) => String(v.name).startsWith('ripplecache-')),
      },
    };
    const before = await operator!.metric('ripplecache_operator_webhook_admission_total', {
      outcome: 'already-injected',
    });
    const { pod, error } = await createPod(JSON.stringify(again));
    expect(error).toBeUndefined();
    expect(containerNames(pod!)).toEqual(['app']);
    expect(initContainerNames(pod!)).toEqual(['ripplecache-sidecar']);
    expect((pod!.spec.volumes as Json[]).filter((v) => v.name === 'ripplecache-config')).toHaveLength(1);

    // A pod that has it as a plain container (injected by an older operator, or by hand) is left alone.
    const plain = {
      ...again,
      metadata: { ...again.metadata, name: 'web-1-plain' },
      spec: {
        ...again.spec,
        initContainers: undefined,
        containers: [...again.spec.containers, ...again.spec.initContainers],
      },
    };
    const old = await createPod(JSON.stringify(plain));
    expect(old.error).toBeUndefined();
    expect(containerNames(old.pod!)).toEqual(['app', 'ripplecache-sidecar']);
    expect(initContainerNames(old.pod!)).toEqual([]);
    expect(
      await operator!.metric('ripplecache_operator_webhook_admission_total', { outcome: 'already-injected' }),
    ).toBe(before + 2);
  });

  it('never sees pods without the annotation (the matchCondition filters them in the API server)', async () => {
    const before = await operator!.metric('ripplecache_operator_webhook_admission_total');
    const { pod } = await createPod(podManifest({ name: 'plain' }));
    expect(containerNames(pod!)).toEqual(['app']);
    expect(await operator!.metric('ripplecache_operator_webhook_admission_total')).toBe(before);
  });

  it('injects into pods the ReplicaSet controller creates from an annotated Deployment', async () => {
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'shop', namespace: NS },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'shop' } },
          template: {
            metadata: { labels: { app: 'shop' }, annotations: { 'cache.ripplecache.io/inject': 'sessions' } },
            spec: { containers: [{ name: 'shop', image: 'registry.example.com/shop/web:1.0' }] },
          },
        },
      }),
    );
    await waitFor(
      'two shop pods',
      async () => (await getJson(['get', 'pods', '-n', NS, '-l', 'app=shop'])).items.length === 2,
      30_000,
      300,
    );
    const pods = (await getJson(['get', 'pods', '-n', NS, '-l', 'app=shop'])).items as Json[];
    for (const p of pods) {
      expect(containerNames(p)).toEqual(['shop']);
      expect(nativeSidecar(p)).toBeDefined();
    }
    // The template's labels are kept, the sidecar label added: what the chart's PodMonitor selects on.
    for (const p of pods)
      expect(p.metadata.labels).toMatchObject({ app: 'shop', 'cache.ripplecache.io/sidecar': 'injected' });
    const selected = (await getJson(['get', 'pods', '-n', NS, '-l', 'cache.ripplecache.io/sidecar=injected,app=shop']))
      .items as Json[];
    expect(selected).toHaveLength(2);
  });

  it("injects into a Job's pods as a native sidecar (Job completion waits for `containers` only)", async () => {
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'report', namespace: NS },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { labels: { app: 'report' }, annotations: { 'cache.ripplecache.io/inject': 'sessions' } },
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'report', image: 'registry.example.com/shop/report:1.0' }],
            },
          },
        },
      }),
    );
    await waitFor(
      'the Job controller to create its pod',
      async () => (await getJson(['get', 'pods', '-n', NS, '-l', 'app=report'])).items.length === 1,
      30_000,
      300,
    );
    const [p] = (await getJson(['get', 'pods', '-n', NS, '-l', 'app=report'])).items as Json[];
    // The kubelet waits for the Job's completion on `containers` only; a restartable init container is
    // stopped once they exited.
    expect(containerNames(p!)).toEqual(['report']);
    expect(initContainerNames(p!)).toEqual(['ripplecache-sidecar']);
    expect(nativeSidecar(p!)).toBeDefined();
  });

  it('injects into a restricted-Pod-Security namespace: the pod with its sidecar is admitted without warnings', async () => {
    const ns = 'web-restricted';
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
          },
        },
      }),
    );
    await waitFor(
      `ServiceAccount ${ns}/default`,
      async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', ns])).code === 0,
      30_000,
      200,
    );
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'cache.ripplecache.io/v1alpha1',
        kind: 'CacheCluster',
        metadata: { name: 'sessions', namespace: ns },
        spec: { eviction: { maxMemory: '64Mi' } },
      }),
    );
    // An app that meets the profile itself; PodSecurity checks the pod after the webhook mutated it.
    const app = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-r', namespace: ns, annotations: { 'cache.ripplecache.io/inject': 'sessions' } },
      spec: {
        securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'app',
            image: 'registry.example.com/shop/web:1.0',
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    const { pod, error, stderr } = await createPod(JSON.stringify(app));
    expect(error).toBeUndefined();
    expect(stderr).not.toMatch(/warning/i);
    expect(nativeSidecar(pod!)).toBeDefined();
    expect(containerNames(pod!)).toEqual(['app']);
  });

  it('with failurePolicy Fail, rejects annotated pods while the webhook is down, and lets other pods through', async () => {
    await operator!.stop();
    operator = undefined;
    const annotated = await createPod(podManifest({ annotation: 'sessions' }));
    expect(annotated.error).toMatch(/failed calling webhook "sidecar-injector\.cache\.ripplecache\.io"/);
    const plain = await createPod(podManifest());
    expect(plain.error).toBeUndefined();
  });
});

describe('webhook with a self-managed certificate', () => {
  it('makes a CA and certificate, writes the caBundle into the configuration, and injects', async () => {
    await k(['delete', 'mutatingwebhookconfiguration', MWC]);
    const port = await freePort();
    // No caBundle: the operator writes it.
    await k(
      ['apply', '-f', '-'],
      JSON.stringify(await chartWebhookConfiguration(`https://127.0.0.1:${port}/inject-sidecar`)),
    );
    operator = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'webhook-self-managed',
      extraArgs: [
        '--webhook-listen',
        `127.0.0.1:${port}`,
        '--webhook-cert-hosts',
        '127.0.0.1',
        '--webhook-secret',
        `${NS}/ripplecache-webhook-tls`,
        '--webhook-configuration',
        MWC,
      ],
    });
    const secret = await getJson(['get', 'secret', 'ripplecache-webhook-tls', '-n', NS]);
    expect(Object.keys(secret.data as Json).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const mwc = await getJson(['get', 'mutatingwebhookconfiguration', MWC]);
    expect(mwc.webhooks[0].clientConfig.caBundle).toBe(secret.data['ca.crt']);
    await waitUntilInjecting();
    const { pod } = await createPod(podManifest({ annotation: 'sessions' }));
    expect(containerNames(pod!)).toEqual(['app']);
    expect(nativeSidecar(pod!)?.image).toBe('ghcr.io/ripplecache/sidecar:0.1.0');

    // A restarted operator reuses the stored certificate rather than making a new one.
    await operator.stop();
    operator = await startOperator({
      kubeconfigPath: cp.kubeconfigPath,
      identity: 'webhook-self-managed-2',
      extraArgs: [
        '--webhook-listen',
        `127.0.0.1:${port}`,
        '--webhook-cert-hosts',
        '127.0.0.1',
        '--webhook-secret',
        `${NS}/ripplecache-webhook-tls`,
        '--webhook-configuration',
        MWC,
      ],
    });
    expect((await getJson(['get', 'secret', 'ripplecache-webhook-tls', '-n', NS])).data).toEqual(secret.data);
    const again = await createPod(podManifest({ annotation: 'sessions' }));
    expect(containerNames(again.pod!)).toEqual(['app']);
    expect(nativeSidecar(again.pod!)).toBeDefined();
  });
});
