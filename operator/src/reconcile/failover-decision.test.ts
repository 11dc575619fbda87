import { describe, expect, it } from 'vitest';
import type { FailoverInProgress } from '../api/v1alpha1/types.js';
import type { ReplicationInfo } from '../redis/replication.js';
import {
  chooseCandidate,
  decideFailover,
  judgeCandidate,
  LINK_DOWN_SLACK_SECONDS,
  planRoles,
  type ObservedRedisPod,
} from './failover-decision.js';

const addr = (i: number) => ({ host: `c-${i}.c-headless.ns.svc`, port: 6379 });

function master(pod: string, offset: number): ReplicationInfo {
  return { pod, reachable: true, role: 'master', offset, replid: 'r1', connectedReplicas: 1 };
}
function replica(pod: string, offset: number, of = 0, extra: Partial<ReplicationInfo> = {}): ReplicationInfo {
  return {
    pod,
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
function down(pod: string): ReplicationInfo {
  return { pod, reachable: false, message: 'connect ECONNREFUSED' };
}
function pod(i: number, info: ReplicationInfo, over: Partial<ObservedRedisPod> = {}): ObservedRedisPod {
  return { pod: `c-${i}`, exists: true, ready: true, roleLabel: undefined, address: addr(i), info, ...over };
}
/** The primary c-0 down; replicas c-1 and c-2 with their link down since it died. */
function primaryDead(o1 = 100, o2 = 120): ObservedRedisPod[] {
  return [
    pod(0, down('c-0'), { ready: false, roleLabel: 'primary' }),
    pod(1, replica('c-1', o1, 0, { linkUp: false, linkDownSinceSeconds: 3 }), { roleLabel: 'replica' }),
    pod(2, replica('c-2', o2, 0, { linkUp: false, linkDownSinceSeconds: 3 }), { roleLabel: 'replica' }),
  ];
}

describe('judgeCandidate: healthy enough to promote', () => {
  it('accepts a ready replica of the lost primary that replicated something, link down since about the loss', () => {
    expect(judgeCandidate(primaryDead()[1]!, addr(0), 3)).toEqual({ pod: 'c-1', eligible: true, offset: 100 });
  });

  it("with the primary's replication ID known, takes a replica holding it even at offset 0, refuses another", () => {
    expect(judgeCandidate(pod(1, replica('c-1', 0)), addr(0), 3, 'r1')).toMatchObject({ eligible: true });
    expect(judgeCandidate(pod(1, replica('c-1', 50, 0, { replid: 'fresh' })), addr(0), 3, 'r1')).toMatchObject({
      eligible: false,
      why: expect.stringMatching(/does not hold the primary's history/),
    });
  });

  it.each([
    ['pod gone', pod(1, replica('c-1', 5), { exists: false }), /does not exist/],
    ['unreachable', pod(1, down('c-1')), /unreachable/],
    ['pod not Ready', pod(1, replica('c-1', 5), { ready: false }), /not Ready/],
    ['a master', pod(1, master('c-1', 5)), /role master/],
    ['replica of another', pod(1, replica('c-1', 5, 2)), /not from the lost primary/],
    ['full sync loading', pod(1, replica('c-1', 5, 0, { syncInProgress: true })), /full sync/],
    ['nothing replicated (primary history unknown)', pod(1, replica('c-1', 0)), /offset 0/],
    [
      'link down long before the loss',
      pod(1, replica('c-1', 5, 0, { linkUp: false, linkDownSinceSeconds: 3 + LINK_DOWN_SLACK_SECONDS + 1 })),
      /link to the primary has been down/,
    ],
    [
      'link never up since it started',
      pod(1, replica('c-1', 5, 0, { linkUp: false })),
      /has not been up since it started/,
    ],
  ])('refuses %s', (_what, p, why) => {
    const v = judgeCandidate(p, addr(0), 3);
    expect(v.eligible).toBe(false);
    expect(v.why).toMatch(why);
  });
});

describe('chooseCandidate', () => {
  it('takes the eligible replica with the highest offset', () => {
    const [, a, b] = primaryDead(100, 120);
    expect(chooseCandidate([a!, b!], addr(0), 3)).toEqual({ to: 'c-2', offset: 120 });
    expect(chooseCandidate([b!, a!], addr(0), 3)).toEqual({ to: 'c-2', offset: 120 });
  });

  it('takes the lower ordinal on a tie, and skips an ineligible replica even with a higher offset', () => {
    const [, a, b] = primaryDead(100, 100);
    expect(chooseCandidate([a!, b!], addr(0), 3)).toEqual({ to: 'c-1', offset: 100 });
    const lagging = pod(3, replica('c-3', 999, 0, { syncInProgress: true }));
    expect(chooseCandidate([a!, lagging], addr(0), 3)).toEqual({ to: 'c-1', offset: 100 });
  });

  it('returns every verdict when none is eligible', () => {
    const r = chooseCandidate([pod(1, down('c-1'))], addr(0), 3);
    expect(r).toMatchObject({ blocked: [{ pod: 'c-1', eligible: false }] });
  });
});

describe('decideFailover', () => {
  const base = { primary: 'c-0', established: true, inProgress: undefined, afterMs: 2000 };

  it('stays steady while the primary is up', () => {
    const pods = [pod(0, master('c-0', 10)), pod(1, replica('c-1', 10))];
    expect(decideFailover({ ...base, pods, lostForMs: undefined })).toEqual({
      action: 'steady',
      primary: 'c-0',
      up: true,
    });
  });

  it('never fails over a cluster whose primary was never up', () => {
    expect(decideFailover({ ...base, established: false, pods: primaryDead(), lostForMs: 60_000 })).toMatchObject({
      action: 'steady',
      up: false,
    });
  });

  it('waits for afterSeconds, then starts a failover to the most advanced replica with both offsets', () => {
    const pods = primaryDead(100, 120);
    expect(decideFailover({ ...base, pods, lostForMs: 1500 })).toMatchObject({ action: 'wait', retryInMs: 500 });
    expect(decideFailover({ ...base, pods, lostForMs: 2000 })).toEqual({
      action: 'start',
      failover: { from: 'c-0', to: 'c-2', toOffset: 120 },
    });
  });

  it('counts a pod that is Ready but whose Redis does not answer, or answers as a replica, as lost', () => {
    const unreachable = [pod(0, down('c-0')), pod(1, replica('c-1', 5, 0, { linkUp: false, linkDownSinceSeconds: 1 }))];
    expect(decideFailover({ ...base, pods: unreachable, lostForMs: 2500 })).toMatchObject({ action: 'start' });
    const demoted = [pod(0, replica('c-0', 5, 1)), pod(1, replica('c-1', 5))];
    expect(decideFailover({ ...base, pods: demoted, lostForMs: 100 })).toMatchObject({
      action: 'wait',
      why: expect.stringMatching(/reports role replica/),
    });
  });

  it('records the offset the lost primary was last seen up with when it does not answer', () => {
    const pods = primaryDead(100, 120);
    expect(decideFailover({ ...base, pods, lostForMs: 2000, primaryOffset: 125 })).toEqual({
      action: 'start',
      failover: { from: 'c-0', to: 'c-2', toOffset: 120, fromOffset: 125 },
    });
    // Unknown (never seen up by this process): none recorded.
    expect(decideFailover({ ...base, pods, lostForMs: 2000 })).toEqual({
      action: 'start',
      failover: { from: 'c-0', to: 'c-2', toOffset: 120 },
    });
  });

  it('records the old primary offset when it still answers (pod not Ready but Redis up)', () => {
    const pods = [pod(0, master('c-0', 130), { ready: false }), pod(1, replica('c-1', 125))];
    expect(decideFailover({ ...base, pods, lostForMs: 2000 })).toEqual({
      action: 'start',
      failover: { from: 'c-0', to: 'c-1', toOffset: 125, fromOffset: 130 },
    });
  });

  it('blocks, saying why for each replica, when no replica is healthy enough', () => {
    const pods = [pod(0, down('c-0')), pod(1, down('c-1')), pod(2, replica('c-2', 0))];
    const d = decideFailover({ ...base, pods, lostForMs: 5000 });
    expect(d.action).toBe('blocked');
    expect(d).toMatchObject({ why: expect.stringMatching(/c-1: unreachable.*c-2: has not replicated anything/) });
    expect(decideFailover({ ...base, pods: [pod(0, down('c-0'))], lostForMs: 5000 })).toMatchObject({
      action: 'blocked',
      why: expect.stringMatching(/spec.replicas is 0/),
    });
  });

  const inProgress: FailoverInProgress = {
    from: 'c-0',
    to: 'c-1',
    step: 'Unlabelled',
    startedAt: '2026-01-01T00:00:00Z',
    toOffset: 100,
  };

  it('continues a recorded failover whatever the old primary does now (it came back: it will follow)', () => {
    const pods = [
      pod(0, master('c-0', 0)),
      pod(1, replica('c-1', 100, 0, { linkUp: false })),
      pod(2, replica('c-2', 90)),
    ];
    expect(decideFailover({ ...base, inProgress, pods, lostForMs: undefined })).toEqual({
      action: 'continue',
      failover: inProgress,
    });
    const promoted = [pod(0, down('c-0')), pod(1, master('c-1', 100)), pod(2, replica('c-2', 90))];
    expect(decideFailover({ ...base, inProgress, pods: promoted, lostForMs: undefined })).toMatchObject({
      action: 'continue',
    });
  });

  it('retargets a recorded failover whose target died, or blocks when no other replica can take it', () => {
    const pods = [pod(0, down('c-0')), pod(1, down('c-1')), pod(2, replica('c-2', 90, 0, { linkUp: false }))];
    expect(decideFailover({ ...base, inProgress, pods, lostForMs: undefined })).toEqual({
      action: 'retarget',
      failover: inProgress,
      to: 'c-2',
      toOffset: 90,
    });
    const none = [pod(0, down('c-0')), pod(1, down('c-1'))];
    expect(decideFailover({ ...base, inProgress, pods: none, lostForMs: undefined })).toMatchObject({
      action: 'blocked-in-progress',
    });
  });
});

describe('planRoles', () => {
  it('removes the primary label from the old primary first, promotes, repoints, then labels the new primary', () => {
    const pods = [
      pod(0, down('c-0'), { roleLabel: 'primary', ready: false }),
      pod(1, replica('c-1', 100, 0, { linkUp: false }), { roleLabel: 'replica' }),
      pod(2, replica('c-2', 90, 0, { linkUp: false }), { roleLabel: 'replica' }),
    ];
    expect(planRoles('c-1', pods, { promote: true })).toEqual([
      { op: 'label', pod: 'c-0', role: null },
      { op: 'promote', pod: 'c-1' },
      { op: 'follow', pod: 'c-2', primary: 'c-1', address: addr(1) },
      { op: 'label', pod: 'c-1', role: 'primary' },
      // c-2 is switching to c-1: no replica traffic until its link is up.
      { op: 'label', pod: 'c-2', role: null },
    ]);
  });

  it('makes a returning old primary a replica before it could get a label, and labels it once in sync', () => {
    const back = [
      pod(0, master('c-0', 0)), // came back empty, as a master, without a label
      pod(1, master('c-1', 200), { roleLabel: 'primary' }),
    ];
    // A master is demoted: its client connections are closed with the REPLICAOF (a replica's are not).
    expect(planRoles('c-1', back, { promote: false })).toEqual([
      { op: 'follow', pod: 'c-0', primary: 'c-1', address: addr(1), demote: true },
    ]);
    const synced = [pod(0, replica('c-0', 200, 1)), pod(1, master('c-1', 200), { roleLabel: 'primary' })];
    expect(planRoles('c-1', synced, { promote: false })).toEqual([{ op: 'label', pod: 'c-0', role: 'replica' }]);
  });

  it('leaves alone a replica of an address that is no pod of the cluster (set up by hand, or through a proxy)', () => {
    const pods = [
      pod(0, master('c-0', 10), { roleLabel: 'primary' }),
      pod(1, { ...replica('c-1', 10), masterHost: '10.9.9.9', masterPort: 7000 } as ReplicationInfo),
    ];
    expect(planRoles('c-0', pods, { promote: false })).toEqual([]);
  });

  it('changes nothing when every pod is as it should be, and leaves unreachable pods alone', () => {
    const pods = [
      pod(0, master('c-0', 10), { roleLabel: 'primary' }),
      pod(1, replica('c-1', 10), { roleLabel: 'replica' }),
      pod(2, down('c-2'), { roleLabel: 'replica', ready: false }),
    ];
    expect(planRoles('c-0', pods, { promote: false })).toEqual([]);
  });

  it('never promotes outside a failover, and never labels a primary that is not master', () => {
    const pods = [pod(0, replica('c-0', 10, 1)), pod(1, replica('c-1', 10))];
    expect(planRoles('c-0', pods, { promote: false })).toEqual([]);
  });

  it('takes a replica label off a replica whose link is down or that follows someone else', () => {
    const pods = [
      pod(0, master('c-0', 10), { roleLabel: 'primary' }),
      pod(1, replica('c-1', 10, 0, { linkUp: false }), { roleLabel: 'replica' }),
    ];
    expect(planRoles('c-0', pods, { promote: false })).toEqual([{ op: 'label', pod: 'c-1', role: null }]);
  });
});

/** A pod whose Redis (re)started: a replica of the placeholder primary, no master link. */
function restarted(pod: string, offset = 1): ReplicationInfo {
  return {
    pod,
    reachable: true,
    role: 'replica',
    offset,
    replid: `fresh-${pod}`,
    masterHost: '127.0.0.1',
    masterPort: 1,
    linkUp: false,
    syncInProgress: false,
  };
}

describe('a primary that restarts (every pod starts as a replica of the placeholder)', () => {
  const base = { primary: 'c-0', established: true, inProgress: undefined, afterMs: 2000, primaryReplid: 'r1' };
  /** c-0 restarted empty (Ready again: it answers PING); its replicas keep their data, link down. */
  const restartedEmpty = (): ObservedRedisPod[] => [
    pod(0, restarted('c-0'), { roleLabel: 'primary' }),
    pod(1, replica('c-1', 100, 0, { linkUp: false, linkDownSinceSeconds: 1 }), { roleLabel: 'replica' }),
    pod(2, replica('c-2', 120, 0, { linkUp: false, linkDownSinceSeconds: 1 }), { roleLabel: 'replica' }),
  ];

  it('counts a restarted primary as lost (Ready and answering), then fails over to the most advanced replica', () => {
    const pods = restartedEmpty();
    expect(decideFailover({ ...base, pods, lostForMs: 500 })).toMatchObject({
      action: 'wait',
      why: expect.stringMatching(/c-0 restarted/),
    });
    expect(decideFailover({ ...base, pods, lostForMs: 2000 })).toEqual({
      action: 'start',
      failover: { from: 'c-0', to: 'c-2', toOffset: 120, fromOffset: 1 },
    });
  });

  it('never promotes a restarted replica, and says why', () => {
    const pods = [pod(0, down('c-0'), { ready: false }), pod(1, restarted('c-1'))];
    expect(judgeCandidate(pods[1]!, addr(0), 3)).toMatchObject({
      eligible: false,
      why: expect.stringMatching(/restarted, it follows no primary/),
    });
  });

  it('at a first start promotes the recorded primary, once no answering pod holds more than it', () => {
    const first = { ...base, established: false, primaryReplid: undefined, lostForMs: undefined };
    expect(decideFailover({ ...first, pods: [pod(0, restarted('c-0')), pod(1, down('c-1'))] })).toEqual({
      action: 'promote-in-place',
      primary: 'c-0',
      why: 'the first primary',
      firstStart: true,
    });
    // A pod with more than c-0 (status lost, data kept): not promoted blindly.
    expect(decideFailover({ ...first, pods: [pod(0, restarted('c-0')), pod(1, restarted('c-1', 900))] })).toMatchObject(
      { action: 'steady', up: false },
    );
    // Made the primary here once already, and unassigned again before it was seen up: it restarted.
    expect(
      decideFailover({ ...first, promotedAtFirstStart: true, pods: [pod(0, restarted('c-0')), pod(1, down('c-1'))] }),
    ).toEqual({
      action: 'promote-in-place',
      primary: 'c-0',
      why: 'c-0 restarted before it was seen up as the primary',
      firstStart: false,
    });
    // An old-style pod 0 that started as a master is taken as is.
    expect(decideFailover({ ...first, pods: [pod(0, master('c-0', 0)), pod(1, restarted('c-1'))] })).toMatchObject({
      action: 'steady',
      up: true,
    });
  });

  it('brings back a restarted primary without replicas at once (its data from disk, if any)', () => {
    expect(
      decideFailover({ ...base, pods: [pod(0, restarted('c-0', 5000), { roleLabel: 'primary' })], lostForMs: 10 }),
    ).toMatchObject({ action: 'promote-in-place', primary: 'c-0', firstStart: false });
    // Unreachable: nothing to promote yet.
    expect(decideFailover({ ...base, pods: [pod(0, down('c-0'))], lostForMs: 10 })).toMatchObject({
      action: 'wait',
    });
  });

  it('with no promotable replica, brings the restarted primary back only when no pod may hold more', () => {
    // Every replica restarted empty too (a whole-cluster restart): c-0 is the primary again.
    const allRestarted = [pod(0, restarted('c-0')), pod(1, restarted('c-1')), pod(2, restarted('c-2'))];
    expect(decideFailover({ ...base, pods: allRestarted, lostForMs: 2000 })).toMatchObject({
      action: 'promote-in-place',
      why: expect.stringMatching(/no other pod holds more than it/),
    });
    // Not before afterSeconds: a replica may come back.
    expect(decideFailover({ ...base, pods: allRestarted, lostForMs: 1000 })).toMatchObject({ action: 'wait' });
    // A replica that holds the data but is not Ready: blocked (promoting the empty primary would lose it).
    const notReady = restartedEmpty();
    notReady[1] = { ...notReady[1]!, ready: false };
    notReady[2] = { ...notReady[2]!, ready: false };
    expect(decideFailover({ ...base, pods: notReady, lostForMs: 2000 })).toMatchObject({
      action: 'blocked',
      why: expect.stringMatching(/not making c-0 the primary again: c-1 holds a higher replication offset/),
    });
    // A replica that does not answer may hold writes: blocked.
    const gone = [pod(0, restarted('c-0')), pod(1, down('c-1'))];
    expect(decideFailover({ ...base, pods: gone, lostForMs: 2000 })).toMatchObject({
      action: 'blocked',
      why: expect.stringMatching(/c-1 is unreachable and may hold writes c-0 lacks/),
    });
  });

  it('planRoles repoints a restarted pod to the primary before it gets a label', () => {
    const pods = [
      pod(0, master('c-0', 50), { roleLabel: 'primary' }),
      pod(1, restarted('c-1'), { roleLabel: 'replica' }),
    ];
    expect(planRoles('c-0', pods, { promote: false })).toEqual([
      { op: 'follow', pod: 'c-1', primary: 'c-0', address: addr(0) },
      { op: 'label', pod: 'c-1', role: null },
    ]);
  });
});
