import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterStatus } from '../api/v1alpha1/types.js';
import { KubeApiError, type EventInput, type KubeApi, type KubeObject, type ObjectRef } from '../k8s/kube-client.js';
import type { PodConfigResult, PodEndpoint } from '../redis/live-config.js';
import { cacheCluster, withGeneration, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';
import {
  AUTH_RETRY_MS,
  CONFIG_RETRY_MS,
  needsFirstPass,
  PROGRESS_RETRY_MS,
  reconcileCacheCluster,
  type ReconcileDeps,
} from './cache-cluster.js';

const now = new Date('2026-03-01T10:00:00Z');
const log = pino({ level: 'silent' });

/** Plain objects merge key by key (as server-side apply keeps fields it was not sent, like `status`); anything else is replaced. */
function merge(into: unknown, from: unknown): unknown {
  if (typeof into !== 'object' || into === null || Array.isArray(into)) return structuredClone(from);
  if (typeof from !== 'object' || from === null || Array.isArray(from)) return structuredClone(from);
  const out: Record<string, unknown> = { ...(into as Record<string, unknown>) };
  for (const [k, v] of Object.entries(from)) out[k] = merge(out[k], v);
  return out;
}

/**
 * The API server in memory: the same `KubeApi` the reconcile is given in production, over one store
 * that is also the informer cache. Every write is recorded.
 */
class InMemoryKube implements KubeApi {
  readonly objects = new Map<string, KubeObject>();
  readonly applied: KubeObject[] = [];
  readonly deleted: ObjectRef[] = [];
  readonly statusPatches: Array<{ ref: ObjectRef; status: CacheClusterStatus }> = [];
  readonly events: EventInput[] = [];
  /** When set, `apply` of this kind is refused with this error. */
  refuse?: { kind: string; error: Error };

  static key(kind: string, namespace: string, name: string): string {
    return `${kind}/${namespace}/${name}`;
  }
  put(obj: KubeObject): void {
    this.objects.set(InMemoryKube.key(obj.kind!, obj.metadata!.namespace!, obj.metadata!.name!), structuredClone(obj));
  }
  cached = (kind: string, namespace: string, name: string): KubeObject | undefined =>
    this.objects.get(InMemoryKube.key(kind, namespace, name));
  writes(): number {
    return this.applied.length + this.deleted.length + this.statusPatches.length + this.events.length;
  }

  apply<T extends KubeObject>(obj: T): Promise<T> {
    if (this.refuse && obj.kind === this.refuse.kind) return Promise.reject(this.refuse.error);
    this.applied.push(structuredClone(obj));
    const current = this.cached(obj.kind!, obj.metadata!.namespace!, obj.metadata!.name!);
    const next = merge(current, obj) as T;
    this.put(next);
    return Promise.resolve(next);
  }
  get<T extends KubeObject>(ref: ObjectRef): Promise<T | undefined> {
    return Promise.resolve(this.cached(ref.kind, ref.namespace, ref.name) as T | undefined);
  }
  delete(ref: ObjectRef): Promise<void> {
    this.deleted.push(ref);
    this.objects.delete(InMemoryKube.key(ref.kind, ref.namespace, ref.name));
    return Promise.resolve();
  }
  patchStatus(ref: ObjectRef & { plural: string }, status: unknown): Promise<void> {
    this.statusPatches.push({ ref, status: structuredClone(status) as CacheClusterStatus });
    const current = this.cached(ref.kind, ref.namespace, ref.name);
    if (current) this.put({ ...current, status: structuredClone(status) });
    return Promise.resolve();
  }
  event(e: EventInput): Promise<void> {
    this.events.push(e);
    return Promise.resolve();
  }
}

/** Every pod answers CONFIG GET with the desired settings; pod 0 is the primary. */
function podsRunDesired(calls: PodEndpoint[][]): ReconcileDeps['applyEviction'] {
  return (endpoints, desired) => {
    calls.push(endpoints);
    return Promise.resolve(
      endpoints.map((e, i): PodConfigResult => ({
        pod: e.pod,
        applied: true,
        changed: false,
        observed: { maxmemory: desired.maxmemory, maxmemoryPolicy: desired.maxmemoryPolicy },
        role: i === 0 ? 'master' : 'slave',
      })),
    );
  };
}

function setup(cc: CacheCluster) {
  const kube = new InMemoryKube();
  kube.put(cc as unknown as KubeObject);
  const evictionCalls: PodEndpoint[][] = [];
  const deps: ReconcileDeps = {
    kube,
    cached: kube.cached,
    applyEviction: podsRunDesired(evictionCalls),
    podAddress: (_ns, _pod, dnsName, port) => ({ host: dnsName, port }),
    now: () => now,
    log,
  };
  const current = () => kube.cached('CacheCluster', 'shop', 'sessions') as unknown as CacheCluster;
  return { kube, deps, evictionCalls, current };
}

const sessions = () =>
  cacheCluster(
    'sessions',
    withUid('uid-1'),
    withGeneration(1),
    withSpec({ topology: 'replication', replicas: 1, eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } }),
  );

