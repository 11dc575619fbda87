/**
 * Failover on real pods (kubelet, containerd, the real kube-proxy): a replication CacheCluster of three Redis
 * pods, reconciled by the operator on the host; a writer pod writes through the client Service (its ClusterIP,
 * by DNS name) with `SET` then `WAIT 1 1000` on one connection, as a sidecar with durability replicated
 * acknowledges, and logs each acknowledged write. The primary's redis container is SIGKILLed through the
 * node's containerd: the kubelet restarts it in the same pod (empty, persistence none, as a replica of the
 * placeholder), the operator fails over to the most advanced replica. Asserted: the failover completes, no
 * acknowledged write is lost or older, never two pods labelled primary (sampled), the old primary rejoins as a
 * replica holding the data.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  inNamespace,
  withImage,
  withReplicas,
  withResources,
  withSpec,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { controlPlaneOptionsForLocalNode, startLocalNode, type LocalNode } from '../harness/node.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { waitFor } from '../harness/ports.js';
import { samplePrimaries } from '../harness/replication.js';

const run = promisify(execFile);
const NS = 'e2e-failover';
const NAME = 'fo';
const WRITES = 300;
const KEYS = 50;

interface Pod {
  metadata: { uid: string; name: string; labels?: Record<string, string> };
  status: {
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; containerID?: string; ready: boolean; restartCount: number }[];
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
const podIp = (p: Pod) => p.status.podIPs?.map((x) => x.ip).find((ip) => ip.includes(':')) ?? '';
async function redisCli(ip: string, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-h', ip, '-p', '6379', ...args], { timeout: 10_000 })).stdout.trim();
}
async function getCc(): Promise<any> {
  return JSON.parse(await k(['get', 'cachecluster', NAME, '-n', NS, '-o', 'json']));
}
async function roleLabels(): Promise<Record<string, string | undefined>> {
  const list = JSON.parse(
    await k(['get', 'pods', '-n', NS, '-l', `cache.ripplecache.io/cluster=${NAME}`, '-o', 'json']),
  ) as { items: Pod[] };
  return Object.fromEntries(list.items.map((p) => [p.metadata.name, p.metadata.labels?.['cache.ripplecache.io/role']]));
}

/**
 * The writer: SET k<i mod KEYS> <i> then WAIT 1 1000 on one connection through the client Service; a write is
 * acknowledged (and logged `ACK key seq`) only when WAIT answers 1 or more. Stops after WRITES acknowledged
 * writes (or 20000 attempts), then logs DONE and exits (the image has
 * redis-cli, sh and grep only: no sleep, so a refused attempt is retried at once).
 */
const WRITER_SCRIPT = `
i=0; acked=0
while [ "$acked" -lt ${WRITES} ] && [ "$i" -lt 20000 ]; do
  i=$((i+1)); key="k$((i % ${KEYS}))"
  out="$(printf 'SET %s %s\\nWAIT 1 1000\\n' "$key" "$i" | redis-cli -h ${NAME} -p 6379 2>&1)"
  set -- $out
  if [ "\${1:-}" = "OK" ] && [ "\${2:-0}" -ge 1 ] 2>/dev/null; then acked=$((acked+1)); echo "ACK $key $i"; fi
done
echo "DONE $acked $i"
`;

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
  await k(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']);
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'e2e-local-failover',
    commandPrefix: node.hostCommandPrefix(),
    extraArgs: ['--resync-seconds', '2'],
  });
});

afterAll(async () => {
  await operator?.stop().catch(() => undefined);
  await node?.stop();
  await cp?.stop();
});

describe('failover on real pods', () => {
  it('the primary container SIGKILLed under acknowledged writes: failover, nothing lost, one primary, rejoin', async () => {
    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        cacheCluster(
          NAME,
          inNamespace(NS),
          // withSpec replaces the spec: first.
          withSpec({ failover: { afterSeconds: 2 } }),
          withImage(node.images.redis),
          withResources({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }),
          withTopology('replication'),
          withReplicas(2),
        ),
      ),
    );
    await waitFor(
      'fo-0 primary, fo-1 and fo-2 replicas',
      async () => {
        const l = await roleLabels();
        return l['fo-0'] === 'primary' && l['fo-1'] === 'replica' && l['fo-2'] === 'replica';
      },
      180_000,
      1_000,
    );

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const sampler = samplePrimaries(kc.makeApiClient(k8s.CoreV1Api), NS, NAME);
    const writer = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'writer', namespace: NS },
      spec: {
        restartPolicy: 'Never',
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 999,
          runAsGroup: 999,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'writer',
            image: node.images.redis,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', WRITER_SCRIPT],
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    };
    await k(['apply', '-f', '-'], JSON.stringify(writer));
    const logs = async () => (await cp.kubectl(['logs', 'writer', '-n', NS])).stdout;
    const ackCount = async () => (await logs()).split('\n').filter((l) => l.startsWith('ACK ')).length;
    await waitFor('100 acknowledged writes', async () => (await ackCount()) >= 100, 120_000, 500);

    // SIGKILL the primary's redis container: the kubelet restarts it in the same pod.
    const before = await getPod('fo-0');
    const id = before.status.containerStatuses
      ?.find((c) => c.name === 'redis')
      ?.containerID?.replace(/^containerd:\/\//, '');
    expect(id).toBeTruthy();
    await node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id!]);

    await waitFor('a completed failover', async () => (await getCc()).status?.lastFailover !== undefined, 120_000, 500);
    const status = (await getCc()).status;
    expect(status.lastFailover.from).toBe('fo-0');
    expect(['fo-1', 'fo-2']).toContain(status.primary);
    await waitFor('the writer to finish', async () => /^DONE /m.test(await logs()), 120_000, 1_000);
    const out = await logs();
    const done = /^DONE (\d+) (\d+)$/m.exec(out)!;
    expect(Number(done[1])).toBe(WRITES);
    const lastAcked = new Map<string, number>();
    for (const line of out.split('\n')) {
      const m = /^ACK (\S+) (\d+)$/.exec(line);
      if (m) lastAcked.set(m[1]!, Number(m[2]));
    }
    expect(lastAcked.size).toBe(KEYS);

    // Every acknowledged write is on the new primary, none older.
    const primaryIp = podIp(await getPod(status.primary as string));
    let lost = 0;
    let older = 0;
    for (const [key, seq] of lastAcked) {
      const v = await redisCli(primaryIp, 'GET', key);
      if (v === '') lost++;
      else if (Number(v) < seq) older++;
    }
    expect({ lost, older }).toEqual({ lost: 0, older: 0 });

    // The old primary: the same pod, its container restarted, a replica of the new primary holding the data.
    await waitFor(
      'fo-0 labelled replica again',
      async () => (await roleLabels())['fo-0'] === 'replica',
      120_000,
      1_000,
    );
    const after = await getPod('fo-0');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status.containerStatuses?.find((c) => c.name === 'redis')?.restartCount).toBeGreaterThanOrEqual(1);
    const info = await redisCli(podIp(after), 'INFO', 'replication');
    expect(info).toMatch(/role:slave/);
    const [someKey, someSeq] = [...lastAcked.entries()][0]!;
    await waitFor(
      'fo-0 to hold the data',
      async () => Number(await redisCli(podIp(after), 'GET', someKey)) >= someSeq,
      60_000,
      500,
    );
    const sampled = await sampler.stop();
    expect(sampled.samples).toBeGreaterThan(10);
    expect(sampled.max).toBe(1);
  }, 300_000);
});
