import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec, CacheClusterStatus, Condition } from '../api/v1alpha1/types.js';
import { authSecretError } from './auth-secret-error.js';
import { computeStatus, PHASE_RULES, statusEqual, unsupportedFields } from './compute-status.js';
import type { ComputeStatusInput, ObservedStatefulSet } from './compute-status.js';
import { cacheCluster, withGeneration, withSpec, withStatus, withUid } from '../../../test/fixtures/cache-cluster.js';

const now = new Date('2026-03-01T10:00:00Z');
const later = new Date('2026-03-01T11:00:00Z');

const cc = (spec: CacheClusterSpec, status?: CacheClusterStatus, generation = 4): CacheCluster =>
  cacheCluster(
    'sessions',
    withUid('uid-1'),
    withGeneration(generation),
    withSpec(spec),
    ...(status ? [withStatus(status)] : []),
  );

const sts = (
  pods: number,
  ready: number,
  extra: Partial<NonNullable<ObservedStatefulSet['status']>> = {},
): ObservedStatefulSet => ({
  metadata: { generation: 2 },
  spec: { replicas: pods },
  status: {
    observedGeneration: 2,
    replicas: pods,
    readyReplicas: ready,
    updatedReplicas: pods,
    currentRevision: 'r1',
    updateRevision: 'r1',
    ...extra,
  },
});

const applied = (pods: string[], maxmemory = 67108864, policy = 'allkeys-lru') => ({
  desired: { maxmemory, maxmemoryPolicy: policy },
  pods: pods.map((pod) => ({ pod, applied: true, observed: { maxmemory, maxmemoryPolicy: policy } })),
});

const cond = (s: CacheClusterStatus, type: string): Condition | undefined => s.conditions?.find((c) => c.type === type);
const spec: CacheClusterSpec = { eviction: { policy: 'allkeys-lru', maxMemory: '64Mi' } };
const base = (over: Partial<ComputeStatusInput> = {}): ComputeStatusInput => ({
  cc: cc(spec),
  unsupported: [],
  now,
  ...over,
});

