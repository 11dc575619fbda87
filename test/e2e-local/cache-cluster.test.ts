import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withEviction,
  withImage,
  withReplicas,
  withResources,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { controlPlaneOptionsForLocalNode, startLocalNode, type LocalNode } from '../harness/node.js';
import { programImage } from '../harness/node-images.js';
import { repoRoot } from '../harness/tools.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { waitFor } from '../harness/ports.js';

const run = promisify(execFile);
const NS = 'e2e-cache';

interface Pod {
  metadata: { uid: string; name: string };
  spec: {
    containers: { name: string; securityContext?: Record<string, unknown> }[];
    securityContext?: Record<string, unknown>;
  };
  status: {
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; containerID?: string; ready: boolean }[];
  };
}

let cp: ControlPlane;
let node: LocalNode;
let operator: OperatorProcess;

async function k(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const getPod = async (name: string) => JSON.parse(await k(['get', 'pod', name, '-n', NS, '-o', 'json'])) as Pod;
const podReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
/** The pod's IPv6 (primary, ULA) address: the host reaches it over the node's bridge. */
const podIp = (p: Pod) => p.status.podIPs?.map((x) => x.ip).find((ip) => ip.includes(':')) ?? '';

/** redis-cli from the host, straight to the pod's IP (no --pod-address-override, no port-forward). */
async function redisCli(ip: string, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-h', ip, '-p', '6379', ...args], { timeout: 10_000 })).stdout.trim();
}

async function waitPodReady(name: string, timeoutMs = 120_000): Promise<Pod> {
  let pod: Pod | undefined;
  await waitFor(
    `pod ${NS}/${name} Ready`,
    async () => {
      const r = await cp.kubectl(['get', 'pod', name, '-n', NS, '-o', 'json']);
      if (r.code !== 0) return false;
      pod = JSON.parse(r.stdout) as Pod;
      return podReady(pod);
    },
    timeoutMs,
    500,
  );
  return pod!;
}

async function waitConfigApplied(name: string): Promise<void> {
  await waitFor(
    `CacheCluster ${name} Ready with ConfigApplied=True`,
    async () => {
      const cc = JSON.parse(await k(['get', 'cachecluster', name, '-n', NS, '-o', 'json'])) as {
        metadata: { generation: number };
        status?: { phase?: string; observedGeneration?: number; conditions?: { type: string; status: string }[] };
      };
      return (
        cc.status?.phase === 'Ready' &&
        cc.status.observedGeneration === cc.metadata.generation &&
        (cc.status.conditions ?? []).some((c) => c.type === 'ConfigApplied' && c.status === 'True')
      );
    },
    120_000,
    500,
  );
}

/** The host PID of a container (from the node's containerd), to read its credentials from /proc. */
async function containerPid(pod: Pod, container: string): Promise<number> {
  const id = pod.status.containerStatuses
    ?.find((c) => c.name === container)
    ?.containerID?.replace(/^containerd:\/\//, '');
  if (!id) throw new Error(`no container ${container} in ${pod.metadata.name}`);
  const line = (await node.ctr(['tasks', 'ls'])).split('\n').find((l) => l.startsWith(id));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!pid) throw new Error(`no task for container ${id}`);
  return pid;
}

const cluster = (name: string, ...mods: Parameters<typeof cacheCluster>[1][]) =>
  cacheClusterYaml(
    cacheCluster(
      name,
      inNamespace(NS),
      withImage(node.images.redis),
      withResources({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }),
      ...mods,
    ),
  );

beforeAll(async () => {
  cp = await startControlPlane(controlPlaneOptionsForLocalNode());
  try {
    node = await startLocalNode(cp);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  await cp.applyCrds();
  await k(['create', 'namespace', NS]);
  // Pod Security `restricted`, enforced: the API server refuses any Redis pod that does not meet it.
  await k(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']);
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'e2e-local',
    commandPrefix: node.hostCommandPrefix(),
    extraArgs: ['--resync-seconds', '2'],
  });
});

afterAll(async () => {
  await operator?.stop().catch(() => undefined);
  await node?.stop();
  await cp?.stop();
});

describe('CacheCluster on real pods', () => {
  it('standalone: kubectl apply → a real, non-root Redis pod Ready → eviction applied live, read by pod IP', async () => {
    await k(['apply', '-f', '-'], cluster('solo', withEviction({ policy: 'allkeys-lru', maxMemory: '64Mi' })));
    const pod = await waitPodReady('solo-0');
    await waitConfigApplied('solo');
    const ip = podIp(pod);
    expect(ip).toMatch(/^fd00:10:244::/);
    expect(await redisCli(ip, 'CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n67108864');
    expect(await redisCli(ip, 'CONFIG', 'GET', 'maxmemory-policy')).toBe('maxmemory-policy\nallkeys-lru');

    // Non-root, no capabilities, seccomp filter on: read from the container's process on the host.
    const status = readFileSync(`/proc/${await containerPid(pod, 'redis')}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+999\s+999\s+999\s+999$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);

    // A live change: CONFIG SET on the running pod, which is not restarted.
    await k(['apply', '-f', '-'], cluster('solo', withEviction({ policy: 'volatile-lru', maxMemory: '32Mi' })));
    await waitFor(
      'maxmemory 32Mi on the pod',
      async () => (await redisCli(ip, 'CONFIG', 'GET', 'maxmemory')) === 'maxmemory\n33554432',
      60_000,
      500,
    );
    expect(await redisCli(ip, 'CONFIG', 'GET', 'maxmemory-policy')).toBe('maxmemory-policy\nvolatile-lru');
    expect((await getPod('solo-0')).metadata.uid).toBe(pod.metadata.uid);
  });

  it('the namespace enforces Pod Security restricted: a root pod is refused, the Redis pods were admitted', async () => {
    const r = await cp.kubectl([
      'run',
      'rooty',
      '-n',
      NS,
      '--image',
      node.images.redis,
      '--image-pull-policy=Never',
      '--restart=Never',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/violates PodSecurity "restricted/);
    const pod = await getPod('solo-0');
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });
  });

  it('deleting a Redis pod: the StatefulSet recreates it and the live settings are back on the new pod', async () => {
    const old = await getPod('solo-0');
    await k(['delete', 'pod', 'solo-0', '-n', NS, '--wait=true']);
    let fresh: Pod | undefined;
    await waitFor(
      'a new solo-0 Ready',
      async () => {
        const r = await cp.kubectl(['get', 'pod', 'solo-0', '-n', NS, '-o', 'json']);
        if (r.code !== 0) return false;
        fresh = JSON.parse(r.stdout) as Pod;
        return fresh.metadata.uid !== old.metadata.uid && podReady(fresh);
      },
      120_000,
      500,
    );
    const ip = podIp(fresh!);
    await waitFor(
      'maxmemory 32Mi / volatile-lru on the new pod',
      async () =>
        (await redisCli(ip, 'CONFIG', 'GET', 'maxmemory')) === 'maxmemory\n33554432' &&
        (await redisCli(ip, 'CONFIG', 'GET', 'maxmemory-policy')) === 'maxmemory-policy\nvolatile-lru',
      60_000,
      500,
    );
    await waitConfigApplied('solo');
  });

  it('replication: a primary and a replica as real pods, the replica following the primary by its DNS name', async () => {
    await k(
      ['apply', '-f', '-'],
      cluster(
        'dup',
        withTopology('replication'),
        withReplicas(1),
        withEviction({ policy: 'allkeys-lfu', maxMemory: '48Mi' }),
      ),
    );
    const primary = await waitPodReady('dup-0');
    const replica = await waitPodReady('dup-1');
    await waitConfigApplied('dup');
    for (const p of [primary, replica]) {
      expect(await redisCli(podIp(p), 'CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n50331648');
      expect(await redisCli(podIp(p), 'CONFIG', 'GET', 'maxmemory-policy')).toBe('maxmemory-policy\nallkeys-lfu');
    }
    await waitFor(
      'the replica linked to the primary',
      async () => /master_link_status:up/.test(await redisCli(podIp(replica), 'INFO', 'replication')),
      60_000,
      500,
    );
    await redisCli(podIp(primary), 'SET', 'e2e-key', 'from-primary');
    await waitFor(
      'the key on the replica',
      async () => (await redisCli(podIp(replica), 'GET', 'e2e-key')) === 'from-primary',
      30_000,
      200,
    );
  });

  it('the sidecar image as a real restricted pod reads and writes through the CacheCluster’s ClusterIP', async () => {
    // kube-proxy (nftables) serves the client Service; the sidecar finds it by name through the node's DNS.
    await node.importImage(await programImage('sidecar', repoRoot));
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app-sidecar', namespace: NS },
      spec: {
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'sidecar',
            image: node.images.sidecar,
            imagePullPolicy: 'Never',
            args: [
              '--config',
              '/etc/ripplecache/sidecar.yaml',
              '--listen',
              '[::]:7070',
              '--metrics-listen',
              '[::]:7071',
            ],
            env: [{ name: 'RIPPLECACHE_CACHE_CLUSTER', value: 'solo' }],
            readinessProbe: { httpGet: { path: '/readyz', port: 7071 }, periodSeconds: 2 },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
            volumeMounts: [{ name: 'config', mountPath: '/etc/ripplecache', readOnly: true }],
          },
        ],
        volumes: [
          {
            name: 'config',
            configMap: { name: 'solo-config', items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] },
          },
        ],
      },
    };
    await k(['apply', '-f', '-'], JSON.stringify(manifest));
    const pod = await waitPodReady('app-sidecar');
    const base = `http://[${podIp(pod)}]:7070/v1/cache`;
    const put = await fetch(`${base}/e2e-sidecar-key`, { method: 'PUT', body: 'through-the-sidecar' });
    expect(put.status).toBeLessThan(300);
    const got = await fetch(`${base}/e2e-sidecar-key`);
    expect(await got.text()).toBe('through-the-sidecar');
    // The value is in the Redis pod behind the Service (the sidecar's L2), read on the Redis pod's IP.
    const redisPod = await getPod('solo-0');
    await waitFor(
      'the key in Redis',
      async () => (await redisCli(podIp(redisPod), '--scan')).includes('e2e-sidecar-key'),
      10_000,
      200,
    );
  });
});
