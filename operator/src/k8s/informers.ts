/**
 * Shared informers (list + watch, with a local cache) for CacheClusters and the kinds the operator owns.
 * Restarts a watch that fails, after a pause. Only this module, kube-client.ts and lease.ts import
 * @kubernetes/client-node.
 */
import * as k8s from '@kubernetes/client-node';
import { requestCode, type KubeObject, type RequestObserver } from './kube-client.js';

export interface WatchedKind {
  /** e.g. 'apps/v1' or 'v1'. */
  apiVersion: string;
  kind: string;
  plural: string;
  labelSelector?: string;
}

export interface InformerSetOptions {
  /** Namespaces to watch; empty means every namespace. */
  namespaces: string[];
  /** Called on every add/update/delete with the object. */
  onEvent: (kind: string, obj: KubeObject, type: 'add' | 'update' | 'delete') => void;
  onError?: (kind: string, err: unknown) => void;
  /** Told of every list request (at start and at each watch restart), as `ClientNodeKubeApi`'s `onRequest`. */
  onRequest?: RequestObserver;
  restartDelayMs?: number;
}

/** Annotation kubectl's client-side apply writes: a full copy of the object, never read by reconcile. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops, in place, what reconcile never reads from a cached object: `metadata.managedFields` (often larger
 * than the rest of the object) and kubectl's last-applied-configuration annotation. Reconcile compares the
 * desired children with the cache (`isSubset`), and desired objects never carry either.
 */
export function stripForCache<T extends { metadata?: unknown }>(obj: T): T {
  const meta = obj.metadata as { managedFields?: unknown; annotations?: Record<string, string> } | undefined;
  if (!meta) return obj;
  delete meta.managedFields;
  if (meta.annotations && LAST_APPLIED in meta.annotations) {
    delete meta.annotations[LAST_APPLIED];
    if (Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  return obj;
}

/** A Watch whose objects are stripped before the informer caches them. */
class StrippingWatch extends k8s.Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, obj, watchObj) => callback(phase, obj && typeof obj === 'object' ? stripForCache(obj) : obj, watchObj),
      done,
    );
  }
}

function basePath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

export class InformerSet {
  private readonly informers = new Map<
    string,
    Array<k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>>
  >();
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    kinds: WatchedKind[],
    opts: InformerSetOptions,
  ) {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    for (const w of kinds) {
      const list: Array<k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>> = [];
      const scopes = opts.namespaces.length ? opts.namespaces : [undefined];
      for (const ns of scopes) {
        const path = ns
          ? `${basePath(w.apiVersion)}/namespaces/${ns}/${w.plural}`
          : `${basePath(w.apiVersion)}/${w.plural}`;
        const listFn = async () => {
          let list;
          try {
            list = await objects.list<k8s.KubernetesObject>(
              w.apiVersion,
              w.kind,
              ns,
              undefined,
              undefined,
              undefined,
              undefined,
              w.labelSelector,
            );
          } catch (err) {
            opts.onRequest?.('list', w.kind, requestCode(err));
            throw err;
          }
          opts.onRequest?.('list', w.kind, '2xx');
          for (const item of list.items) stripForCache(item);
          return list;
        };
        // As k8s.makeInformer, with a Watch that strips objects before they are cached.
        const inf = new k8s.ListWatch(path, new StrippingWatch(this.kc), listFn, false, w.labelSelector);
        const emit = (type: 'add' | 'update' | 'delete') => (obj: k8s.KubernetesObject) => {
          // List results omit apiVersion/kind on items; restore them for the handlers.
          const o = obj as KubeObject;
          o.apiVersion ??= w.apiVersion;
          o.kind ??= w.kind;
          opts.onEvent(w.kind, o, type);
        };
        inf.on('add', emit('add'));
        inf.on('update', emit('update'));
        inf.on('delete', emit('delete'));
        inf.on('error', (err: unknown) => {
          opts.onError?.(w.kind, err);
          if (this.stopped) return;
          const t = setTimeout(() => {
            this.timers.delete(t);
            if (!this.stopped) inf.start().catch((e: unknown) => opts.onError?.(w.kind, e));
          }, opts.restartDelayMs ?? 2000);
          this.timers.add(t);
        });
        list.push(inf);
      }
      this.informers.set(w.kind, list);
    }
  }

  /** Starts every informer; resolves once each has listed (its cache is filled). */
  async start(): Promise<void> {
    await Promise.all([...this.informers.values()].flat().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.informers.values()].flat().map((i) => i.stop().catch(() => undefined)));
  }

  /** The cached object of `kind`, or undefined. */
  get<T extends KubeObject>(kind: string, namespace: string, name: string): T | undefined {
    for (const inf of this.informers.get(kind) ?? []) {
      const o = inf.get(name, namespace);
      if (o) return o as T;
    }
    return undefined;
  }

  list<T extends KubeObject>(kind: string, namespace?: string): T[] {
    return (this.informers.get(kind) ?? []).flatMap((i) => i.list(namespace) as T[]);
  }
}