describe('computeStatus phases', () => {
  it('Pending before the StatefulSet exists', () => {
    const s = computeStatus(base());
    expect(s.phase).toBe('Pending');
    expect(s.observedGeneration).toBe(4);
    expect(s.replicas).toBe(0);
    expect(s.readyReplicas).toBe(0);
    expect(s.endpoints).toEqual({ service: 'sessions.shop.svc:6379' });
    expect(s).not.toHaveProperty('primary');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'StatefulSetNotCreated', observedGeneration: 4 });
    expect(cond(s, 'Progressing')?.status).toBe('True');
    expect(cond(s, 'Degraded')?.status).toBe('False');
    expect(cond(s, 'ConfigApplied')?.status).toBe('Unknown');
    expect(cond(s, 'Unsupported')).toMatchObject({ status: 'False', reason: 'AllFieldsSupported' });
  });

  it('Provisioning while pods start: a new cluster waits for its pods, a configured one has pods not ready', () => {
    const s = computeStatus(base({ statefulSet: sts(1, 0) }));
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'WaitingForPods' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForPods' });
    expect(s.primary).toBe('sessions-0');
    const configured = computeStatus(
      base({
        cc: cc(spec, { phase: 'Provisioning', appliedConfig: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' } }),
        statefulSet: sts(1, 0),
      }),
    );
    expect(cond(configured, 'Ready')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
  });

  it('a new cluster whose pods cannot be reached yet is waiting for pods, not failing to configure them', () => {
    const unreachable = (pods: string[]) => ({
      desired: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' },
      pods: pods.map((pod) => ({ pod, applied: false, message: `${pod}: getaddrinfo ENOTFOUND` })),
    });
    const r = cc({ ...spec, topology: 'replication', replicas: 2 });
    const s = computeStatus(
      base({ cc: r, statefulSet: sts(3, 0), configResult: unreachable(['sessions-0', 'sessions-1', 'sessions-2']) }),
    );
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'Unknown', reason: 'WaitingForPods' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForPods' });
    expect(cond(s, 'Degraded')?.status).toBe('False');
    // One pod ready but unreachable, two not ready: still explained by the two.
    const partly = computeStatus(
      base({ cc: r, statefulSet: sts(3, 1), configResult: unreachable(['sessions-1', 'sessions-2']) }),
    );
    expect(cond(partly, 'ConfigApplied')).toMatchObject({ status: 'Unknown', reason: 'WaitingForPods' });
    // Every pod ready, yet one cannot be configured: that is a failure.
    const failing = computeStatus(
      base({
        cc: r,
        statefulSet: sts(3, 3),
        configResult: {
          ...applied(['sessions-0', 'sessions-1']),
          pods: [...applied(['sessions-0', 'sessions-1']).pods, ...unreachable(['sessions-2']).pods],
        },
      }),
    );
    expect(cond(failing, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
  });

  it('reports a failed child write as ReconcileError: Failed when new, Degraded once it ran', () => {
    const msg = 'apply StatefulSet shop/sessions: admission webhook denied the request';
    const s = computeStatus(base({ reconcileError: msg }));
    expect(s.phase).toBe('Failed');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ReconcileError', message: msg });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ReconcileError' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'ReconcileError' });
    const running = computeStatus(
      base({ cc: cc(spec, { phase: 'Ready' }), statefulSet: sts(1, 1), reconcileError: msg }),
    );
    expect(running.phase).toBe('Degraded');
    expect(cond(running, 'Ready')).toMatchObject({ status: 'False', reason: 'ReconcileError', message: msg });
  });

  it('reports a missing auth Secret or key by name (never a password): Failed when new, Degraded once it ran', () => {
    const secret = authSecretError({ missing: 'secret', namespace: 'shop', name: 'sessions-auth', key: 'password' });
    expect(secret).toEqual({
      reason: 'AuthSecretMissing',
      message:
        'Secret shop/sessions-auth (spec.auth.secretRef) not found: the Redis pods take their password from its ' +
        'key "password"; no child is created or updated until it exists',
    });
    const key = authSecretError({ missing: 'key', namespace: 'shop', name: 'sessions-auth', key: 'password' });
    expect(key).toEqual({
      reason: 'AuthSecretKeyMissing',
      message:
        'Secret shop/sessions-auth (spec.auth.secretRef) has no key "password": the Redis pods take their ' +
        'password from it; no child is created or updated until it does',
    });

    const s = computeStatus(base({ authError: secret }));
    expect(s.phase).toBe('Failed');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', ...secret });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', ...secret });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'AuthSecretMissing' });
    // A running cluster keeps its pods (they read the password when they started): Degraded, counted as they are.
    const running = computeStatus(base({ cc: cc(spec, { phase: 'Ready' }), statefulSet: sts(1, 1), authError: key }));
    expect(running.phase).toBe('Degraded');
    expect(running.ready).toBe('1/1');
    expect(cond(running, 'Ready')).toMatchObject({ status: 'False', ...key });
    expect(cond(running, 'Degraded')).toMatchObject({ status: 'True', reason: 'AuthSecretKeyMissing' });
  });

  it('shows ready/desired pods and the verified maxmemory as a quantity', () => {
    const s = computeStatus(
      base({ cc: cc({ ...spec, topology: 'replication', replicas: 2 }), statefulSet: sts(3, 2) }),
    );
    expect(s.ready).toBe('2/3');
    expect(s).not.toHaveProperty('maxMemory');
    const r = computeStatus(base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']) }));
    expect(r.ready).toBe('1/1');
    expect(r.maxMemory).toBe('64Mi');
  });

  it.each<[string, () => ComputeStatusInput]>([
    ['a new update revision', () => base({ statefulSet: sts(1, 1, { updateRevision: 'r2' }) })],
    ['a generation not observed yet', () => base({ statefulSet: { ...sts(1, 1), metadata: { generation: 3 } } })],
    ['scaling up', () => base({ cc: cc({ ...spec, topology: 'replication', replicas: 2 }), statefulSet: sts(1, 1) })],
  ])('Provisioning while the StatefulSet rolls out: %s', (_what, input) => {
    const s = computeStatus(input());
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'RollingOut' });
  });

  it('OnDelete (replication): Ready once every pod runs the update revision, though currentRevision lags', () => {
    // The StatefulSet controller never moves currentRevision with OnDelete: updatedReplicas tells instead.
    const onDelete = (updated: number): ObservedStatefulSet => {
      const s = sts(3, 3, { updateRevision: 'r2', updatedReplicas: updated });
      return { ...s, spec: { ...s.spec, updateStrategy: { type: 'OnDelete' } } };
    };
    const input = (updated: number) =>
      base({
        cc: cc({ ...spec, topology: 'replication', replicas: 2 }),
        statefulSet: onDelete(updated),
        configResult: applied(['sessions-0', 'sessions-1', 'sessions-2']),
      });
    expect(computeStatus(input(2)).phase).toBe('Provisioning');
    expect(computeStatus(input(3)).phase).toBe('Ready');
  });

  it('Provisioning while pods are ready but the eviction settings are not verified yet', () => {
    const s = computeStatus(base({ statefulSet: sts(1, 1) }));
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'Unknown', reason: 'NotVerified' });
  });

  it('Ready when every pod is ready and runs the settings', () => {
    const s = computeStatus(base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']) }));
    expect(s.phase).toBe('Ready');
    expect(s.appliedConfig).toEqual({
      maxmemory: 67108864,
      maxmemoryPolicy: 'allkeys-lru',
      pods: [{ pod: 'sessions-0', maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru', applied: true }],
    });
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'ClusterReady',
      lastTransitionTime: '2026-03-01T10:00:00Z',
    });
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'Stable' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
  });

  it('does not change on a reconcile without CONFIG calls when the verified settings match the spec', () => {
    const first = computeStatus(base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']) }));
    const second = computeStatus({ ...base({ statefulSet: sts(1, 1) }), cc: cc(spec, first), now: later });
    expect(second.phase).toBe('Ready');
    expect(statusEqual(second, first)).toBe(true);
    expect(cond(second, 'Ready')?.lastTransitionTime).toBe('2026-03-01T10:00:00Z');
  });

  it('reports the primary Redis names, and Degraded (MultiplePrimaries) when two pods are primaries', () => {
    const repl = cc({ ...spec, topology: 'replication', replicas: 2 });
    const pods = ['sessions-0', 'sessions-1', 'sessions-2'];
    const one = computeStatus(
      base({
        cc: repl,
        statefulSet: sts(3, 3),
        configResult: applied(pods),
        primary: 'sessions-0',
        primaries: ['sessions-0'],
      }),
    );
    expect(one.phase).toBe('Ready');
    expect(one.primary).toBe('sessions-0');
    const two = computeStatus(
      base({ cc: repl, statefulSet: sts(3, 3), configResult: applied(pods), primaries: ['sessions-0', 'sessions-2'] }),
    );
    expect(two.phase).toBe('Degraded');
    expect(cond(two, 'Degraded')).toMatchObject({ status: 'True', reason: 'MultiplePrimaries' });
    expect(cond(two, 'Ready')?.message).toMatch(/sessions-0, sessions-2 all report role master/);
    // After a failover the primary on record is not pod 0: the message names the one replicas must follow.
    const afterFailover = computeStatus(
      base({
        cc: repl,
        statefulSet: sts(3, 3),
        configResult: applied(pods),
        primary: 'sessions-2',
        primaries: ['sessions-0', 'sessions-2'],
      }),
    );
    expect(cond(afterFailover, 'Ready')?.message).toMatch(/replicas must follow sessions-2$/);
    // A standalone pod is always its own primary: never a split brain.
    expect(
      computeStatus(base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']), primaries: ['sessions-0'] }))
        .phase,
    ).toBe('Ready');
  });

  it('Degraded when a ready cluster loses a pod; only changed conditions get a new transition time', () => {
    const ready = computeStatus(
      base({
        cc: cc({ ...spec, topology: 'replication', replicas: 2 }),
        statefulSet: sts(3, 3),
        configResult: applied(['sessions-0', 'sessions-1', 'sessions-2']),
      }),
    );
    expect(ready.phase).toBe('Ready');
    const s = computeStatus({
      cc: cc({ ...spec, topology: 'replication', replicas: 2 }, ready),
      statefulSet: sts(3, 2),
      unsupported: [],
      now: later,
    });
    expect(s.phase).toBe('Degraded');
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'PodsNotReady',
      lastTransitionTime: '2026-03-01T11:00:00Z',
    });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', lastTransitionTime: '2026-03-01T11:00:00Z' });
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'True', lastTransitionTime: '2026-03-01T10:00:00Z' });
    expect(s.appliedConfig?.maxmemory).toBe(67108864);
  });

  it('a pod that cannot be reached while the settings are unchanged is no settings failure', () => {
    const verified = { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' };
    const c = cc({ ...spec, topology: 'replication', replicas: 2 }, { phase: 'Ready', appliedConfig: verified });
    const result = {
      desired: verified,
      pods: [
        { pod: 'sessions-0', applied: true, observed: verified },
        { pod: 'sessions-1', applied: true, observed: verified },
        { pod: 'sessions-2', applied: false, message: 'connect ECONNREFUSED' },
      ],
    };
    // The StatefulSet has not noticed yet (3 ready), then has (2 ready): ConfigApplied stays True throughout.
    for (const readyPods of [3, 2]) {
      const s = computeStatus({ cc: c, statefulSet: sts(3, readyPods), unsupported: [], now, configResult: result });
      expect(cond(s, 'ConfigApplied')).toMatchObject({
        status: 'True',
        reason: 'Applied',
        message:
          'maxmemory=67108864 maxmemory-policy=allkeys-lru on 2/2 pods that answered; sessions-2 not reachable (it runs them from its redis.conf when it starts)',
      });
      expect(s.phase).toBe(readyPods === 3 ? 'Ready' : 'Degraded');
    }
    // Changed settings a pod could not get: a failure, as before.
    const changed = computeStatus({
      cc: c,
      statefulSet: sts(3, 3),
      unsupported: [],
      now,
      configResult: { ...result, desired: { maxmemory: 1048576, maxmemoryPolicy: 'allkeys-lru' } },
    });
    expect(cond(changed, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
  });

  it('Degraded when CONFIG SET fails on a pod, keeping the last verified settings', () => {
    const c = cc(
      { ...spec, topology: 'replication', replicas: 1 },
      { appliedConfig: { maxmemory: 1048576, maxmemoryPolicy: 'noeviction' } },
    );
    const s = computeStatus({
      cc: c,
      statefulSet: sts(2, 2),
      unsupported: [],
      now,
      configResult: {
        desired: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' },
        pods: [
          { pod: 'sessions-0', applied: true, observed: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' } },
          { pod: 'sessions-1', applied: false, message: 'connection refused' },
        ],
      },
    });
    expect(s.phase).toBe('Degraded');
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'ConfigApplied')?.message).toContain('sessions-1: connection refused');
    expect(s.appliedConfig).toEqual({
      maxmemory: 1048576,
      maxmemoryPolicy: 'noeviction',
      pods: [
        { pod: 'sessions-0', maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru', applied: true },
        { pod: 'sessions-1', maxmemory: 0, maxmemoryPolicy: '', applied: false, message: 'connection refused' },
      ],
    });
  });

  it('topology cluster: Provisioning while the cluster forms, Ready once every slot is assigned and the state ok', () => {
    const clusterCc = cc({ topology: 'cluster', shards: 3, replicas: 1 });
    const shards = [0, 1, 2].map((index) => ({
      index,
      slots: '',
      slotCount: 0,
      replicas: [] as string[],
      state: 'pending' as const,
    }));
    const forming = computeStatus(
      base({
        cc: clusterCc,
        statefulSet: sts(6, 6),
        configResult: applied(['c-0']),
        cluster: { state: 'fail', slotsAssigned: 0, shards, resharding: undefined, waiting: 'waiting for MEET' },
      }),
    );
    expect(forming.phase).toBe('Provisioning');
    expect(cond(forming, 'Ready')).toMatchObject({ status: 'False', reason: 'ClusterBootstrapping' });
    expect(cond(forming, 'Ready')?.message).toContain('0 of 16384 slots assigned; waiting for MEET');
    expect(cond(forming, 'Unsupported')).toMatchObject({ status: 'False' });
    const formed = computeStatus(
      base({
        cc: clusterCc,
        statefulSet: sts(6, 6),
        configResult: applied(['c-0']),
        cluster: { state: 'ok', slotsAssigned: 16384, shards, resharding: undefined },
      }),
    );
    expect(formed.phase).toBe('Ready');
    expect(formed.slotsAssigned).toBe(16384);
    expect(formed.clusterState).toBe('ok');
    expect(formed.shards).toEqual(shards);
    expect(formed.primary).toBeUndefined();
    expect(formed.currentReplicas).toBe(1);
    const lost = computeStatus(
      base({
        cc: clusterCc,
        statefulSet: sts(6, 5),
        cluster: {
          state: 'ok',
          slotsAssigned: 16384,
          shards: [{ ...shards[0]!, state: 'primaryLost' }, shards[1]!, shards[2]!],
          resharding: undefined,
        },
      }),
    );
    expect(lost.phase).toBe('Degraded');
    // The lost primary stays on record while Redis Cluster promotes a replica.
    const lostAgain = computeStatus(
      base({
        cc: { ...clusterCc, status: { shards: [{ ...shards[0]!, primary: 'c-shard-0-0', state: 'ok' }] } },
        statefulSet: sts(6, 5),
        cluster: {
          state: 'ok',
          slotsAssigned: 16384,
          shards: [{ ...shards[0]!, state: 'primaryLost' }],
          resharding: undefined,
        },
      }),
    );
    expect(lostAgain.shards?.[0]).toMatchObject({ primary: 'c-shard-0-0', state: 'primaryLost' });
    expect(cond(lost, 'Ready')).toMatchObject({ reason: 'ShardPrimaryLost' });
    const resharding = computeStatus(
      base({
        cc: clusterCc,
        statefulSet: sts(6, 6),
        configResult: applied(['c-0']),
        cluster: {
          state: 'ok',
          slotsAssigned: 16384,
          shards,
          resharding: {
            toShards: 4,
            slotsToMove: 4096,
            slotsRemaining: 96,
            keysMoved: 10,
            startedAt: '2026-01-01T00:00:00Z',
          },
        },
      }),
    );
    expect(resharding.phase).toBe('Provisioning');
    expect(cond(resharding, 'Ready')?.message).toBe('moving slots to reach 4 shards: 4000 of 4096 moved, 10 keys');
    expect(resharding.resharding?.slotsRemaining).toBe(96);
  });

  it('Failed for a spec the operator cannot realise, even when CEL let it through', () => {
    const s = computeStatus(base({ cc: cc({ eviction: { maxMemoryPercent: 50 } }), statefulSet: sts(1, 1) }));
    expect(s.phase).toBe('Failed');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidEviction' });
    const reported = computeStatus(base({ specError: { reason: 'InvalidSomething', message: 'no' } }));
    expect(cond(reported, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSomething', message: 'no' });
  });

  it('takes lastFlushTime from the CronJob (Date or string) and the primary from the caller', () => {
    const s = computeStatus(
      base({
        statefulSet: sts(1, 1),
        flushCronJob: { status: { lastSuccessfulTime: new Date('2026-03-01T02:00:00.000Z') } },
        primary: 'sessions-1',
      }),
    );
    expect(s.lastFlushTime).toBe('2026-03-01T02:00:00Z');
    expect(s.primary).toBe('sessions-1');
    const kept = computeStatus(base({ cc: cc(spec, { lastFlushTime: '2026-02-28T02:00:00Z' }) }));
    expect(kept.lastFlushTime).toBe('2026-02-28T02:00:00Z');
  });

  it('is deterministic', () => {
    const input = base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']) });
    expect(computeStatus(input)).toEqual(computeStatus(structuredClone(input)));
  });
});

describe('the phase rules, first match wins', () => {
  const msg = 'apply StatefulSet shop/sessions: denied';
  const repl = cc({ ...spec, topology: 'replication', replicas: 2 });
  const pods3 = ['sessions-0', 'sessions-1', 'sessions-2'];
  const wasReady = { phase: 'Ready' as const, appliedConfig: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' } };
  it.each<[string, ComputeStatusInput, string, string]>([
    [
      'a spec error, before everything else',
      base({ specError: { reason: 'InvalidSomething', message: 'no' }, reconcileError: msg, statefulSet: sts(1, 0) }),
      'Failed',
      'InvalidSomething',
    ],
    [
      'a missing auth Secret, before a reconcile error',
      base({ authError: { reason: 'AuthSecretMissing', message: 'no' }, reconcileError: msg, statefulSet: sts(1, 0) }),
      'Failed',
      'AuthSecretMissing',
    ],
    [
      'a missing auth Secret key once it ran',
      base({
        cc: cc(spec, wasReady),
        statefulSet: sts(1, 1),
        authError: { reason: 'AuthSecretKeyMissing', message: 'no' },
      }),
      'Degraded',
      'AuthSecretKeyMissing',
    ],
    ['a reconcile error on a new cluster', base({ reconcileError: msg }), 'Failed', 'ReconcileError'],
    [
      'a reconcile error once it ran',
      base({ cc: cc(spec, wasReady), statefulSet: sts(1, 0), reconcileError: msg }),
      'Degraded',
      'ReconcileError',
    ],
    ['no StatefulSet', base(), 'Pending', 'StatefulSetNotCreated'],
    [
      'rolling out, before pods not ready',
      base({ statefulSet: sts(1, 0, { updateRevision: 'r2' }) }),
      'Provisioning',
      'RollingOut',
    ],
    ['pods not ready on a new cluster', base({ statefulSet: sts(1, 0) }), 'Provisioning', 'WaitingForPods'],
    [
      'pods not ready once it ran',
      base({ cc: cc(spec, wasReady), statefulSet: sts(1, 0) }),
      'Degraded',
      'PodsNotReady',
    ],
    [
      'several primaries, before config',
      base({ cc: repl, statefulSet: sts(3, 3), configResult: applied(pods3), primaries: ['sessions-0', 'sessions-1'] }),
      'Degraded',
      'MultiplePrimaries',
    ],
    [
      'config apply failed',
      base({
        statefulSet: sts(1, 1),
        configResult: { ...applied([]), pods: [{ pod: 'sessions-0', applied: false, message: 'refused' }] },
      }),
      'Degraded',
      'ConfigApplyFailed',
    ],
    ['config not verified', base({ statefulSet: sts(1, 1) }), 'Provisioning', 'ConfigNotVerified'],
    ['otherwise', base({ statefulSet: sts(1, 1), configResult: applied(['sessions-0']) }), 'Ready', 'ClusterReady'],
  ])('%s', (_what, input, phase, reason) => {
    const s = computeStatus(input);
    expect(s.phase).toBe(phase);
    expect(cond(s, 'Ready')?.reason).toBe(reason);
  });

  it('topology cluster: a running cluster being changed is Provisioning, and a ClusterNotOk names only what is wrong', () => {
    const clusterCc = cc({ topology: 'cluster', shards: 3, replicas: 1 }, { phase: 'Ready' });
    const shards = [0, 1, 2].map((index) => ({
      index,
      slots: '',
      slotCount: 5461,
      primary: `c-shard-${index}-0`,
      replicas: [] as string[],
      state: 'ok' as const,
    }));
    const status = (cluster: NonNullable<ComputeStatusInput['cluster']>) =>
      computeStatus(base({ cc: clusterCc, statefulSet: sts(6, 6), configResult: applied(['c-0']), cluster }));
    const gossip = 'waiting for shard(s) 3 to learn the slot map (gossip) and report cluster_state ok to move slots';
    // Scale-out waiting for gossip, every slot still served: not Degraded, and no "cluster_state ok" as a fault.
    const changing = status({ state: 'ok', slotsAssigned: 16384, shards, resharding: undefined, waiting: gossip });
    expect(changing.phase).toBe('Provisioning');
    expect(cond(changing, 'Ready')).toMatchObject({ status: 'False', reason: 'ClusterChanging', message: gossip });
    const resharding = { toShards: 4, slotsToMove: 4096, slotsRemaining: 4000, keysMoved: 12, startedAt: 'x' };
    const moving = status({ state: 'ok', slotsAssigned: 16384, shards, resharding, waiting: gossip });
    expect(cond(moving, 'Ready')).toMatchObject({
      reason: 'Resharding',
      message: `moving slots to reach 4 shards: 96 of 4096 moved, 12 keys; ${gossip}`,
    });
    const unassigned = status({ state: 'ok', slotsAssigned: 16000, shards, resharding: undefined });
    expect(unassigned.phase).toBe('Degraded');
    expect(cond(unassigned, 'Ready')).toMatchObject({
      reason: 'ClusterNotOk',
      message: '16000 of 16384 slots assigned',
    });
    const failing = status({ state: 'fail', slotsAssigned: 16384, shards, resharding: undefined });
    expect(cond(failing, 'Ready')).toMatchObject({ reason: 'ClusterNotOk', message: 'cluster_state fail' });
    // A scale keeps the phase Provisioning: the cluster formed before is still no new one.
    const scaling = cc(
      { topology: 'cluster', shards: 4, replicas: 1 },
      { phase: 'Provisioning', slotsAssigned: 16384, clusterState: 'ok' },
    );
    const during = (cluster: NonNullable<ComputeStatusInput['cluster']>) =>
      computeStatus(base({ cc: scaling, statefulSet: sts(8, 8), configResult: applied(['c-0']), cluster }));
    expect(
      cond(during({ state: 'ok', slotsAssigned: 16384, shards, resharding: undefined, waiting: gossip }), 'Ready'),
    ).toMatchObject({ reason: 'ClusterChanging' });
    const down = during({ state: 'fail', slotsAssigned: 16384, shards, resharding: undefined });
    expect(down.phase).toBe('Degraded');
    expect(cond(down, 'Ready')).toMatchObject({ reason: 'ClusterNotOk' });
  });

  it('topology cluster: a degraded shard is Degraded once the cluster ran, Provisioning while it comes up', () => {
    const shard = (index: number, over: object = {}) => ({
      index,
      slots: '',
      slotCount: 5461,
      primary: `sessions-shard-${index}-0`,
      replicas: [`sessions-shard-${index}-1`],
      state: 'ok' as const,
      ...over,
    });
    const shards = [
      shard(0),
      shard(1, { state: 'degraded', unsyncedReplicas: ['sessions-shard-1-1'] }),
      shard(2, { state: 'degraded', replicas: [] }),
    ];
    const cluster = { state: 'ok', slotsAssigned: 16384, shards, resharding: undefined };
    const of = (phase: 'Ready' | 'Provisioning') =>
      computeStatus(
        base({
          cc: cc({ topology: 'cluster', shards: 3, replicas: 1 }, { phase }),
          statefulSet: sts(6, 6),
          configResult: applied(['c-0']),
          cluster,
        }),
      );
    const message =
      'shard 1: sessions-shard-1-1 not synced with sessions-shard-1-0; shard 2: 0 of 1 replicas following sessions-shard-2-0';
    expect(of('Ready').phase).toBe('Degraded');
    expect(cond(of('Ready'), 'Degraded')).toMatchObject({ status: 'True', reason: 'ShardDegraded', message });
    expect(of('Provisioning').phase).toBe('Provisioning');
    expect(cond(of('Provisioning'), 'Ready')).toMatchObject({ status: 'False', reason: 'ShardDegraded' });
  });

  it('names the shard StatefulSets of topology cluster in a rollout, and says when pods are scaled', () => {
    const clusterCc = cc({ topology: 'cluster', shards: 4, replicas: 1 }, { phase: 'Ready' });
    const rolling = computeStatus(base({ cc: clusterCc, statefulSet: sts(12, 12) }));
    expect(cond(rolling, 'Ready')).toMatchObject({
      reason: 'RollingOut',
      message: 'StatefulSets sessions-shard-0 … sessions-shard-3: scaling from 12 to 8 pods, 12 ready',
    });
  });

  it('lists the rules in the order CONTRIBUTING.md documents them, ending with one that always matches', () => {
    expect(PHASE_RULES.map((r) => r.name)).toEqual([
      'spec error',
      'auth secret missing',
      'reconcile error',
      'no StatefulSet',
      'primary lost',
      'shard primary lost',
      'rolling out',
      'pods not ready',
      'cluster not formed',
      'resharding',
      'cluster changing',
      'shard degraded',
      'several primaries',
      'config apply failed',
      'config not verified',
      'ready',
    ]);
  });

  it('uses the desired eviction settings the caller passes instead of computing them again', () => {
    // maxMemoryPercent without a memory limit cannot be computed here: a caller that has the settings decides.
    const percent = cc(
      { eviction: { maxMemoryPercent: 50 } },
      { appliedConfig: { maxmemory: 1024, maxmemoryPolicy: 'noeviction' } },
    );
    const desired = { maxmemory: 1024, maxmemoryPolicy: 'noeviction' };
    const s = computeStatus(base({ cc: percent, statefulSet: sts(1, 1), desired }));
    expect(s.phase).toBe('Ready');
    expect(cond(s, 'ConfigApplied')?.message).toBe('maxmemory=1024 maxmemory-policy=noeviction on 0/0 pods');
    expect(computeStatus(base({ cc: percent, statefulSet: sts(1, 1) })).phase).toBe('Failed');
  });
});

describe('unsupportedFields', () => {
  it('lists accepted-but-unsupported fields that are set', () => {
    expect(unsupportedFields(cc({}))).toEqual([]);
    expect(
      unsupportedFields(
        cc({
          auth: { secretRef: { name: 'a', key: 'b' } },
          persistence: { mode: 'aof', storage: { size: '1Gi' } },
          podTemplate: { spec: { nodeSelector: { disk: 'ssd' } } },
          metrics: { exporter: true, serviceMonitor: false },
        }),
      ),
    ).toEqual([]);
    expect(
      unsupportedFields(
        cc({
          topology: 'cluster',
          shards: 3,
          persistence: { mode: 'aof', storage: { size: '1Gi' } },
          metrics: { serviceMonitor: true },
          sidecar: { origin: { http: { url: 'http://x' } } },
        }),
      ),
    ).toEqual(['spec.metrics.serviceMonitor']);
    // The origin reaches injected sidecars (sidecar.yaml + RIPPLECACHE_ORIGIN): supported.
    expect(unsupportedFields(cc({ sidecar: { origin: { http: { url: 'http://x' } } } }))).toEqual([]);
  });
});

describe('the scale subresource fields', () => {
  it('reports read replicas (pods besides the primary) and the pod selector', () => {
    const input = (spec: CacheClusterSpec, set?: ObservedStatefulSet): ComputeStatusInput => ({
      cc: cc(spec),
      unsupported: [],
      now,
      ...(set ? { statefulSet: set } : {}),
    });
    const selector = 'cache.ripplecache.io/cluster=sessions,app.kubernetes.io/component=server';
    expect(computeStatus(input({}))).toMatchObject({ currentReplicas: 0, selector });
    expect(computeStatus(input({}, sts(1, 1)))).toMatchObject({ replicas: 1, currentReplicas: 0, selector });
    expect(computeStatus(input({ topology: 'replication', replicas: 3 }, sts(4, 2)))).toMatchObject({
      replicas: 4,
      currentReplicas: 3,
    });
  });
});

describe('statusEqual', () => {
  it('ignores key order only', () => {
    const a: CacheClusterStatus = { phase: 'Ready', replicas: 1, endpoints: { service: 's' }, conditions: [] };
    const b: CacheClusterStatus = { conditions: [], endpoints: { service: 's' }, replicas: 1, phase: 'Ready' };
    expect(statusEqual(a, b)).toBe(true);
    expect(statusEqual(a, { ...b, replicas: 2 })).toBe(false);
    expect(statusEqual(a, { ...b, primary: 'x' })).toBe(false);
    expect(statusEqual({ ...a, primary: undefined } as unknown as CacheClusterStatus, b)).toBe(true);
    expect(statusEqual(undefined, a)).toBe(false);
    expect(statusEqual(undefined, undefined)).toBe(true);
  });

  it('compares condition lists in order', () => {
    const c1: Condition = { type: 'Ready', status: 'True', lastTransitionTime: 't', reason: 'R', message: '' };
    const c2: Condition = { type: 'Degraded', status: 'False', lastTransitionTime: 't', reason: 'R', message: '' };
    expect(statusEqual({ conditions: [c1, c2] }, { conditions: [{ ...c1 }, { ...c2 }] })).toBe(true);
    expect(statusEqual({ conditions: [c1, c2] }, { conditions: [c2, c1] })).toBe(false);
  });
});
