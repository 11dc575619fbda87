import { describe, expect, it } from 'vitest';
import type { ReplicationInfo } from '../redis/replication.js';
import {
  catchUpVerdict,
  decideRoll,
  IN_SYNC_LAG_BYTES,
  ROLL_STUCK_AFTER_MS,
  SWITCHOVER_CATCH_UP_MS,
  trackRoll,
  type RollInput,
  type RollingPod,
  type RollTracking,
} from './rolling-decision.js';

const addr = (i: number) => ({ host: `c-${i}.c-headless.ns.svc`, port: 6379 });

function master(offset: number): ReplicationInfo {
  return { pod: 'x', reachable: true, role: 'master', offset, replid: 'r1', connectedReplicas: 2 };
}
function replica(offset: number, of = 0, extra: Partial<ReplicationInfo> = {}): ReplicationInfo {
  return {
    pod: 'x',
    reachable: true,
    role: 'replica',
    offset,
    replid: 'r1',
    masterHost: addr(of).host,
    masterPort: 6379,
    linkUp: true,
    syncInProgress: false,
    ...extra,
  } as ReplicationInfo;
}
function pod(i: number, revision: string, info: ReplicationInfo, over: Partial<RollingPod> = {}): RollingPod {
  return {
    pod: `c-${i}`,
    uid: `uid-${i}-${revision}`,
    exists: true,
    ready: true,
    roleLabel: undefined,
    address: addr(i),
    info,
    revision,
    ...over,
  };
}
const base: Omit<RollInput, 'pods'> = { primary: 'c-0', updateRevision: 'new', stsObserved: true };

