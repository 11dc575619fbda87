import * as k8s from '@kubernetes/client-node';
import { createConnection } from 'node:net';

/** Answers true when a redis-server answers PING at `addr` within a second (no password). */
function pingRedis(addr: { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(addr);
    let buf = '';
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => finish(false));
    sock.on('error', () => finish(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) finish(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
  });
}
import type { RedisProcess } from './redis.js';

/** The redis.conf settings a restarted pod takes from its ConfigMap; the harness keeps port, bind and dir. */
const RESTART_SETTINGS = ['appendonly', 'appendfsync', 'save', 'maxmemory', 'maxmemory-policy', 'replicaof'];

/**
 * Stands in for the kubelet, which the test control plane does not run: marks the Redis pods that the
 * StatefulSet controller created as Running and Ready (podIP 127.0.0.1), because a local redis-server
 * process plays each of them. Only pods named in `pods` are marked; the others stay Pending.
 *
 * With `probes` (pod → address of its redis-server) it also plays the readiness probe: a pod is Ready only
 * while its redis-server answers PING, so a SIGKILLed redis-server makes its pod not Ready (within a tick) and
 * a restarted one (empty, or with its data when it persists) makes it Ready again.
 *
 * With `node` it also plays the scheduler: it creates that Node and binds the pods to it, because the
 * endpointslice controller leaves out pods whose node does not exist (needed for the Services' EndpointSlices).
 * Start the control plane without the node lifecycle controller then (`--controllers=*,-node-lifecycle-controller`):
 * no kubelet heartbeats this Node, and that controller would mark its pods not Ready. Pods then get a made-up
 * pod IP (10.244.0.n: EndpointSlices refuse loopback addresses); nothing connects to it, the Service proxy
 * maps endpoints by pod name.
 *
 * With `containers` (pod → the redis-server playing it) it also plays the kubelet's part in a pod's deletion and
 * re-creation (rolling updates, OnDelete): a pod being deleted gets its redis-server killed and is then removed
 * (the kubelet's final delete, grace period 0, by uid); a pod re-created under the same name (a new uid) gets its
 * redis-server started again with the settings of the ConfigMap it mounts (`restartRedisContainer`), as the new
 * container would, before it is marked Ready. Without it a deleted bound pod would stay Terminating (no kubelet).
 */
export class PodSimulator {
  private readonly core: k8s.CoreV1Api;
  private timer: NodeJS.Timeout | undefined;
  /** `name/uid` → the readiness last written. */
  private readonly written = new Map<string, boolean>();
  private stopped = false;
  private nodeCreated = false;
  private readonly podIps = new Map<string, string>();
  /** Pod name → the uid whose container the redis-server currently plays. */
  private readonly containerUid = new Map<string, string>();
  /** Pod name → its redis-server is stopped (the pod was deleted, its replacement not started yet). */
  private readonly stoppedContainers = new Set<string>();
  /** How many times a re-created pod's redis-server was started. */
  private starts = 0;

