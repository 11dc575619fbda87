import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CacheCluster, FailoverInProgress } from '../api/v1alpha1/types.js';
import type { EventInput, KubeApi, KubeObject, ObjectRef } from '../k8s/kube-client.js';
import type { PodEndpoint } from '../redis/live-config.js';
import type { ReplicationInfo } from '../redis/replication.js';
import { cacheCluster, withStatus, withSpec } from '../../../test/fixtures/cache-cluster.js';
import { failoverStep, type FailoverMemory, type ReplicationDeps } from './failover-step.js';

const log = pino({ level: 'silent' });

/** Three Redis "pods" in memory: what INFO replication answers, and every write made, in order. */
function world(
  infos: Record<string, ReplicationInfo>,
  labels: Record<string, string | undefined>,
  revisions: Record<string, string> = {},
  updateRevision?: string,
  /** The fake clock moves this much on each INFO replication (a switchover's catch-up loop ends). */
  readAdvancesMs = 0,
) {
  const calls: string[] = [];
  const statusPatches: unknown[] = [];
  const events: EventInput[] = [];
  let clock = 0;
  const kube: KubeApi = {
    apply: <T extends KubeObject>(o: T) => Promise.resolve(o),
    get: () => Promise.resolve(undefined),
    delete: () => Promise.resolve(),
    patchStatus: (_ref: ObjectRef, status: unknown) => {
      statusPatches.push(structuredClone(status));
      calls.push(`status ${JSON.stringify(status)}`);
      return Promise.resolve();
    },
    event: (e) => {
      events.push(e);
      return Promise.resolve();
    },
  };
  const memory = new Map<string, FailoverMemory>();
  const steps: string[] = [];
  const replication: ReplicationDeps = {
    readReplication: (ep: PodEndpoint) => {
      clock += readAdvancesMs;
      return Promise.resolve(infos[ep.pod]!);
    },
    promote: (ep) => {
      calls.push(`promote ${ep.pod}`);
      const i = infos[ep.pod]!;
      if (i.reachable) infos[ep.pod] = { ...i, role: 'master' };
      return Promise.resolve();
    },
    follow: (ep, primary) => {
      calls.push(`follow ${ep.pod} ${primary.host}`);
      return Promise.resolve();
    },
    labelPod: (_ns, pod, role) => {
      calls.push(`label ${pod} ${role}`);
      labels[pod] = role ?? undefined;
      return Promise.resolve();
    },
    pauseWrites: (ep, ms) => {
      calls.push(`pause ${ep.pod} ${ms}`);
      return Promise.resolve();
    },
    unpauseWrites: (ep) => {
      calls.push(`unpause ${ep.pod}`);
      return Promise.resolve();
    },
    deletePod: (_ns, pod, uid) => {
      calls.push(`delete ${pod} ${uid}`);
      return Promise.resolve();
    },
    clock: () => clock,
    memory,
    afterFailoverStep: (_key, step) => {
      steps.push(step);
      return Promise.resolve();
    },
  };
  const pod = (name: string, ready: boolean): KubeObject => ({
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}-${revisions[name] ?? 'none'}`,
      labels: {
        ...(labels[name] ? { 'cache.ripplecache.io/role': labels[name] } : {}),
        ...(revisions[name] ? { 'controller-revision-hash': revisions[name] } : {}),
      },
    },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  const deps = {
    kube,
    now: () => new Date('2026-03-01T10:00:00Z'),
    log,
    replication,
    cached: (kind: string, _ns: string, name: string): KubeObject | undefined =>
      kind === 'Pod'
        ? pod(name, infos[name]?.reachable === true)
        : kind === 'StatefulSet' && updateRevision !== undefined
          ? { metadata: { name, generation: 2 }, status: { observedGeneration: 2, updateRevision } }
          : undefined,
    podAddress: (_ns: string, pod: string) => ({ host: `${pod}.dns`, port: 6379 }),
  };
  return {
    deps,
    calls,
    statusPatches,
    events,
    steps,
    memory,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const replicaOf = (
  pod: string,
  primary: string,
  offset: number,
  link: { linkUp: boolean; linkDownSinceSeconds?: number } = { linkUp: true },
): ReplicationInfo => ({
  pod,
  reachable: true,
  role: 'replica',
  offset,
  replid: 'r1',
  masterHost: `${primary}.dns`,
  masterPort: 6379,
  syncInProgress: false,
  ...link,
});

function cc(status?: CacheCluster['status']): CacheCluster {
  return cacheCluster(
    'c',
    withSpec({ topology: 'replication', replicas: 2, failover: { afterSeconds: 2 } }),
    ...(status ? [withStatus(status)] : []),
  );
}

describe('failoverStep', () => {
  it('waits afterSeconds, records the failover first, then unlabels, promotes, repoints, labels, completes', async () => {
    const infos: Record<string, ReplicationInfo> = {
      'c-0': { pod: 'c-0', reachable: true, role: 'master', offset: 100, replid: 'r1', connectedReplicas: 2 },
      'c-1': replicaOf('c-1', 'c-0', 90),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    const w = world(infos, { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' });
    const first = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(first.availability).toMatchObject({ status: 'True', reason: 'PrimaryUp' });
    expect(w.calls).toEqual([]);

    infos['c-0'] = { pod: 'c-0', reachable: false, message: 'refused' };
    infos['c-1'] = replicaOf('c-1', 'c-0', 90, { linkUp: false, linkDownSinceSeconds: 1 });
    infos['c-2'] = replicaOf('c-2', 'c-0', 100, { linkUp: false, linkDownSinceSeconds: 1 });
    const lost = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(lost.availability).toMatchObject({ status: 'False', reason: 'PrimaryLost' });
    expect(w.calls).toEqual([]);
    // The live config step gives the pod that did not answer the probe's time box.
    expect(first.unanswered).toBeUndefined();
    expect(lost.unanswered).toEqual(['c-0']);

    w.advance(2000);
    const done = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls.map((c) => c.replace(/"startedAt":"[^"]+"/, '"startedAt":"…"'))).toEqual([
      'status {"failover":{"from":"c-0","to":"c-2","toOffset":100,"fromOffset":100,"step":"Started","startedAt":"…"}}',
      'label c-0 null',
      'status {"failover":{"from":"c-0","to":"c-2","toOffset":100,"fromOffset":100,"step":"Unlabelled","startedAt":"…"}}',
      'promote c-2',
      'status {"failover":{"from":"c-0","to":"c-2","toOffset":100,"fromOffset":100,"step":"Promoted","startedAt":"…"}}',
      'follow c-1 c-2.dns',
      'status {"failover":{"from":"c-0","to":"c-2","toOffset":100,"fromOffset":100,"step":"Repointed","startedAt":"…"}}',
      'label c-2 primary',
      'label c-1 null',
      expect.stringMatching(/^status \{"primary":"c-2","failover":null,"lastFailover":\{"from":"c-0","to":"c-2"/),
    ]);
    expect(w.steps).toEqual(['Started', 'Unlabelled', 'Promoted', 'Repointed']);
    // An unplanned failover's record has no reason: sent as null, so a switchover's `Planned` does not stay.
    expect(JSON.parse(w.calls.at(-1)!.slice('status '.length)).lastFailover.reason).toBeNull();
    expect(done).toMatchObject({ primary: 'c-2', failover: undefined, lastFailover: { from: 'c-0', to: 'c-2' } });
    expect(w.events).toEqual([
      expect.objectContaining({
        type: 'Normal',
        reason: 'FailoverCompleted',
        message: expect.stringMatching(
          /promoted c-2 \(replication offset 100\) in place of c-0 \(last seen at offset 100\)/,
        ),
      }),
    ]);
    // The lost primary never answered again: its offset is the one it was last seen up with.
    expect(done.lastFailover).toMatchObject({ from: 'c-0', to: 'c-2', toOffset: 100, fromOffset: 100 });
  });

  it('never counts a primary refusing the password as lost: no countdown, no change, AuthenticationFailed', async () => {
    const refused = (pod: string): ReplicationInfo => ({
      pod,
      reachable: false,
      message: `${pod}.dns:6379: authentication failed (WRONGPASS)`,
      authFailed: true,
    });
    const infos: Record<string, ReplicationInfo> = {
      'c-0': { pod: 'c-0', reachable: true, role: 'master', offset: 100, replid: 'r1', connectedReplicas: 2 },
      'c-1': replicaOf('c-1', 'c-0', 100),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    // The pods run the old revision, the StatefulSet a new one (the rotated password's restart hash).
    const revisions = { 'c-0': 'old', 'c-1': 'old', 'c-2': 'old' };
    const w = world(infos, { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' }, revisions, 'new');
    for (const pod of ['c-0', 'c-1', 'c-2']) infos[pod] = refused(pod);
    for (let i = 0; i < 3; i++) {
      const out = await failoverStep(w.deps, cc(), 'shop/c', log, 'new-password');
      expect(out.authFailed).toBe(true);
      expect(out.failover).toBeUndefined();
      expect(out.availability).toMatchObject({
        status: 'False',
        reason: 'AuthenticationFailed',
        message: expect.stringMatching(/c-0 refuses the operator's password .*authentication failed \(WRONGPASS\)/),
      });
      // The roll waits (pods on an old revision): never a stale UpToDate.
      expect(out.roll).toMatchObject({ status: 'True', reason: 'InProgress' });
      expect(JSON.stringify(out)).not.toContain('new-password');
      expect(out.unanswered).toBeUndefined(); // a refusal is an answer
      w.advance(5000); // well past afterSeconds (2 s)
    }
    expect(w.calls).toEqual([]);
    expect(w.memory.get('shop/c')?.lostSince).toBeUndefined();
  });

  it('keeps RollingUpdate truthful while the primary is lost: waiting, not UpToDate', async () => {
    const infos: Record<string, ReplicationInfo> = {
      'c-0': { pod: 'c-0', reachable: false, message: 'refused' },
      'c-1': replicaOf('c-1', 'c-0', 100, { linkUp: false, linkDownSinceSeconds: 1 }),
      'c-2': replicaOf('c-2', 'c-0', 100, { linkUp: false, linkDownSinceSeconds: 1 }),
    };
    const revisions = { 'c-0': 'old', 'c-1': 'old', 'c-2': 'old' };
    const w = world(infos, { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' }, revisions, 'new');
    const out = await failoverStep(w.deps, cc({ primary: 'c-0' }), 'shop/c', log, undefined);
    expect(out.roll).toMatchObject({
      status: 'True',
      reason: 'InProgress',
      message: expect.stringMatching(/primary c-0/),
    });
  });

  it('finishes a failover recorded in status by another leader, with the same target, skipping done steps', async () => {
    const recorded: FailoverInProgress = {
      from: 'c-0',
      to: 'c-1',
      step: 'Promoted',
      startedAt: '2026-03-01T09:59:58Z',
      toOffset: 90,
    };
    const infos: Record<string, ReplicationInfo> = {
      'c-0': { pod: 'c-0', reachable: false, message: 'refused' },
      'c-1': { pod: 'c-1', reachable: true, role: 'master', offset: 90, replid: 'r2', connectedReplicas: 0 },
      'c-2': replicaOf('c-2', 'c-0', 100, { linkUp: false, linkDownSinceSeconds: 5 }),
    };
    // A new leader knows nothing but the status: its memory is empty.
    const w = world(infos, { 'c-0': undefined, 'c-1': 'replica', 'c-2': 'replica' });
    const done = await failoverStep(w.deps, cc({ primary: 'c-0', failover: recorded }), 'shop/c', log, undefined);
    expect(w.calls.filter((c) => !c.startsWith('status'))).toEqual([
      'follow c-2 c-1.dns',
      'label c-1 primary',
      'label c-2 null',
    ]);
    expect(w.calls).not.toContain('promote c-1');
    expect(done).toMatchObject({
      primary: 'c-1',
      lastFailover: { from: 'c-0', to: 'c-1', startedAt: recorded.startedAt },
    });
  });

  const master = (pod: string, offset: number): ReplicationInfo => ({
    pod,
    reachable: true,
    role: 'master',
    offset,
    replid: 'r1',
    connectedReplicas: 2,
  });

  it('rolling update: restarts an old replica (highest ordinal) by uid, one per probe, never the primary', async () => {
    const infos = {
      'c-0': master('c-0', 100),
      'c-1': replicaOf('c-1', 'c-0', 100),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    const labels = { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' };
    const w = world(infos, labels, { 'c-0': 'old', 'c-1': 'old', 'c-2': 'old' }, 'new');
    await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls).toEqual(['delete c-2 uid-c-2-old']);
    expect(w.events).toEqual([expect.objectContaining({ reason: 'RollingUpdate' })]);
    // The informer cache still shows the deleted pod: nothing more is deleted.
    await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls).toEqual(['delete c-2 uid-c-2-old']);
  });

  it('rolling update: switches over (pause, catch up, promote, repoint, unpause) once only the primary is old', async () => {
    const infos: Record<string, ReplicationInfo> = {
      'c-0': master('c-0', 100),
      'c-1': replicaOf('c-1', 'c-0', 95),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    const labels = { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' };
    const w = world(infos, labels, { 'c-0': 'old', 'c-1': 'new', 'c-2': 'new' }, 'new');
    const done = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls.filter((c) => !c.startsWith('status'))).toEqual([
      'label c-0 null',
      'pause c-0 10000',
      'promote c-2',
      'follow c-0 c-2.dns',
      'follow c-1 c-2.dns',
      'unpause c-0',
      'label c-2 primary',
      'label c-1 null',
    ]);
    expect(w.calls[0]).toMatch(/^status \{"failover":\{"from":"c-0","to":"c-2".*"reason":"Planned","step":"Started"/);
    expect(done).toMatchObject({
      primary: 'c-2',
      lastFailover: { from: 'c-0', to: 'c-2', reason: 'Planned' },
      availability: { status: 'True', message: expect.stringMatching(/since a planned switchover from c-0/) },
    });
    expect(w.events).toEqual([
      expect.objectContaining({ reason: 'SwitchoverCompleted', message: expect.stringMatching(/from c-0 to c-2/) }),
    ]);
    // Next probe: c-0 is a replica of c-2 on the old revision: it is restarted.
    infos['c-0'] = replicaOf('c-0', 'c-2', 100);
    infos['c-1'] = replicaOf('c-1', 'c-2', 100);
    infos['c-2'] = master('c-2', 100);
    labels['c-0'] = 'replica';
    labels['c-1'] = 'replica';
    labels['c-2'] = 'primary';
    w.calls.length = 0;
    await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls).toEqual(['delete c-0 uid-c-0-old']);
  });

  it('rolling update: a new leader finishes a planned switchover recorded in status, pausing writes again', async () => {
    const recorded: FailoverInProgress = {
      from: 'c-0',
      to: 'c-2',
      step: 'Unlabelled',
      startedAt: '2026-03-01T09:59:58Z',
      toOffset: 100,
      fromOffset: 100,
      reason: 'Planned',
    };
    const infos: Record<string, ReplicationInfo> = {
      'c-0': master('c-0', 100),
      'c-1': replicaOf('c-1', 'c-0', 100),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    const w = world(infos, { 'c-0': undefined, 'c-1': 'replica', 'c-2': 'replica' }, {}, 'new');
    const done = await failoverStep(w.deps, cc({ primary: 'c-0', failover: recorded }), 'shop/c', log, undefined);
    expect(w.calls.filter((c) => !c.startsWith('status'))).toEqual([
      'pause c-0 10000',
      'promote c-2',
      'follow c-0 c-2.dns',
      'follow c-1 c-2.dns',
      'unpause c-0',
      'label c-2 primary',
      'label c-1 null',
    ]);
    expect(done.lastFailover).toMatchObject({ from: 'c-0', to: 'c-2', reason: 'Planned' });
    expect(w.events).toEqual([expect.objectContaining({ reason: 'SwitchoverCompleted' })]);
  });

  it('rolling update: aborts a switchover whose target does not catch up, keeps the primary, backs off', async () => {
    const infos: Record<string, ReplicationInfo> = {
      'c-0': master('c-0', 100),
      'c-1': replicaOf('c-1', 'c-0', 80),
      'c-2': replicaOf('c-2', 'c-0', 90),
    };
    const labels = { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' };
    const w = world(infos, labels, { 'c-0': 'old', 'c-1': 'new', 'c-2': 'new' }, 'new', 1000);
    // The replicas are within IN_SYNC_LAG_BYTES, so the roll switches over; c-2 never reaches 100 while paused.
    const out = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls.filter((c) => !c.startsWith('status'))).toEqual([
      'label c-0 null',
      'pause c-0 10000',
      'unpause c-0',
      'label c-0 primary',
    ]);
    expect(w.calls.filter((c) => c.startsWith('status')).at(-1)).toBe('status {"failover":null}');
    expect(out).toMatchObject({ primary: 'c-0', failover: undefined, lastFailover: undefined });
    expect(w.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: 'SwitchoverAborted',
        message: expect.stringMatching(
          /^switchover from c-0 to c-2 aborted: the target did not catch up within 5 s \(offset 90, the primary's 100: 10 bytes behind\); c-0 stays the primary \(c-0 at offset 100, c-2 at offset 90\); retrying in \d+ s$/,
        ),
      }),
    ]);
    expect(labels['c-0']).toBe('primary');

    // The next probes, within the back-off: no switchover.
    w.calls.length = 0;
    await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls).toEqual([]);
    // After the back-off (10 s, up to 2 s of jitter), it tries again.
    w.advance(12_001);
    await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(w.calls.filter((c) => !c.startsWith('status')).slice(0, 2)).toEqual(['label c-0 null', 'pause c-0 10000']);
    expect(w.events.filter((e) => e.reason === 'SwitchoverAborted')).toHaveLength(2);
    // The second abort waits longer: 20 s.
    expect(w.events[1]!.message).toMatch(/retrying in 2\d s$/);
  });

  it('rolling update: RollingUpdate condition InProgress on a restart, RollStuck after no progress', async () => {
    const infos: Record<string, ReplicationInfo> = {
      'c-0': master('c-0', 100),
      'c-1': replicaOf('c-1', 'c-0', 100),
      'c-2': replicaOf('c-2', 'c-0', 100),
    };
    const labels = { 'c-0': 'primary', 'c-1': 'replica', 'c-2': 'replica' };
    const w = world(infos, labels, { 'c-0': 'old', 'c-1': 'old', 'c-2': 'old' }, 'new');
    const first = await failoverStep(w.deps, cc(), 'shop/c', log, undefined);
    expect(first.roll).toMatchObject({ status: 'True', reason: 'InProgress', message: expect.stringMatching(/c-2/) });
    // c-2 never comes back (its deleted uid stays in the cache): waiting, then stuck.
    w.advance(60_000);
    expect((await failoverStep(w.deps, cc(), 'shop/c', log, undefined)).roll?.reason).toBe('InProgress');
    w.advance(60_000);
    expect((await failoverStep(w.deps, cc(), 'shop/c', log, undefined)).roll).toEqual({
      status: 'True',
      reason: 'RollStuck',
      message: 'rolling update stuck, no progress for 120 s: c-2 is being deleted',
    });
  });
});
