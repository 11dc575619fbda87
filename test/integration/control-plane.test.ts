import { createServer, type Server } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { freePort, waitFor } from '../harness/ports.js';

describe('control plane harness', () => {
  let cp: ControlPlane;
  const ns = 'harness-test';

  beforeAll(async () => {
    const t0 = Date.now();
    cp = await startControlPlane();
    process.stderr.write(`control plane started in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    expect((await cp.kubectl(['create', 'namespace', ns])).code).toBe(0);
  });
  afterAll(async () => {
    await cp?.stop();
  });

  /** kubectl that must succeed; returns stdout. */
  async function k(args: string[], input?: string): Promise<string> {
    const r = await cp.kubectl(args, input);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }
  const json = async <T>(args: string[]): Promise<T> => JSON.parse(await k([...args, '-o', 'json'])) as T;

  it('serves the real v1.36.3 API server', async () => {
    const version = JSON.parse(await k(['get', '--raw', '/version'])) as {
      gitVersion: string;
      major: string;
      minor: string;
    };
    expect(version.gitVersion).toBe('v1.36.3');
    expect(version).toMatchObject({ major: '1', minor: '36' });
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('runs the garbage collector: deleting an owner removes its dependents', async () => {
    await k(['create', 'configmap', 'owner', '-n', ns, '--from-literal=a=1']);
    const uid = await k(['get', 'configmap', 'owner', '-n', ns, '-o', 'jsonpath={.metadata.uid}']);
    await k(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'dependent',
          namespace: ns,
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid }],
        },
        data: { b: '2' },
      }),
    );
    await k(['delete', 'configmap', 'owner', '-n', ns]);
    await waitFor(
      'the garbage collector to delete the dependent ConfigMap',
      async () => {
        const r = await cp.kubectl(['get', 'configmap', 'dependent', '-n', ns]);
        return r.code !== 0 && r.stderr.includes('NotFound');
      },
      60_000,
      250,
    );
  });

  it('runs the StatefulSet controller: revision, observedGeneration and a (never scheduled) pod', async () => {
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'web', namespace: ns },
        spec: {
          replicas: 1,
          serviceName: 'web',
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'redis', image: 'redis:7.2-alpine' }] },
          },
        },
      }),
    );
    await waitFor(
      'StatefulSet status.observedGeneration',
      async () => {
        const sts = await json<{ metadata: { generation: number }; status?: { observedGeneration?: number } }>([
          'get',
          'statefulset',
          'web',
          '-n',
          ns,
        ]);
        return sts.status?.observedGeneration === sts.metadata.generation;
      },
      60_000,
      250,
    );
    const revisions = await json<{ items: { metadata: { ownerReferences?: { kind: string; name: string }[] } }[] }>([
      'get',
      'controllerrevisions',
      '-n',
      ns,
    ]);
    expect(
      revisions.items.some((r) =>
        r.metadata.ownerReferences?.some((o) => o.kind === 'StatefulSet' && o.name === 'web'),
      ),
    ).toBe(true);
    // The pod is created (the ServiceAccount admission plugin found `default`) but no scheduler/kubelet runs it.
    await waitFor(
      'pod web-0',
      async () => (await cp.kubectl(['get', 'pod', 'web-0', '-n', ns])).code === 0,
      30_000,
      250,
    );
    const pod = await json<{ spec: { nodeName?: string; serviceAccountName: string }; status: { phase: string } }>([
      'get',
      'pod',
      'web-0',
      '-n',
      ns,
    ]);
    expect(pod.status.phase).toBe('Pending');
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.spec.serviceAccountName).toBe('default');
  });

  it('applies CRDs and waits until they are Established', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ripplecache-crds-'));
    try {
      await writeFile(
        join(dir, 'widgets.yaml'),
        JSON.stringify({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: 'widgets.test.ripplecache.io' },
          spec: {
            group: 'test.ripplecache.io',
            scope: 'Namespaced',
            names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
            versions: [
              {
                name: 'v1',
                served: true,
                storage: true,
                schema: {
                  openAPIV3Schema: {
                    type: 'object',
                    properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } } },
                  },
                },
              },
            ],
          },
        }),
      );
      await cp.applyCrds(dir);
      await cp.applyCrds(dir); // idempotent
      await k(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'test.ripplecache.io/v1',
          kind: 'Widget',
          metadata: { name: 'w', namespace: ns },
          spec: { size: 2 },
        }),
      );
      const bad = await cp.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'test.ripplecache.io/v1',
          kind: 'Widget',
          metadata: { name: 'bad', namespace: ns },
          spec: { size: 0 },
        }),
      );
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('spec.size');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes a token kubeconfig for a ServiceAccount, subject to RBAC', async () => {
    const kc = await cp.makeKubeconfigForServiceAccount(ns, 'reader');
    const whoami = JSON.parse((await cp.kubectl(['--kubeconfig', kc, 'auth', 'whoami', '-o', 'json'])).stdout) as {
      status: { userInfo: { username: string } };
    };
    expect(whoami.status.userInfo.username).toBe(`system:serviceaccount:${ns}:reader`);
    const denied = await cp.kubectl(['--kubeconfig', kc, 'get', 'configmaps', '-n', ns]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('forbidden');
    await k(['create', 'rolebinding', 'reader-view', '-n', ns, '--clusterrole=view', `--serviceaccount=${ns}:reader`]);
    await waitFor(
      'RBAC to allow the reader',
      async () => (await cp.kubectl(['--kubeconfig', kc, 'get', 'configmaps', '-n', ns])).code === 0,
      10_000,
      200,
    );
  });

  it('calls a mutating webhook registered by url on 127.0.0.1', async () => {
    const port = await freePort();
    const tls = await cp.issueCertificate({ commonName: 'webhook', usage: 'server', ipAddresses: ['127.0.0.1'] });
    let calls = 0;
    const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      let body = '';
      req
        .setEncoding('utf8')
        .on('data', (d: string) => {
          body += d;
        })
        .on('end', () => {
          calls++;
          const review = JSON.parse(body) as { request: { uid: string } };
          const patch = [{ op: 'add', path: '/metadata/labels', value: { mutated: 'yes' } }];
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: {
                uid: review.request.uid,
                allowed: true,
                patchType: 'JSONPatch',
                patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              },
            }),
          );
        });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      await k(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name: 'harness-test' },
          webhooks: [
            {
              name: 'label.test.ripplecache.io',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              clientConfig: {
                url: `https://127.0.0.1:${port}/mutate`,
                caBundle: Buffer.from(tls.ca).toString('base64'),
              },
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
              rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
            },
          ],
        }),
      );
      // Webhook configurations reach the admission chain asynchronously.
      await waitFor(
        'the webhook to mutate a ConfigMap',
        async () => {
          const name = `probe-${Date.now()}`;
          await k(['create', 'configmap', name, '-n', ns]);
          const labels = await k(['get', 'configmap', name, '-n', ns, '-o', 'jsonpath={.metadata.labels.mutated}']);
          return labels === 'yes';
        },
        30_000,
        500,
      );
      expect(calls).toBeGreaterThan(0);
    } finally {
      await k(['delete', 'mutatingwebhookconfiguration', 'harness-test']);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
