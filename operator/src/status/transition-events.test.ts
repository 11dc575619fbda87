import { describe, expect, it } from 'vitest';
import type { Phase } from '../api/v1alpha1/constants.js';
import type { CacheClusterStatus, Condition } from '../api/v1alpha1/types.js';
import { transitionEvents } from './transition-events.js';

const at = '2026-03-01T10:00:00Z';
const c = (type: string, status: Condition['status'], reason: string, message = `${type} ${reason}`): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: at,
});
const st = (phase: Phase, ...conditions: Condition[]): CacheClusterStatus => ({
  phase,
  conditions,
});

describe('transitionEvents', () => {
  it.each<[string, CacheClusterStatus | undefined, CacheClusterStatus, Array<[string, string]>]>([
    ['a new cluster starting up: none', undefined, st('Pending', c('Ready', 'False', 'StatefulSetNotCreated')), []],
    [
      'a new reason with the same status while starting: none',
      st('Provisioning', c('Ready', 'False', 'WaitingForPods')),
      st('Provisioning', c('Ready', 'False', 'RollingOut')),
      [],
    ],
    [
      'becoming Ready: Normal Ready',
      st('Provisioning', c('Ready', 'False', 'WaitingForPods')),
      st('Ready', c('Ready', 'True', 'ClusterReady')),
      [['Normal', 'Ready']],
    ],
    [
      'a first state that is a success: Normal',
      undefined,
      st('Provisioning', c('ConfigApplied', 'True', 'Applied')),
      [['Normal', 'ConfigApplied']],
    ],
    [
      'a refused child on a new cluster: Warning ReconcileError',
      undefined,
      st('Failed', c('Ready', 'False', 'ReconcileError')),
      [['Warning', 'ReconcileError']],
    ],
    [
      'a missing auth Secret on a new cluster: Warning AuthSecretMissing',
      undefined,
      st('Failed', c('Ready', 'False', 'AuthSecretMissing')),
      [['Warning', 'AuthSecretMissing']],
    ],
    [
      'the auth Secret created without its key: Warning AuthSecretKeyMissing',
      st('Failed', c('Ready', 'False', 'AuthSecretMissing')),
      st('Failed', c('Ready', 'False', 'AuthSecretKeyMissing')),
      [['Warning', 'AuthSecretKeyMissing']],
    ],
    [
      'the auth Secret fixed, pods starting: none until Ready',
      st('Failed', c('Ready', 'False', 'AuthSecretKeyMissing')),
      st('Provisioning', c('Ready', 'False', 'WaitingForPods')),
      [],
    ],
    [
      'losing a pod: Warning with the reason',
      st('Ready', c('Ready', 'True', 'ClusterReady')),
      st('Degraded', c('Ready', 'False', 'PodsNotReady')),
      [['Warning', 'PodsNotReady']],
    ],
    [
      'a new warning reason with the same status: Warning again',
      st('Degraded', c('Ready', 'False', 'PodsNotReady')),
      st('Degraded', c('Ready', 'False', 'ConfigApplyFailed')),
      [['Warning', 'ConfigApplyFailed']],
    ],
    [
      'ConfigApplied failing: always a Warning',
      st('Provisioning', c('ConfigApplied', 'Unknown', 'NotVerified')),
      st('Provisioning', c('ConfigApplied', 'False', 'ApplyFailed')),
      [['Warning', 'ApplyFailed']],
    ],
    [
      'unchanged: none',
      st('Ready', c('Ready', 'True', 'ClusterReady')),
      st('Ready', c('Ready', 'True', 'ClusterReady', 'another message')),
      [],
    ],
  ])('%s', (_what, before, after, expected) => {
    expect(transitionEvents(before, after).map((e) => [e.type, e.reason])).toEqual(expected);
  });

  it('carries the condition message, and Not<type> when a condition has no reason', () => {
    const after = st('Failed', { ...c('Ready', 'False', ''), message: 'why' });
    expect(transitionEvents(undefined, after)).toEqual([{ type: 'Warning', reason: 'NotReady', message: 'why' }]);
  });

  it('reports a verified live eviction change as EvictionSettingsApplied, after the condition events', () => {
    const before: CacheClusterStatus = {
      ...st('Ready', c('Ready', 'True', 'ClusterReady')),
      appliedConfig: { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' },
    };
    const pod = { maxmemory: 134217728, maxmemoryPolicy: 'allkeys-lfu', applied: true };
    const after: CacheClusterStatus = {
      ...st('Ready', c('Ready', 'True', 'ClusterReady')),
      appliedConfig: {
        maxmemory: 134217728,
        maxmemoryPolicy: 'allkeys-lfu',
        pods: [
          { pod: 'a-0', ...pod },
          { pod: 'a-1', ...pod },
        ],
      },
    };
    expect(transitionEvents(before, after)).toEqual([
      {
        type: 'Normal',
        reason: 'EvictionSettingsApplied',
        message: 'maxmemory 64Mi -> 128Mi, maxmemory-policy allkeys-lru -> allkeys-lfu, applied live on 2/2 pods',
      },
    ]);
    // The first verified settings are not a change.
    const { appliedConfig: _first, ...neverVerified } = before;
    expect(transitionEvents(neverVerified, after)).toEqual([]);
  });

  it('names only the eviction settings that changed', () => {
    const status = (maxmemory: number, maxmemoryPolicy: string): CacheClusterStatus => ({
      ...st('Ready', c('Ready', 'True', 'ClusterReady')),
      appliedConfig: {
        maxmemory,
        maxmemoryPolicy,
        pods: [{ pod: 'a-0', maxmemory, maxmemoryPolicy, applied: true }],
      },
    });
    const messages = (before: CacheClusterStatus, after: CacheClusterStatus) =>
      transitionEvents(before, after)
        .filter((e) => e.reason === 'EvictionSettingsApplied')
        .map((e) => e.message);
    expect(messages(status(33554432, 'allkeys-lru'), status(1048577, 'allkeys-lru'))).toEqual([
      'maxmemory 32Mi -> 1048577, applied live on 1/1 pods',
    ]);
    expect(messages(status(33554432, 'allkeys-lru'), status(33554432, 'volatile-ttl'))).toEqual([
      'maxmemory-policy allkeys-lru -> volatile-ttl, applied live on 1/1 pods',
    ]);
    expect(messages(status(33554432, 'allkeys-lru'), status(33554432, 'allkeys-lru'))).toEqual([]);
  });
});

describe('transitionEvents: a stuck rolling update', () => {
  const stuck = c(
    'RollingUpdate',
    'True',
    'RollStuck',
    'rolling update stuck, no progress for 120 s: c-1 is not Ready',
  );
  it('records a Warning RollStuck once, when the roll becomes stuck', () => {
    const before = st('Ready', c('RollingUpdate', 'True', 'InProgress'));
    expect(transitionEvents(before, st('Ready', stuck))).toEqual([
      { type: 'Warning', reason: 'RollStuck', message: stuck.message },
    ]);
    // Still stuck on the next status: no second event.
    expect(transitionEvents(st('Ready', stuck), st('Ready', stuck))).toEqual([]);
    // Making progress, or done: no event from this condition.
    expect(transitionEvents(st('Ready', stuck), st('Ready', c('RollingUpdate', 'True', 'InProgress')))).toEqual([]);
    expect(transitionEvents(before, st('Ready', c('RollingUpdate', 'False', 'UpToDate')))).toEqual([]);
  });
});

describe('transitionEvents of topology cluster', () => {
  const shard = (index: number, primary: string | undefined, state: 'ok' | 'primaryLost') => ({
    index,
    slots: '0-5461',
    slotCount: 5462,
    ...(primary ? { primary } : {}),
    replicas: [],
    state,
  });
  const resharding = { toShards: 4, slotsToMove: 4096, slotsRemaining: 4096, keysMoved: 0, startedAt: at };

  it('records a resharding starting and completing', () => {
    const before: CacheClusterStatus = { phase: 'Ready' };
    const during: CacheClusterStatus = { phase: 'Provisioning', resharding };
    expect(transitionEvents(before, during)).toEqual([
      { type: 'Normal', reason: 'ReshardingStarted', message: 'moving 4096 slots to reach 4 shards' },
    ]);
    expect(
      transitionEvents(during, { phase: 'Provisioning', resharding: { ...resharding, slotsRemaining: 10 } }),
    ).toEqual([]);
    expect(transitionEvents(during, before)).toEqual([
      { type: 'Normal', reason: 'ReshardingCompleted', message: '4 shards: 4096 slots moved, 0 keys' },
    ]);
  });

  it('warns once when settings fail, though Ready turns False with the same message', () => {
    const cond = (type: string, status: 'True' | 'False', reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastTransitionTime: at,
    });
    const message = 'maxmemory 96Mi, allkeys-lru not applied on 1/3 pods: sessions-2: connection refused';
    const ok: CacheClusterStatus = {
      phase: 'Ready',
      conditions: [cond('Ready', 'True', 'ClusterReady', 'fine'), cond('ConfigApplied', 'True', 'Applied', 'fine')],
    };
    const failed: CacheClusterStatus = {
      phase: 'Degraded',
      conditions: [
        cond('Ready', 'False', 'ConfigApplyFailed', message),
        cond('ConfigApplied', 'False', 'ApplyFailed', message),
      ],
    };
    expect(transitionEvents(ok, failed)).toEqual([{ type: 'Warning', reason: 'ApplyFailed', message }]);
  });

  it('warns once when a shard loses its primary, though Ready turns False for it too', () => {
    const ready = (status: 'True' | 'False', reason: string, message: string) => ({
      type: 'Ready',
      status,
      reason,
      message,
      lastTransitionTime: at,
    });
    const ok: CacheClusterStatus = {
      phase: 'Ready',
      shards: [shard(1, 'c-shard-1-0', 'ok')],
      conditions: [ready('True', 'ClusterReady', '6 of 6 Redis pods ready')],
    };
    const lost: CacheClusterStatus = {
      phase: 'Degraded',
      shards: [shard(1, undefined, 'primaryLost')],
      conditions: [ready('False', 'ShardPrimaryLost', 'shard(s) 1 lost their primary: …')],
    };
    expect(transitionEvents(ok, lost)).toEqual([
      {
        type: 'Warning',
        reason: 'ShardPrimaryLost',
        message: 'shard 1 lost its primary c-shard-1-0; Redis Cluster promotes a replica',
      },
    ]);
    // Another shard lost while Ready already says so: the shard's warning still shows.
    const second: CacheClusterStatus = {
      ...lost,
      shards: [shard(1, undefined, 'primaryLost'), shard(2, undefined, 'primaryLost')],
    };
    const beforeSecond: CacheClusterStatus = {
      ...lost,
      shards: [shard(1, undefined, 'primaryLost'), shard(2, 'c-shard-2-0', 'ok')],
    };
    expect(transitionEvents(beforeSecond, second).map((e) => e.message)).toEqual([
      'shard 2 lost its primary c-shard-2-0; Redis Cluster promotes a replica',
    ]);
  });

  it('warns when a shard loses its primary and records the promoted one', () => {
    const ok: CacheClusterStatus = { phase: 'Ready', shards: [shard(1, 'c-shard-1-0', 'ok')] };
    const lost: CacheClusterStatus = { phase: 'Degraded', shards: [shard(1, undefined, 'primaryLost')] };
    const promoted: CacheClusterStatus = { phase: 'Ready', shards: [shard(1, 'c-shard-1-1', 'ok')] };
    expect(transitionEvents(ok, lost)).toEqual([
      {
        type: 'Warning',
        reason: 'ShardPrimaryLost',
        message: 'shard 1 lost its primary c-shard-1-0; Redis Cluster promotes a replica',
      },
    ]);
    expect(transitionEvents(ok, promoted)).toEqual([
      { type: 'Normal', reason: 'ShardFailedOver', message: 'shard 1: primary c-shard-1-0 -> c-shard-1-1' },
    ]);
  });
});