/** The StatefulSet controller's part: every pod created, updated and ready. */
function statefulSetRuns(kube: InMemoryKube, pods: number): void {
  const sts = kube.cached('StatefulSet', 'shop', 'sessions')!;
  kube.put({
    ...sts,
    metadata: { ...sts.metadata, generation: 1 },
    status: {
      observedGeneration: 1,
      replicas: pods,
      readyReplicas: pods,
      updatedReplicas: pods,
      currentRevision: 'r1',
      updateRevision: 'r1',
    },
  });
}

describe('reconcileCacheCluster over an in-memory API server', () => {
  it('creates the children and reports Provisioning from the StatefulSet it applied', async () => {
    const { kube, deps, evictionCalls, current } = setup(sessions());

    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: PROGRESS_RETRY_MS });
    expect(kube.applied.map((o) => o.kind)[0]).toBe('ConfigMap');
    expect(new Set(kube.applied.map((o) => `${o.kind}/${o.metadata!.name}`))).toEqual(
      new Set([
        'ConfigMap/sessions-config',
        'Service/sessions-headless',
        'Service/sessions',
        'StatefulSet/sessions',
        'Service/sessions-replicas',
        'PodDisruptionBudget/sessions',
      ]),
    );
    expect(evictionCalls).toEqual([]); // no StatefulSet observed yet: no pod to configure
    expect(kube.statusPatches).toHaveLength(1);
    expect(kube.statusPatches[0]!.ref).toMatchObject({
      kind: 'CacheCluster',
      namespace: 'shop',
      name: 'sessions',
      plural: 'cachecluster' + 's',
    });
    // The first status already reads the StatefulSet the pass applied (its answer): no Pending in between.
    expect(current().status).toMatchObject({ phase: 'Provisioning', replicas: 0, ready: '0/2', primary: 'sessions-0' });
    // A new cluster coming up is news in its status, not in Events.
    expect(kube.events).toEqual([]);

    // The second pass observes the same StatefulSet in the cache (no pod is ready yet): nothing to apply.
    const second = await reconcileCacheCluster(deps, 'shop/sessions');
    expect(current().status?.phase).toBe('Provisioning');
    expect(kube.applied).toHaveLength(6);
    expect(second).toEqual({ kind: 'requeueAfter', ms: PROGRESS_RETRY_MS }); // not Ready yet: look again

    // Once nothing observed changes, a pass writes nothing.
    const before = kube.writes();
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(kube.writes()).toBe(before);
  });

  it('under a backlog of new CacheClusters, a first pass applies only the ConfigMap and the StatefulSet, and the status', async () => {
    const { kube, deps, evictionCalls, current } = setup(sessions());
    let waiting = true;
    deps.firstPassesWaiting = () => waiting;
    expect(needsFirstPass(kube.cached, 'shop/sessions')).toBe(true);

    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: 0 });
    expect(kube.applied.map((o) => `${o.kind}/${o.metadata!.name}`)).toEqual([
      'ConfigMap/sessions-config',
      'StatefulSet/sessions',
    ]);
    // The status reads the StatefulSet just applied.
    expect(kube.statusPatches).toHaveLength(1);
    expect(current().status?.phase).toBe('Provisioning');
    expect(evictionCalls).toEqual([]);
    expect(needsFirstPass(kube.cached, 'shop/sessions')).toBe(false);

    // The follow-up pass is a full one even while others still wait: the StatefulSet exists.
    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: PROGRESS_RETRY_MS });
    expect(new Set(kube.applied.slice(2).map((o) => `${o.kind}/${o.metadata!.name}`))).toEqual(
      new Set([
        'Service/sessions-headless',
        'Service/sessions',
        'Service/sessions-replicas',
        'PodDisruptionBudget/sessions',
      ]),
    );
    expect(current().status?.phase).toBe('Provisioning');
    expect(evictionCalls).toHaveLength(1);

    // With no backlog, a new CacheCluster gets a full first pass.
    waiting = false;
    const other = cacheCluster('other', withUid('uid-2'), withGeneration(1), withSpec({ topology: 'standalone' }));
    kube.put(other as unknown as KubeObject);
    kube.applied.length = 0;
    await reconcileCacheCluster(deps, 'shop/other');
    expect(kube.applied.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Service', 'Service', 'StatefulSet']);
    expect((kube.cached('CacheCluster', 'shop', 'other') as unknown as CacheCluster).status?.phase).toBe(
      'Provisioning',
    );
  });

  it('needsFirstPass: not for a CacheCluster that is gone, being deleted, or of topology cluster', () => {
    const { kube } = setup(sessions());
    expect(needsFirstPass(kube.cached, 'shop/nope')).toBe(false);
    kube.put(cacheCluster('sharded', withSpec({ topology: 'cluster' })) as unknown as KubeObject);
    expect(needsFirstPass(kube.cached, 'shop/sharded')).toBe(false);
    const deleting = cacheCluster('deleting');
    (deleting.metadata as { deletionTimestamp?: string }).deletionTimestamp = '2026-03-01T10:00:00Z';
    kube.put(deleting as unknown as KubeObject);
    expect(needsFirstPass(kube.cached, 'shop/deleting')).toBe(false);
  });

  it('reports Ready with events once the pods run the settings, then writes nothing on a second pass', async () => {
    const { kube, deps, evictionCalls, current } = setup(sessions());
    await reconcileCacheCluster(deps, 'shop/sessions');
    statefulSetRuns(kube, 2);
    kube.applied.length = 0;
    kube.statusPatches.length = 0;
    // The ConfigMap still renders what was desired at creation, so nothing is applied again.
    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
    expect(kube.applied).toEqual([]);
    expect(evictionCalls.at(-1)).toEqual([
      { pod: 'sessions-0', host: 'sessions-0.sessions-headless.shop.svc', port: 6379 },
      { pod: 'sessions-1', host: 'sessions-1.sessions-headless.shop.svc', port: 6379 },
    ]);
    expect(kube.statusPatches).toHaveLength(1);
    expect(current().status).toMatchObject({
      phase: 'Ready',
      ready: '2/2',
      primary: 'sessions-0',
      maxMemory: '64Mi',
      appliedConfig: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' },
    });
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'Ready'],
      ['Normal', 'ConfigApplied'],
    ]);
    expect(kube.events[0]!.involved).toEqual({
      apiVersion: 'cache.ripplecache.io/v1alpha1',
      kind: 'CacheCluster',
      namespace: 'shop',
      name: 'sessions',
      uid: 'uid-1',
    });

    const before = kube.writes();
    const calls = evictionCalls.length;
    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
    expect(evictionCalls).toHaveLength(calls + 1); // level-triggered: the pods are checked every pass
    expect(kube.writes()).toBe(before);
  });

  it('records EvictionSettingsApplied when a verified live change differs from the last one', async () => {
    const { kube, deps, current } = setup(sessions());
    await reconcileCacheCluster(deps, 'shop/sessions');
    statefulSetRuns(kube, 2);
    await reconcileCacheCluster(deps, 'shop/sessions');
    const cc = current();
    kube.put({
      ...cc,
      spec: { ...cc.spec, eviction: { policy: 'allkeys-lfu', maxMemory: '128Mi' } },
    } as unknown as KubeObject);
    kube.events.length = 0;

    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(kube.events).toEqual([
      expect.objectContaining({
        type: 'Normal',
        reason: 'EvictionSettingsApplied',
        message: 'maxmemory 64Mi -> 128Mi, maxmemory-policy allkeys-lru -> allkeys-lfu, applied live on 2/2 pods',
      }),
    ]);
    // Every pod runs the new settings, so redis.conf carries them now.
    const conf = kube.cached('ConfigMap', 'shop', 'sessions-config')!.data as Record<string, string>;
    expect(conf['redis.conf']).toMatch(/^maxmemory 134217728$/m);
    expect(conf['redis.conf']).toMatch(/^maxmemory-policy allkeys-lfu$/m);
  });

  it('keeps the rendered settings while a pod does not run the new ones, and looks again soon', async () => {
    const { kube, deps, current } = setup(sessions());
    await reconcileCacheCluster(deps, 'shop/sessions');
    statefulSetRuns(kube, 2);
    const cc = current();
    kube.put({
      ...cc,
      spec: { ...cc.spec, eviction: { policy: 'allkeys-lru', maxMemory: '128Mi' } },
    } as unknown as KubeObject);
    deps.applyEviction = (endpoints, desired) =>
      Promise.resolve(
        endpoints.map((e, i) =>
          i === 0
            ? { pod: e.pod, applied: true, changed: true, observed: desired, role: 'master' }
            : { pod: e.pod, applied: false, changed: false, message: 'connection refused' },
        ),
      );

    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: CONFIG_RETRY_MS });
    const conf = kube.cached('ConfigMap', 'shop', 'sessions-config')!.data as Record<string, string>;
    expect(conf['redis.conf']).toMatch(/^maxmemory 67108864$/m);
    expect(current().status?.conditions?.find((c) => c.type === 'ConfigApplied')).toMatchObject({
      status: 'False',
      reason: 'ApplyFailed',
    });
  });

  it('counts a CONFIG SET that failed on a pod not running yet as waiting, and on a running pod as failed', async () => {
    const { kube, deps } = setup(sessions());
    const counted: string[] = [];
    deps.onConfigApply = (result) => counted.push(result);
    const refused = (endpoints: PodEndpoint[]) =>
      Promise.resolve(endpoints.map((e) => ({ pod: e.pod, applied: false, changed: false, message: 'refused' })));
    deps.applyEviction = refused;
    await reconcileCacheCluster(deps, 'shop/sessions');
    statefulSetRuns(kube, 0); // the StatefulSet exists, no pod is ready: waiting (as ConfigApplied=Unknown)
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(counted).toEqual(['waiting', 'waiting']);
    counted.length = 0;
    statefulSetRuns(kube, 2); // both ready, and both refuse: failed
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(counted).toEqual(['failed', 'failed']);
  });

  it('applies the write fence of durability replicated with the eviction settings, and none for standalone', async () => {
    const { kube, deps } = setup(sessions());
    const asked: unknown[] = [];
    const inner = deps.applyEviction;
    deps.applyEviction = (endpoints, desired, password) => {
      asked.push(desired);
      return inner(endpoints, desired, password);
    };
    await reconcileCacheCluster(deps, 'shop/sessions');
    statefulSetRuns(kube, 2);
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(asked.at(-1)).toEqual({
      maxmemory: 64 * 1024 * 1024,
      maxmemoryPolicy: 'allkeys-lru',
      persistence: { appendonly: 'no', save: '' },
      fence: { minReplicasToWrite: 1, minReplicasMaxLag: 3 },
    });

    const standalone = setup(
      cacheCluster(
        'sessions',
        withUid('uid-1'),
        withGeneration(1),
        withSpec({ eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } }),
      ),
    );
    const standaloneAsked: unknown[] = [];
    standalone.deps.applyEviction = (endpoints, desired) => {
      standaloneAsked.push(desired);
      return podsRunDesired([])(endpoints, desired);
    };
    await reconcileCacheCluster(standalone.deps, 'shop/sessions');
    statefulSetRuns(standalone.kube, 1);
    await reconcileCacheCluster(standalone.deps, 'shop/sessions');
    expect(standaloneAsked.at(-1)).toEqual({
      maxmemory: 64 * 1024 * 1024,
      maxmemoryPolicy: 'allkeys-lru',
      persistence: { appendonly: 'no', save: '' },
    });
  });

  it('reports durability replicated without a replica as a spec error, applying nothing', async () => {
    const { deps, current, evictionCalls } = setup(
      cacheCluster(
        'sessions',
        withUid('uid-1'),
        withGeneration(1),
        withSpec({
          topology: 'replication',
          replicas: 0,
          eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' },
          durability: { mode: 'replicated' },
        }),
      ),
    );
    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
    expect(evictionCalls).toHaveLength(0);
    expect(current().status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidDurability',
    });
  });

  it('shows a refused child as ReconcileError with a Warning event, and rethrows', async () => {
    const { kube, deps, current } = setup(sessions());
    const denied = new KubeApiError('admission webhook "quota" denied the request', 403);
    kube.refuse = { kind: 'StatefulSet', error: denied };

    await expect(reconcileCacheCluster(deps, 'shop/sessions')).rejects.toBe(denied);
    expect(kube.statusPatches).toHaveLength(1);
    expect(current().status?.phase).toBe('Failed');
    expect(current().status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ReconcileError',
      message: 'admission webhook "quota" denied the request',
    });
    expect(kube.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: 'ReconcileError',
        message: 'admission webhook "quota" denied the request',
      }),
    ]);

    // The same refusal again: the status already says so, nothing more is written.
    const before = kube.statusPatches.length + kube.events.length;
    await expect(reconcileCacheCluster(deps, 'shop/sessions')).rejects.toBe(denied);
    expect(kube.statusPatches.length + kube.events.length).toBe(before);
  });

  it("never deletes nor takes over another CacheCluster's child of the same name (sessions-bridge)", async () => {
    const { kube, deps, current } = setup(sessions());
    deps.bridgeImage = 'img:1';
    // The client Service of a CacheCluster literally named `sessions-bridge`: the name of the bridge
    // Service of `sessions` in earlier versions, which `sessions` deletes if it is its own.
    const theirs = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'sessions-bridge',
        namespace: 'shop',
        ownerReferences: [
          {
            apiVersion: 'cache.ripplecache.io/v1alpha1',
            kind: 'CacheCluster',
            name: 'sessions-bridge',
            uid: 'uid-2',
            controller: true,
          },
        ],
      },
      spec: { ports: [{ port: 6379 }] },
    } as KubeObject;
    kube.put(theirs);
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(kube.deleted.filter((r) => r.name === 'sessions-bridge')).toEqual([]);
    expect(kube.cached('Service', 'shop', 'sessions-bridge')).toEqual(theirs);
    // An earlier version's bridge Service of `sessions` itself does go.
    kube.put({
      ...theirs,
      metadata: {
        ...theirs.metadata,
        ownerReferences: [{ ...theirs.metadata!.ownerReferences![0]!, name: 'sessions', uid: 'uid-1' }],
      },
    });
    await reconcileCacheCluster(deps, 'shop/sessions');
    expect(kube.deleted.filter((r) => r.name === 'sessions-bridge').map((r) => r.kind)).toEqual(['Service']);
    // A child name taken by another owner is never applied over: the reconcile fails, saying so.
    kube.put({ ...theirs, metadata: { ...theirs.metadata, name: 'sessions-headless' } });
    await expect(reconcileCacheCluster(deps, 'shop/sessions')).rejects.toThrow(
      /Service shop\/sessions-headless already exists and belongs to CacheCluster sessions-bridge/,
    );
    expect(current().status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('ReconcileError');
    expect(kube.cached('Service', 'shop', 'sessions-headless')!.metadata!.ownerReferences![0]!.uid).toBe('uid-2');
  });

  it('rethrows a conflict without touching the status (the controller retries at once)', async () => {
    const { kube, deps } = setup(sessions());
    const conflict = new KubeApiError('the object has been modified', 409);
    kube.refuse = { kind: 'ConfigMap', error: conflict };

    await expect(reconcileCacheCluster(deps, 'shop/sessions')).rejects.toBe(conflict);
    expect(kube.statusPatches).toEqual([]);
    expect(kube.events).toEqual([]);
  });

  it('reports an invalid spec as Failed without creating anything', async () => {
    const { kube, deps, current } = setup(
      cacheCluster('sessions', withUid('uid-1'), withGeneration(1), withSpec({ eviction: { maxMemoryPercent: 50 } })),
    );

    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
    expect(kube.applied).toEqual([]);
    expect(current().status?.phase).toBe('Failed');
    expect(current().status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidEviction',
      message: 'eviction.maxMemoryPercent needs resources.limits.memory',
    });
    // Again: nothing new to say.
    const before = kube.writes();
    expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
    expect(kube.writes()).toBe(before);
  });

  it('does nothing for a CacheCluster that is gone, and says so', async () => {
    const { kube, deps } = setup(sessions());
    const gone: string[] = [];
    deps.onGone = (ns, name) => gone.push(`${ns}/${name}`);

    expect(await reconcileCacheCluster(deps, 'shop/other')).toEqual({ kind: 'done' });
    expect(gone).toEqual(['shop/other']);
    expect(kube.writes()).toBe(0);
  });

  describe('spec.auth.secretRef naming a Secret or key that does not exist', () => {
    const PASSWORD = 'hunter2-not-in-status';
    const withAuth = () =>
      cacheCluster(
        'sessions',
        withUid('uid-1'),
        withGeneration(1),
        withSpec({
          topology: 'replication',
          replicas: 1,
          eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' },
          auth: { secretRef: { name: 'sessions-auth', key: 'password' } },
        }),
      );
    const secret = (data: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'sessions-auth', namespace: 'shop' },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    });
    const ready = (cc: CacheCluster) => cc.status?.conditions?.find((c) => c.type === 'Ready');
    const restartHash = (kube: InMemoryKube) =>
      (kube.cached('StatefulSet', 'shop', 'sessions')!.spec as any).template.metadata.annotations[
        'cache.ripplecache.io/restart-hash'
      ] as string;

    it('reports the missing Secret, then its missing key, creating nothing; recovers once the key exists', async () => {
      const { kube, deps, evictionCalls, current } = setup(withAuth());

      // No Secret: no child (no pod could start without its password), a status and a Warning naming it.
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: AUTH_RETRY_MS });
      expect(kube.applied).toEqual([]);
      expect(evictionCalls).toEqual([]);
      const missing =
        'Secret shop/sessions-auth (spec.auth.secretRef) not found: the Redis pods take their password from its ' +
        'key "password"; no child is created or updated until it exists';
      expect(current().status?.phase).toBe('Failed');
      expect(ready(current())).toMatchObject({ status: 'False', reason: 'AuthSecretMissing', message: missing });
      expect(current().status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
        status: 'True',
        reason: 'AuthSecretMissing',
      });
      expect(kube.events).toEqual([
        expect.objectContaining({ type: 'Warning', reason: 'AuthSecretMissing', message: missing }),
      ]);
      // Looked at again (the retry, or a resync): nothing new to say.
      const before = kube.writes();
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: AUTH_RETRY_MS });
      expect(kube.writes()).toBe(before);

      // The Secret appears without the key.
      kube.put(secret({ pass: PASSWORD }));
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: AUTH_RETRY_MS });
      expect(kube.applied).toEqual([]);
      const noKey =
        'Secret shop/sessions-auth (spec.auth.secretRef) has no key "password": the Redis pods take their ' +
        'password from it; no child is created or updated until it does';
      expect(ready(current())).toMatchObject({ status: 'False', reason: 'AuthSecretKeyMissing', message: noKey });
      expect(kube.events.slice(1)).toEqual([
        expect.objectContaining({ type: 'Warning', reason: 'AuthSecretKeyMissing', message: noKey }),
      ]);

      // The key, empty: Redis would run without a password; still nothing applied.
      kube.put(secret({ password: '' }));
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: AUTH_RETRY_MS });
      expect(kube.applied).toEqual([]);
      expect(ready(current())?.message).toMatch(/has an empty key "password": Redis would run without a password/);

      // With the key: the children, with the password's digest in the restart hash; then Ready.
      kube.put(secret({ password: PASSWORD }));
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({
        kind: 'requeueAfter',
        ms: PROGRESS_RETRY_MS,
      });
      expect(kube.applied.map((o) => o.kind)).toContain('StatefulSet');
      expect(current().status?.phase).toBe('Provisioning');
      expect(current().status?.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('False');
      statefulSetRuns(kube, 2);
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
      expect(current().status?.phase).toBe('Ready');
      expect(JSON.stringify([kube.statusPatches, kube.events, kube.applied])).not.toContain(PASSWORD);
    });

    it('a running cluster whose Secret goes away: Degraded, its pods left as they are (no roll), Ready again when it is back', async () => {
      const { kube, deps, evictionCalls, current } = setup(withAuth());
      const passwords: Array<[string | undefined, string | undefined]> = [];
      const inner = deps.applyEviction;
      deps.applyEviction = (endpoints, desired, password) => {
        passwords.push([password, desired.previousPassword]);
        return inner(endpoints, desired, password);
      };
      kube.put(secret({ password: PASSWORD }));
      await reconcileCacheCluster(deps, 'shop/sessions');
      statefulSetRuns(kube, 2);
      await reconcileCacheCluster(deps, 'shop/sessions');
      expect(current().status?.phase).toBe('Ready');
      const hash = restartHash(kube);
      const applied = kube.applied.length;
      const calls = evictionCalls.length;
      kube.events.length = 0;

      await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'shop', name: 'sessions-auth' });
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'requeueAfter', ms: AUTH_RETRY_MS });
      // Without the password's digest the pod template would change: nothing is applied, no pod is asked.
      expect(kube.applied).toHaveLength(applied);
      expect(evictionCalls).toHaveLength(calls);
      expect(current().status?.phase).toBe('Degraded');
      expect(current().status?.ready).toBe('2/2');
      expect(ready(current())).toMatchObject({ status: 'False', reason: 'AuthSecretMissing' });
      expect(kube.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'AuthSecretMissing' })]);

      // The same password back: Ready, the same pod template (no roll), no rotation in progress.
      kube.put(secret({ password: PASSWORD }));
      expect(await reconcileCacheCluster(deps, 'shop/sessions')).toEqual({ kind: 'done' });
      expect(current().status?.phase).toBe('Ready');
      expect(restartHash(kube)).toBe(hash);
      expect(kube.applied).toHaveLength(applied);
      expect(evictionCalls.at(-1)!.map((e) => e.pod)).toEqual(['sessions-0', 'sessions-1']);
      // The pods are asked with the password they run; no previous one (the Secret did not change).
      expect(passwords.at(-1)).toEqual([PASSWORD, undefined]);
    });
  });
});
