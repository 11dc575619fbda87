/**
 * The Helm chart on real pods: `helm install` runs the operator as a pod of the chart's Deployment (its API
 * access through the `kubernetes` Service with its ServiceAccount token), a CacheCluster becomes Ready on real
 * Redis pods, the webhook injects the cache sidecar into a real application pod as a native sidecar that
 * starts first, the application reads and writes through it, `helm test` passes and `helm uninstall` leaves
 * nothing of the release.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheCluster, cacheClusterYaml, inNamespace, withImage, withResources } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import {
  LOCAL_NODE_NETWORK as NET,
  controlPlaneOptionsForLocalNode,
  startLocalNode,
  type LocalNode,
} from '../harness/node.js';
import { helmTestImage, programImage } from '../harness/node-images.js';
import { waitFor } from '../harness/ports.js';
import { nodeChart, type NodeChart } from '../harness/node-chart.js';
import { repoRoot } from '../harness/tools.js';

const run = promisify(execFile);
const SYSTEM = 'ripplecache-system';
const APP = 'e2e-app';
const RELEASE = 'rc';
const CHART = join(repoRoot, 'charts/ripplecache');

interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  state?: { running?: { startedAt: string } };
}
interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    containers: { name: string; image: string }[];
    initContainers?: { name: string; image: string; restartPolicy?: string }[];
  };
  status: {
    phase?: string;
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

let cp: ControlPlane;
let node: LocalNode;
let chart: NodeChart | undefined;

async function k(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** helm against the test control plane, with a private helm home (harness/node-chart.ts). */
const helm = (args: string[]): Promise<{ code: number; out: string }> => (chart ??= nodeChart(cp)).helm(args);

const podReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const podIp = (p: Pod) => p.status.podIPs?.map((x) => x.ip).find((ip) => ip.includes(':')) ?? '';

/** What went wrong with a pod: its status, events and every container's (and previous container's) logs. */
async function podDiagnostics(ns: string, name: string): Promise<string> {
  const parts = [(await cp.kubectl(['describe', 'pod', name, '-n', ns])).stdout];
  const r = await cp.kubectl(['get', 'pod', name, '-n', ns, '-o', 'json']);
  if (r.code === 0) {
    const p = JSON.parse(r.stdout) as Pod;
    for (const c of [...(p.spec.initContainers ?? []), ...p.spec.containers]) {
      for (const previous of [false, true]) {
        const logs = await cp.kubectl(['logs', name, '-n', ns, '-c', c.name, ...(previous ? ['--previous'] : [])]);
        parts.push(`--- logs ${c.name}${previous ? ' (previous)' : ''}:\n${logs.stdout}${logs.stderr}`);
      }
    }
  }
  return parts.join('\n');
}