describe('decideRoll', () => {
  it('does nothing when every pod runs the update revision, or the controller has not computed it', () => {
    const pods = [pod(0, 'new', master(100)), pod(1, 'new', replica(100)), pod(2, 'new', replica(100))];
    expect(decideRoll({ ...base, pods })).toEqual({ action: 'none' });
    const old = [pod(0, 'old', master(100)), pod(1, 'old', replica(100))];
    expect(decideRoll({ ...base, pods: old, updateRevision: undefined })).toEqual({ action: 'none' });
    expect(decideRoll({ ...base, pods: old, stsObserved: false })).toEqual({ action: 'none' });
  });

  it('restarts old replicas first, highest ordinal first, never the primary while a replica is old', () => {
    const pods = [pod(0, 'old', master(100)), pod(1, 'old', replica(100)), pod(2, 'old', replica(100))];
    expect(decideRoll({ ...base, pods })).toMatchObject({ action: 'delete', pod: 'c-2', uid: 'uid-2-old' });
    const second = [pod(0, 'old', master(100)), pod(1, 'old', replica(100)), pod(2, 'new', replica(100))];
    expect(decideRoll({ ...base, pods: second })).toMatchObject({ action: 'delete', pod: 'c-1' });
    // After a failover the primary may be any ordinal: it is still kept for last.
    const moved = [pod(0, 'old', replica(100, 1)), pod(1, 'old', master(100)), pod(2, 'old', replica(100, 1))];
    expect(decideRoll({ ...base, primary: 'c-1', pods: moved })).toMatchObject({ action: 'delete', pod: 'c-2' });
  });

  it('waits while a restarted replica is missing, not Ready, syncing or behind, or the deleted pod is cached', () => {
    const p0 = pod(0, 'old', master(500_000));
    const p1 = pod(1, 'old', replica(500_000));
    const cases: Array<[RollingPod, RegExp]> = [
      [pod(2, 'new', replica(0), { exists: false }), /c-2 does not exist/],
      [pod(2, 'new', replica(500_000), { ready: false }), /c-2 is not Ready/],
      [pod(2, 'new', { pod: 'c-2', reachable: false, message: 'ECONNREFUSED' }), /c-2 is unreachable/],
      [pod(2, 'new', replica(500_000, 0, { linkUp: false })), /link to the primary down/],
      [pod(2, 'new', replica(500_000, 0, { syncInProgress: true })), /full sync/],
      [pod(2, 'new', replica(500_000 - IN_SYNC_LAG_BYTES - 1)), /bytes behind the primary/],
      [pod(2, 'new', master(0)), /reports role master/],
    ];
    for (const [p2, why] of cases)
      expect(decideRoll({ ...base, pods: [p0, p1, p2] })).toMatchObject({
        action: 'wait',
        why: expect.stringMatching(why),
      });
    // Within the lag it counts as in sync: the next old replica goes.
    const close = pod(2, 'new', replica(500_000 - IN_SYNC_LAG_BYTES));
    expect(decideRoll({ ...base, pods: [p0, p1, close] })).toMatchObject({ action: 'delete', pod: 'c-1' });
    // The informer cache still shows the pod just deleted: wait, do not delete it (or another) again.
    const stale = [p0, p1, pod(2, 'old', replica(500_000))];
    expect(decideRoll({ ...base, pods: stale, deletedUid: 'uid-2-old' })).toMatchObject({ action: 'wait' });
    // The primary down: the failover machinery handles it, the roll waits.
    const down = [pod(0, 'old', { pod: 'c-0', reachable: false, message: 'x' }), p1, pod(2, 'old', replica(1))];
    expect(decideRoll({ ...base, pods: down })).toMatchObject({
      action: 'wait',
      why: expect.stringMatching(/primary/),
    });
  });

  it('switches over to the most advanced up-to-date replica once only the primary is old', () => {
    const pods = [pod(0, 'old', master(300)), pod(1, 'new', replica(290)), pod(2, 'new', replica(295))];
    expect(decideRoll({ ...base, pods })).toEqual({
      action: 'switchover',
      from: 'c-0',
      to: 'c-2',
      toOffset: 295,
      fromOffset: 300,
    });
  });

  it('restarts the old primary, now a replica, after the switchover', () => {
    const pods = [pod(0, 'old', replica(300, 2)), pod(1, 'new', replica(300, 2)), pod(2, 'new', master(300))];
    expect(decideRoll({ ...base, primary: 'c-2', pods })).toMatchObject({ action: 'delete', pod: 'c-0' });
  });

  it('is not over while the old primary it restarted last is terminating, missing, or back but not in sync', () => {
    const rest = [pod(1, 'new', replica(300, 2)), pod(2, 'new', master(300))];
    const input = (p0: RollingPod): RollInput => ({
      ...base,
      primary: 'c-2',
      pods: [p0, ...rest],
      deletedUid: 'uid-0-old',
    });
    // Terminating: not counted as existing (so not as outdated either), still in the cache under its uid.
    expect(decideRoll(input(pod(0, 'old', replica(300, 2), { exists: false })))).toEqual({
      action: 'wait',
      why: 'c-0 is being deleted',
    });
    // Recreated on the update revision (a new uid), not Ready yet, then Ready but still syncing.
    const back = { uid: 'uid-0-new' };
    expect(decideRoll(input(pod(0, 'new', replica(0, 2), { ...back, ready: false })))).toMatchObject({
      action: 'wait',
      why: 'c-0 is not Ready',
    });
    expect(decideRoll(input(pod(0, 'new', replica(300, 2, { syncInProgress: true }), back)))).toMatchObject({
      action: 'wait',
    });
    expect(decideRoll(input(pod(0, 'new', replica(300, 2), back)))).toEqual({ action: 'none' });
    // No roll in progress (nothing restarted): a missing pod is not a roll.
    expect(
      decideRoll({ ...base, primary: 'c-2', pods: [pod(0, 'new', replica(0, 2), { exists: false }), ...rest] }),
    ).toEqual({ action: 'none' });
  });

  it('restarts a lone primary (spec.replicas 0) in place: there is nothing to switch over to', () => {
    expect(decideRoll({ ...base, pods: [pod(0, 'old', master(10))] })).toMatchObject({
      action: 'delete',
      pod: 'c-0',
      why: expect.stringMatching(/no replica to switch over to/),
    });
  });
});