  constructor(
    kubeconfigPath: string,
    private readonly namespace: string,
    private readonly pods: Set<string>,
    private readonly probes: Record<string, { host: string; port: number }> = {},
    private readonly opts: { node?: string; containers?: Record<string, RedisProcess> } = {},
  ) {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  start(everyMs = 300): void {
    const tick = async () => {
      try {
        await this.markReady();
      } catch {
        /* the next tick tries again */
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), everyMs);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Marks every named, existing pod Running, and Ready unless its probe fails. */
  async markReady(): Promise<void> {
    const node = this.opts.node;
    if (node && !this.nodeCreated) {
      await this.core.createNode({ body: { metadata: { name: node } } }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
      this.nodeCreated = true;
    }
    const list = await this.core.listNamespacedPod({ namespace: this.namespace });
    await Promise.all(
      list.items.map(async (pod) => {
        const name = pod.metadata?.name ?? '';
        if (!this.pods.has(name)) return;
        const container = this.opts.containers?.[name];
        const uid = pod.metadata?.uid ?? '';
        if (container) {
          if (pod.metadata?.deletionTimestamp) {
            await this.deleteContainer(name, uid, container);
            return;
          }
          const seen = this.containerUid.get(name);
          if (seen === undefined) this.containerUid.set(name, uid);
          else if (seen !== uid) {
            // A new pod under the same name: its container starts with the ConfigMap's settings.
            await this.restartRedisContainer(name, container);
            this.containerUid.set(name, uid);
            this.stoppedContainers.delete(name);
            this.starts++;
          }
        }
        if (node && !pod.spec?.nodeName)
          await this.core.createNamespacedPodBinding({
            name,
            namespace: this.namespace,
            body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node } },
          });
        const probe = this.probes[name];
        const ready = probe ? await pingRedis(probe) : true;
        const id = `${name}/${pod.metadata?.uid}`;
        const isReady = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        if (isReady === ready && this.written.get(id) === ready) return;
        const now = new Date();
        const status = ready ? 'True' : 'False';
        if (!this.podIps.has(name)) this.podIps.set(name, node ? `10.244.0.${this.podIps.size + 2}` : '127.0.0.1');
        const podIP = this.podIps.get(name)!;
        await this.core.patchNamespacedPodStatus(
          {
            name,
            namespace: this.namespace,
            body: {
              status: {
                phase: 'Running',
                podIP,
                podIPs: [{ ip: podIP }],
                hostIP: '127.0.0.1',
                startTime: pod.status?.startTime ?? now,
                conditions: [
                  { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
                  { type: 'Initialized', status: 'True', lastTransitionTime: now },
                  { type: 'ContainersReady', status, lastTransitionTime: now },
                  { type: 'Ready', status, lastTransitionTime: now },
                ],
              },
            },
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
        this.written.set(id, ready);
      }),
    );
  }

  /** How many times a re-created pod's redis-server was started. */
  containerStarts(): number {
    return this.starts;
  }

  /** The kubelet's side of a pod deletion: stop its container, then remove the pod for good. */
  private async deleteContainer(name: string, uid: string, container: RedisProcess): Promise<void> {
    if (!this.stoppedContainers.has(name)) {
      await container.kill();
      this.stoppedContainers.add(name);
    }
    await this.core
      .deleteNamespacedPod({
        name,
        namespace: this.namespace,
        body: { gracePeriodSeconds: 0, preconditions: { uid } },
      })
      .catch(() => undefined);
  }

  /**
   * Restarts the container of `pod` as the kubelet does after a crash: SIGKILLs its local redis-server, then
   * starts it again on the same data dir with the settings of the redis.conf the pod mounts (its ConfigMap as it
   * is now: appendonly, appendfsync, save, maxmemory, maxmemory-policy, and with topology replication replicaof
   * the placeholder primary), as the real entrypoint would read it.
   */
  async restartRedisContainer(pod: string, redis: RedisProcess): Promise<void> {
    const p = await this.core.readNamespacedPod({ name: pod, namespace: this.namespace });
    const volume = p.spec?.volumes?.find((v) => v.configMap !== undefined);
    if (!volume?.configMap?.name) throw new Error(`pod ${pod} mounts no ConfigMap`);
    const cm = await this.core.readNamespacedConfigMap({ name: volume.configMap.name, namespace: this.namespace });
    const conf = cm.data?.['redis.conf'];
    if (conf === undefined) throw new Error(`ConfigMap ${volume.configMap.name} has no redis.conf`);
    const args: string[] = [];
    for (const line of conf.split('\n')) {
      const [name, ...rest] = line.trim().split(/\s+/);
      if (!name || !RESTART_SETTINGS.includes(name)) continue;
      // replicaof takes host and port as two arguments (a replication pod starts as a replica of the placeholder).
      if (name === 'replicaof') {
        args.push(`--${name}`, ...rest);
        continue;
      }
      const value = rest.join(' ');
      args.push(`--${name}`, value === '""' ? '' : value);
    }
    // The entrypoint's requirepass/masterauth: REDIS_PASSWORD as the kubelet resolves it when the container
    // starts (its secretKeyRef read now: a rotated Secret's new password).
    const ref = p.spec?.containers?.find((c) => c.name === 'redis')?.env?.find((e) => e.name === 'REDIS_PASSWORD')
      ?.valueFrom?.secretKeyRef;
    if (ref?.name && ref.key) {
      const secret = await this.core.readNamespacedSecret({ name: ref.name, namespace: this.namespace });
      const b64 = secret.data?.[ref.key];
      if (b64 === undefined) throw new Error(`Secret ${ref.name} has no key ${ref.key}`);
      const password = Buffer.from(b64, 'base64').toString('utf8');
      args.push('--requirepass', password, '--masterauth', password);
    }
    await redis.kill();
    await redis.start(args);
  }
}
