/**
 * The operator's Kubernetes adapter: the only module (with informers.ts, lease.ts and pooled-kube-config.ts) that imports
 * @kubernetes/client-node. Everything else sees plain objects through the `KubeApi` interface.
 */
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { PooledKubeConfig } from './pooled-kube-config.js';

/** A Kubernetes object as plain data. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string | undefined;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }>;
    deletionTimestamp?: string | Date;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface EventInput {
  involved: { apiVersion: string; kind: string; namespace: string; name: string; uid?: string | undefined };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What reconcile needs from the API server. */
export interface KubeApi {
  /** Server-side apply under the operator's field manager (force: the operator owns its children). */
  apply<T extends KubeObject>(obj: T): Promise<T>;
  get<T extends KubeObject>(ref: ObjectRef): Promise<T | undefined>;
  /** Deletes with background propagation; absent is fine. */
  delete(ref: ObjectRef): Promise<void>;
  /** Merge-patches the status subresource of a custom object. */
  patchStatus(ref: ObjectRef & { plural: string }, status: unknown): Promise<void>;
  event(e: EventInput): Promise<void>;
}

/** Classifies API errors for reconcile: not found → done; conflict → requeue now; else back off. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    message: string,
    readonly statusCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  get notFound(): boolean {
    return this.statusCode === 404;
  }
  get conflict(): boolean {
    return this.statusCode === 409;
  }
  get invalid(): boolean {
    return this.statusCode === 422 || this.statusCode === 400;
  }
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body = err.body as unknown;
    if (typeof body === 'string') {
      try {
        return (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {
        return body;
      }
    }
    if (body && typeof body === 'object' && 'message' in body) return String(body.message);
  }
  return err instanceof Error ? err.message : String(err);
}

export function toKubeApiError(err: unknown, what: string): unknown {
  const code = statusOf(err);
  if (code === undefined) return err;
  return new KubeApiError(`${what}: ${messageOf(err)}`, code, { cause: err });
}

/** The operator cannot talk to any API server: no credentials, or a kubeconfig it cannot use. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly code = 'InvalidKubeconfig';
}

/** Where an in-cluster pod finds its service-account token (and client-node its CA). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  /** `--kubeconfig`: one file, which must exist. */
  path?: string | undefined;
  /** The environment: `KUBECONFIG` (a `:`-separated list), `HOME`, `KUBERNETES_SERVICE_HOST`. */
  env: Readonly<Record<string, string | undefined>>;
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? text;
}

function loadFile(file: string, from: string): PooledKubeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : firstLine((err as Error).message);
    throw new KubeConfigError(`cannot read the kubeconfig ${file} (from ${from}): ${why}`);
  }
  const kc = new PooledKubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    const yamlError = (err as Error).name === 'YAMLException';
    throw new KubeConfigError(
      `the kubeconfig ${file} (from ${from}) is ${yamlError ? 'not valid YAML' : 'invalid'}: ${firstLine((err as Error).message)}`,
    );
  }
  kc.makePathsAbsolute(dirname(file));
  return kc;
}

/** Checks that the current context exists and names a cluster with a server. */
function checkCurrentContext(kc: k8s.KubeConfig, what: string): void {
  const name = kc.getCurrentContext();
  if (!name)
    throw new KubeConfigError(`${what} has no current-context (choose one with: kubectl config use-context NAME)`);
  const ctx = kc.getContextObject(name);
  if (!ctx) throw new KubeConfigError(`${what}: its current-context "${name}" is not among its contexts`);
  if (!kc.getCluster(ctx.cluster))
    throw new KubeConfigError(
      `${what}: context "${name}" names the cluster "${ctx.cluster}", which it does not define`,
    );
}

/**
 * Loads the API server credentials, in kubectl's order: `--kubeconfig`, else `$KUBECONFIG`, else
 * `~/.kube/config`, else the in-cluster service account. The result shares one keep-alive connection pool
 * for all its requests and watches ({@link PooledKubeConfig}). Unlike client-node's `loadFromDefault`, it never
 * falls back to an unauthenticated `http://localhost:8080`: without usable credentials it throws a
 * {@link KubeConfigError} whose one-line message says what is missing.
 */
export function loadKubeConfig(source: KubeConfigSource): PooledKubeConfig {
  const { env } = source;
  let files: string[] = [];
  let from = '';
  if (source.path) {
    files = [source.path];
    from = '--kubeconfig';
  } else if (env.KUBECONFIG) {
    files = env.KUBECONFIG.split(delimiter).filter(Boolean);
    from = '$KUBECONFIG';
  } else if (env.HOME && existsSync(join(env.HOME, '.kube', 'config'))) {
    files = [join(env.HOME, '.kube', 'config')];
    from = '~/.kube/config';
  }
  if (files.length > 0) {
    const [first, ...rest] = files.map((f) => loadFile(f, from));
    const kc = first!;
    for (const [i, more] of rest.entries()) {
      try {
        // As kubectl: the first file that sets a current-context wins.
        kc.mergeConfig(more, Boolean(kc.getCurrentContext()));
      } catch (err) {
        throw new KubeConfigError(`$KUBECONFIG: cannot merge ${files[i + 1]}: ${firstLine((err as Error).message)}`);
      }
    }
    checkCurrentContext(
      kc,
      files.length === 1 ? `the kubeconfig ${files[0]}` : `$KUBECONFIG (${files.join(delimiter)})`,
    );
    return kc;
  }
  if (existsSync(join(SERVICE_ACCOUNT_DIR, 'token'))) {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT)
      throw new KubeConfigError(
        `found a service-account token in ${SERVICE_ACCOUNT_DIR} but $KUBERNETES_SERVICE_HOST/$KUBERNETES_SERVICE_PORT are not set`,
      );
    const kc = new PooledKubeConfig();
    kc.loadFromCluster();
    return kc;
  }
  throw new KubeConfigError(
    'no Kubernetes credentials: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run in a pod with a service account',
  );
}