describe('catchUpVerdict: may a planned switchover promote its target', () => {
  const down: ReplicationInfo = { pod: 'x', reachable: false, message: 'connect ECONNREFUSED' };
  it('promotes only a target whose offset reached the paused primary', () => {
    expect(catchUpVerdict(master(100), replica(100), 10)).toEqual({ state: 'caught-up', offset: 100 });
    expect(catchUpVerdict(master(100), replica(99), 10)).toEqual({ state: 'wait' });
  });

  it('aborts, with both offsets, once the target is still behind after the limit: never promotes it behind', () => {
    expect(catchUpVerdict(master(100), replica(90), SWITCHOVER_CATCH_UP_MS - 1)).toEqual({ state: 'wait' });
    expect(catchUpVerdict(master(100), replica(90), SWITCHOVER_CATCH_UP_MS)).toEqual({
      state: 'abort',
      why: "the target did not catch up within 5 s (offset 90, the primary's 100: 10 bytes behind)",
    });
  });

  it('aborts at once when either side stops answering or the primary is no longer master', () => {
    expect(catchUpVerdict(down, replica(90), 0)).toMatchObject({ state: 'abort', why: /primary stopped answering/ });
    expect(catchUpVerdict(master(100), down, 0)).toMatchObject({ state: 'abort', why: /target stopped answering/ });
    expect(catchUpVerdict(replica(100), replica(100), 0)).toMatchObject({ state: 'abort', why: /role replica/ });
  });
});

describe('trackRoll: condition RollingUpdate', () => {
  it('up to date: False/UpToDate; a step: True/InProgress naming it', () => {
    expect(trackRoll({}, { kind: 'none' }, 0).condition).toMatchObject({ status: 'False', reason: 'UpToDate' });
    expect(trackRoll({}, { kind: 'step', message: 'restarted c-2' }, 5)).toEqual({
      progressAt: 5,
      condition: { status: 'True', reason: 'InProgress', message: 'restarted c-2' },
    });
  });

  it('a wait without progress for ROLL_STUCK_AFTER_MS: RollStuck naming why, kept stable while stuck', () => {
    let t: RollTracking = trackRoll({}, { kind: 'step', message: 'restarted c-2' }, 1000);
    t = trackRoll(t, { kind: 'wait', why: 'c-2 is not Ready' }, 1000 + ROLL_STUCK_AFTER_MS - 1);
    expect(t.condition).toEqual({ status: 'True', reason: 'InProgress', message: 'restarted c-2' });
    t = trackRoll(t, { kind: 'wait', why: 'c-2 is not Ready' }, 1000 + ROLL_STUCK_AFTER_MS);
    expect(t.condition).toEqual({
      status: 'True',
      reason: 'RollStuck',
      message: 'rolling update stuck, no progress for 120 s: c-2 is not Ready',
    });
    const stuck = t.condition;
    t = trackRoll(t, { kind: 'wait', why: 'c-2 is 5000 bytes behind the primary' }, 1000 + 3 * ROLL_STUCK_AFTER_MS);
    expect(t.condition).toBe(stuck);
    // Progress again: InProgress.
    t = trackRoll(t, { kind: 'step', message: 'restarted c-1' }, 1000 + 4 * ROLL_STUCK_AFTER_MS);
    expect(t.condition?.reason).toBe('InProgress');
  });

  it('a roll first seen waiting (a new leader) counts from then', () => {
    const t = trackRoll({}, { kind: 'wait', why: 'c-1 is not Ready' }, 50_000);
    expect(t).toEqual({
      progressAt: 50_000,
      condition: { status: 'True', reason: 'InProgress', message: 'rolling update in progress: c-1 is not Ready' },
    });
  });
});
