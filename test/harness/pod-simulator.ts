import * as k8s from '@kubernetes/client-node';

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
}