async function waitPod(
  ns: string,
  name: string,
  what: string,
  ok: (p: Pod) => boolean,
  timeoutMs = 150_000,
): Promise<Pod> {
  let pod: Pod | undefined;
  try {
    await waitFor(
      `pod ${ns}/${name} ${what}`,
      async () => {
        const r = await cp.kubectl(['get', 'pod', name, '-n', ns, '-o', 'json']);
        if (r.code !== 0) return false;
        pod = JSON.parse(r.stdout) as Pod;
        return ok(pod);
      },
      timeoutMs,
      1_000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await podDiagnostics(ns, name)}`, { cause: err });
  }
  return pod!;
}

/** The application: its first request, at its very start and without retrying, goes to the sidecar. */
const APP_SCRIPT = `
const url = 'http://127.0.0.1:7070/v1/cache/helm-e2e-key';
(async () => {
  try {
    const put = await fetch(url, { method: 'PUT', body: 'written-by-the-app' });
    const got = await fetch(url);
    console.log(JSON.stringify({ put: put.status, get: got.status, body: await got.text() }));
  } catch (err) {
    console.log(JSON.stringify({ error: String(err && err.cause ? err.cause.code || err.cause : err) }));
  }
  setInterval(() => {}, 1 << 30);
})();
`;

beforeAll(async () => {
  cp = await startControlPlane(controlPlaneOptionsForLocalNode());
  try {
    node = await startLocalNode(cp);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  for (const spec of [
    await programImage('operator', repoRoot),
    await programImage('sidecar', repoRoot),
    helmTestImage(),
  ])
    await node.importImage(spec);
});

afterAll(async () => {
  await node?.stop();
  await cp?.stop();
  chart?.cleanUp();
});

describe('the Helm chart on real pods', () => {
  it('helm install: the operator runs as a pod and reaches the API server through the kubernetes Service', async () => {
    // The `kubernetes` Service leads to the node IP (the API server's advertised address), nothing else.
    const slice = JSON.parse(
      await k(['get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json']),
    ) as {
      items: { endpoints: { addresses: string[] }[]; ports: { port: number }[] }[];
    };
    expect(slice.items.flatMap((s) => s.endpoints.flatMap((e) => e.addresses))).toEqual([NET.nodeIp]);
    expect(slice.items[0]!.ports[0]!.port).toBe(Number(new URL(cp.server).port));

    await k(['create', 'namespace', SYSTEM]);
    const [opRepo, opTag] = node.images.operator.split(/:(?=[^:]+$)/) as [string, string];
    const [scRepo, scTag] = node.images.sidecar.split(/:(?=[^:]+$)/) as [string, string];
    const install = await helm([
      'install',
      RELEASE,
      CHART,
      '--namespace',
      SYSTEM,
      '--set',
      `image.repository=${opRepo},image.tag=${opTag},image.pullPolicy=Never`,
      '--set',
      `sidecar.image.repository=${scRepo},sidecar.image.tag=${scTag}`,
      '--set',
      `tests.image=${node.images.helmTest}`,
      '--set',
      'replicaCount=1,crds.keep=false',
      '--wait',
      '--timeout',
      '180s',
    ]);
    expect(install.code, install.out).toBe(0);
    // The chart's CRD: served for writes only some time after it is Established (CI, 2026-12-03: a 503
    // "Resource kind … not found" on the first CacheCluster, with the operator already listing them).
    await cp.waitForCrdsServed(['cacheclusters.cache.ripplecache.io']);

    const pods = JSON.parse(
      await k(['get', 'pods', '-n', SYSTEM, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'json']),
    ) as {
      items: Pod[];
    };
    expect(pods.items).toHaveLength(1);
    const op = pods.items[0]!;
    expect(op.spec.containers[0]!.image).toBe(node.images.operator);
    expect(podReady(op)).toBe(true);
    expect(podIp(op)).toMatch(/^fd00:10:244::/);
    // Ready means informers synced: lists and watches with the ServiceAccount token, in-cluster config.
    const logs = await k(['logs', op.metadata.name, '-n', SYSTEM, '-c', 'operator']);
    expect(logs).toContain('Synced informers');
    // The self-managed webhook certificate: the operator patched the caBundle through the API.
    await waitFor(
      'the webhook caBundle',
      async () =>
        (
          await k([
            'get',
            'mutatingwebhookconfiguration',
            `${RELEASE}-ripplecache-sidecar-injector`,
            '-o',
            'jsonpath={.webhooks[0].clientConfig.caBundle}',
          ])
        ).length > 0,
      60_000,
      500,
    );
  });

  it('a CacheCluster becomes Ready on real Redis pods, reconciled by the operator pod', async () => {
    await k(['create', 'namespace', APP]);
    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        cacheCluster(
          'sessions',
          inNamespace(APP),
          withImage(node.images.redis),
          withResources({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }),
        ),
      ),
    );
    await waitPod(APP, 'sessions-0', 'Ready', podReady);
    await waitFor(
      'CacheCluster sessions Ready',
      async () => {
        const cc = JSON.parse(await k(['get', 'cachecluster', 'sessions', '-n', APP, '-o', 'json'])) as {
          status?: { phase?: string; conditions?: { type: string; status: string }[] };
        };
        return (
          cc.status?.phase === 'Ready' &&
          (cc.status.conditions ?? []).some((c) => c.type === 'ConfigApplied' && c.status === 'True')
        );
      },
      180_000,
      1_000,
    );
  });

  it('the webhook injects the sidecar as a native sidecar that starts first; the app reads and writes through it', async () => {
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app', namespace: APP, annotations: { 'cache.ripplecache.io/inject': 'sessions' } },
      spec: {
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'app',
            image: node.images.sidecar,
            imagePullPolicy: 'Never',
            command: ['/nodejs/bin/node', '-e', APP_SCRIPT],
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    };
    await k(['apply', '-f', '-'], JSON.stringify(manifest));
    const pod = await waitPod(APP, 'app', 'Ready', podReady);

    // Injected by the webhook (called on the Service's endpoint: the operator pod's IP, port 9443).
    expect(pod.metadata.labels?.['cache.ripplecache.io/sidecar']).toBe('injected');
    expect(pod.spec.initContainers?.map((c) => [c.name, c.restartPolicy, c.image])).toEqual([
      ['ripplecache-sidecar', 'Always', node.images.sidecar],
    ]);
    const sidecar = pod.status.initContainerStatuses?.find((c) => c.name === 'ripplecache-sidecar');
    const app = pod.status.containerStatuses?.find((c) => c.name === 'app');
    expect(sidecar).toMatchObject({ started: true, ready: true });
    expect(app).toMatchObject({ ready: true });
    // Started first: the kubelet started the app only after the sidecar's startup probe passed.
    expect(Date.parse(sidecar!.state!.running!.startedAt)).toBeLessThanOrEqual(
      Date.parse(app!.state!.running!.startedAt),
    );

    // The app's first requests, made at its start with no retry, were answered by the sidecar.
    let line = '';
    await waitFor(
      'the app to print its result',
      async () => {
        line = (await k(['logs', 'app', '-n', APP, '-c', 'app'])).trim();
        return line.length > 0;
      },
      30_000,
      500,
    );
    expect(JSON.parse(line)).toEqual({ put: 204, get: 200, body: 'written-by-the-app' });

    // The value went through to Redis (the sidecar's L2), read on the Redis pod's IP.
    const redisPod = await waitPod(APP, 'sessions-0', 'Ready', podReady);
    await waitFor(
      'the key in Redis',
      async () =>
        (await run('redis-cli', ['-h', podIp(redisPod), '--scan'], { timeout: 10_000 })).stdout.includes(
          'helm-e2e-key',
        ),
      10_000,
      200,
    );
  }, 240_000);

  it('helm test passes (its pod reaches the operator’s metrics Service by name)', async () => {
    // (No --logs: the hook's delete policy removes the pod once it succeeded.)
    const r = await helm(['test', RELEASE, '--namespace', SYSTEM, '--timeout', '120s']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/TEST SUITE:\s+rc-ripplecache-test[\s\S]*Phase:\s+Succeeded/);
  });

  it('helm uninstall leaves nothing of the release', async () => {
    await k(['delete', 'pod', 'app', '-n', APP, '--wait=true']);
    await k(['delete', 'cachecluster', 'sessions', '-n', APP, '--wait=true']);
    const r = await helm(['uninstall', RELEASE, '--namespace', SYSTEM, '--wait', '--timeout', '120s']);
    expect(r.code, r.out).toBe(0);
    const selector = `app.kubernetes.io/instance=${RELEASE}`;
    await waitFor(
      'the release’s objects to be gone',
      async () => {
        const left = await k([
          'get',
          'all,serviceaccounts,secrets,configmaps,roles,rolebindings,poddisruptionbudgets',
          '-A',
          '-l',
          selector,
          '-o',
          'name',
        ]);
        return left.trim() === '';
      },
      120_000,
      1_000,
    );
    for (const kind of ['clusterroles', 'clusterrolebindings', 'mutatingwebhookconfigurations', 'crds'])
      expect(await k(['get', kind, '-l', selector, '-o', 'name'])).toBe('');
    expect((await cp.kubectl(['get', 'crd', 'cacheclusters.cache.ripplecache.io'])).code).not.toBe(0);
    expect(await k(['get', 'pods', '-n', SYSTEM, '-o', 'name'])).toBe('');
  });
});