/**
 * `ripplecache_operator_kube_api_requests_total`'s `code` of a failed request: its HTTP status, or `error`
 * without one (no connection, a time-out). Successes are `2xx`: client-node's object-style calls return
 * the body only, not the status (200 or 201).
 */
export function requestCode(err: unknown): string {
  return String(statusOf(err) ?? 'error');
}

/** Told of every request made, when it completes (`code`: `2xx`, the HTTP status of a failure, or `error`). */
export type RequestObserver = (verb: string, resource: string, code: string) => void;

export interface ClientNodeKubeApiOptions {
  /** `source.component` and `reportingComponent` of Events. Default `ripplecache-operator`. */
  component?: string;
  onRequest?: RequestObserver;
}

export class ClientNodeKubeApi implements KubeApi {
  private readonly objects: k8s.KubernetesObjectApi;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly component: string;
  private readonly onRequest: RequestObserver | undefined;

  constructor(
    kc: k8s.KubeConfig,
    private readonly fieldManager: string,
    options: ClientNodeKubeApiOptions = {},
  ) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.component = options.component ?? 'ripplecache-operator';
    this.onRequest = options.onRequest;
  }

  /** Runs one request and reports it to `onRequest`. */
  private async counted<T>(verb: string, resource: string, call: () => Promise<T>): Promise<T> {
    if (!this.onRequest) return call();
    try {
      const result = await call();
      this.onRequest(verb, resource, '2xx');
      return result;
    } catch (err) {
      this.onRequest(verb, resource, requestCode(err));
      throw err;
    }
  }

  async apply<T extends KubeObject>(obj: T): Promise<T> {
    try {
      // Server-side apply; managedFields must not be sent.
      return (await this.counted('apply', obj.kind ?? '', () =>
        this.objects.patch(
          obj as k8s.KubernetesObject,
          undefined,
          undefined,
          this.fieldManager,
          true,
          k8s.PatchStrategy.ServerSideApply,
        ),
      )) as T;
    } catch (err) {
      throw toKubeApiError(err, `apply ${obj.kind} ${obj.metadata?.namespace}/${obj.metadata?.name}`);
    }
  }

  async get<T extends KubeObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return (await this.counted('get', ref.kind, () =>
        this.objects.read({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, namespace: ref.namespace },
        }),
      )) as T;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw toKubeApiError(err, `get ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async delete(ref: ObjectRef): Promise<void> {
    try {
      await this.counted('delete', ref.kind, () =>
        this.objects.delete(
          { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
          undefined,
          undefined,
          undefined,
          undefined,
          'Background',
        ),
      );
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw toKubeApiError(err, `delete ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async patchStatus(ref: ObjectRef & { plural: string }, status: unknown): Promise<void> {
    const [group, version] = ref.apiVersion.split('/') as [string, string];
    try {
      await this.counted('patch', `${ref.kind}/status`, () =>
        this.custom.patchNamespacedCustomObjectStatus(
          { group, version, namespace: ref.namespace, plural: ref.plural, name: ref.name, body: { status } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
    } catch (err) {
      throw toKubeApiError(err, `patch status of ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  /**
   * Merge-patches labels of a Pod (`null` removes one). Only the role label of Redis pods is written this way
   * (RBAC: pods patch). A missing pod is not an error (it is gone, and its labels with it).
   */
  /**
   * Deletes a Pod only if it is still the one with `uid` (a precondition: never its replacement), with its
   * grace period. Already gone: done.
   */
  async deletePod(namespace: string, name: string, uid: string): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ namespace, name, body: { preconditions: { uid } } });
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return;
      throw toKubeApiError(err, `delete Pod ${namespace}/${name}`);
    }
  }

  async patchPodLabels(namespace: string, name: string, labels: Record<string, string | null>): Promise<void> {
    try {
      await this.core.patchNamespacedPod(
        { namespace, name, body: { metadata: { labels } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw toKubeApiError(err, `patch labels of Pod ${namespace}/${name}`);
    }
  }

  async event(e: EventInput): Promise<void> {
    const now = new Date();
    try {
      await this.counted('create', 'Event', () =>
        this.core.createNamespacedEvent({
          namespace: e.involved.namespace,
          body: {
            metadata: { generateName: `${e.involved.name}.`, namespace: e.involved.namespace },
            involvedObject: {
              apiVersion: e.involved.apiVersion,
              kind: e.involved.kind,
              name: e.involved.name,
              namespace: e.involved.namespace,
              ...(e.involved.uid ? { uid: e.involved.uid } : {}),
            },
            type: e.type,
            reason: e.reason,
            message: e.message,
            source: { component: this.component },
            reportingComponent: this.component,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        }),
      );
    } catch (err) {
      throw toKubeApiError(err, `create event ${e.reason} for ${e.involved.namespace}/${e.involved.name}`);
    }
  }
}
