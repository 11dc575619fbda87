import * as k8s from '@kubernetes/client-node';
import type { RedisProcess } from './redis.js';

/** The redis.conf settings a restarted pod takes from its ConfigMap; the harness keeps port, bind and dir. */
const RESTART_SETTINGS = ['appendonly', 'appendfsync', 'save', 'maxmemory', 'maxmemory-policy'];

/**
 * Stands in for the kubelet, which the test control plane does not run: marks the Redis pods that the
 * StatefulSet controller created as Running and Ready (podIP 127.0.0.1), because a local redis-server
 * process plays each of them. Only pods named in `pods` are marked; the others stay Pending.
 */
export class PodSimulator {
  private readonly core: k8s.CoreV1Api;
  private timer: NodeJS.Timeout | undefined;
  private readonly ready = new Set<string>();
  private stopped = false;

  constructor(
    kubeconfigPath: string,
    private readonly namespace: string,
    private readonly pods: Set<string>,
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

  /** Marks every named, existing, not-yet-ready pod as Running and Ready. */
  async markReady(): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.namespace });
    for (const pod of list.items) {
      const name = pod.metadata?.name ?? '';
      if (!this.pods.has(name)) continue;
      const isReady = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (isReady && this.ready.has(`${name}/${pod.metadata?.uid}`)) continue;
      const now = new Date();
      await this.core.patchNamespacedPodStatus(
        {
          name,
          namespace: this.namespace,
          body: {
            status: {
              phase: 'Running',
              podIP: '127.0.0.1',
              podIPs: [{ ip: '127.0.0.1' }],
              hostIP: '127.0.0.1',
              startTime: now,
              conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
                type,
                status: 'True',
                lastTransitionTime: now,
              })),
            },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      this.ready.add(`${name}/${pod.metadata?.uid}`);
    }
  }

  /**
   * Restarts the container of `pod` as the kubelet does after a crash: SIGKILLs its local redis-server, then
   * starts it again on the same data dir with the settings of the redis.conf the pod mounts (its ConfigMap as it
   * is now: appendonly, appendfsync, save, maxmemory, maxmemory-policy), as the real entrypoint would read it.
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
      const value = rest.join(' ');
      args.push(`--${name}`, value === '""' ? '' : value);
    }
    await redis.kill();
    await redis.start(args);
  }
}
