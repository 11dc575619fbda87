import * as k8s from '@kubernetes/client-node';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A stand-in for kube-proxy, for one Service of the test control plane: a loopback port whose every new
 * connection goes to a ready endpoint of the Service's EndpointSlices (written by the control plane's real
 * endpointslice controller from the pods' labels and readiness), mapped from the endpoint's pod to the address
 * of the redis-server playing it, the same mapping the operator gets with `--pod-address-override`. As with
 * kube-proxy, established connections are not moved when the endpoints change; a connection made while the
 * Service has no ready endpoint is refused (closed at once).
 */
export interface ServiceProxy {
  readonly port: number;
  /** The pods of the ready endpoints, as last read. */
  endpoints(): string[];
  /** Connections forwarded so far, per pod. */
  forwarded(): Record<string, number>;
  close(): Promise<void>;
}

export interface ServiceProxyOptions {
  kubeconfigPath: string;
  namespace: string;
  service: string;
  /** Pod name → address of the redis-server standing in for it. */
  podAddresses: Record<string, { host: string; port: number }>;
  /** How often the EndpointSlices are read. Default 100 ms. */
  pollMs?: number;
}

export async function startServiceProxy(opts: ServiceProxyOptions): Promise<ServiceProxy> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  let ready: string[] = [];
  let next = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const counts: Record<string, number> = {};
  const sockets = new Set<Socket>();

  const poll = async () => {
    try {
      const list = await discovery.listNamespacedEndpointSlice({
        namespace: opts.namespace,
        labelSelector: `kubernetes.io/service-name=${opts.service}`,
      });
      const pods: string[] = [];
      for (const slice of list.items)
        for (const ep of slice.endpoints ?? [])
          if (ep.conditions?.ready !== false && ep.targetRef?.name) pods.push(ep.targetRef.name);
      ready = pods.sort();
    } catch {
      /* keep the last view; the next poll tries again */
    }
    if (!stopped) timer = setTimeout(() => void poll(), opts.pollMs ?? 100);
  };
  await poll();

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const candidates = ready.filter((p) => opts.podAddresses[p] !== undefined);
    if (candidates.length === 0) {
      client.destroy();
      return;
    }
    const pod = candidates[next++ % candidates.length]!;
    counts[pod] = (counts[pod] ?? 0) + 1;
    const target = opts.podAddresses[pod]!;
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('service proxy: no port');
  return {
    port: addr.port,
    endpoints: () => ready.slice(),
    forwarded: () => ({ ...counts }),
    close: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
