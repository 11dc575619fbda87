import { describe, expect, it } from 'vitest';
import type { KubeApi, KubeObject } from '../k8s/kube-client.js';
import {
  ALWAYS_LEADING,
  fencedKubeApi,
  Leadership,
  LeaseObservation,
  leaseRequestTimeoutMs,
  NotLeaderError,
  type LeaseRecord,
} from './leadership.js';

/** A hand-driven monotonic clock. */
function fakeClock(start = 1000) {
  let t = start;
  return {
    now: () => t,
    set: (ms: number) => {
      t = ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('Leadership (the holder’s fence)', () => {
  it('is not leading before the first successful acquire', () => {
    const c = fakeClock();
    const l = new Leadership(c.now, 2000);
    expect(l.isLeading()).toBe(false);
    expect(l.hasLapsed()).toBe(false);
    expect(() => l.assertLeading('CONFIG SET')).toThrow(NotLeaderError);
    expect(l.msLeft()).toBe(0);
  });

  it('leads until the renew deadline counted from the start of the last successful renewal', () => {
    const c = fakeClock(10_000);
    const l = new Leadership(c.now, 2000);
    const startedAt = c.now();
    c.advance(300); // the request took 300 ms
    expect(l.renewed(startedAt)).toBe(true);
    expect(l.isLeading()).toBe(true);
    expect(l.msLeft()).toBe(1700);
    c.set(11_999);
    expect(l.isLeading()).toBe(true);
    expect(() => l.assertLeading('CONFIG SET')).not.toThrow();
    c.set(12_000); // startedAt + 2000, not answer time + 2000
    expect(l.isLeading()).toBe(false);
    expect(() => l.assertLeading('CONFIG SET maxmemory')).toThrow(/refusing to CONFIG SET maxmemory/);
    expect(l.hasLapsed()).toBe(true);
  });

  it('is extended by each successful renewal', () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    l.renewed(0);
    for (let t = 500; t <= 10_000; t += 500) {
      c.set(t);
      expect(l.isLeading(), `at ${t}`).toBe(true);
      l.renewed(t);
    }
    c.set(12_000);
    expect(l.isLeading()).toBe(false);
  });

  it('never comes back once lapsed, even when a late renewal answer arrives', () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    l.renewed(0);
    c.set(1500);
    const startedAt = c.now(); // a renewal sent before the deadline ...
    c.set(2100); // ... is answered after it
    expect(l.isLeading()).toBe(false);
    expect(l.renewed(startedAt)).toBe(false);
    expect(l.isLeading()).toBe(false);
    c.set(2200);
    expect(l.renewed(c.now())).toBe(false); // even a fresh one
    expect(l.isLeading()).toBe(false);
  });

  it('a candidate whose acquire was answered after its own deadline does not lead, but may try again', () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    c.set(2500);
    expect(l.renewed(0)).toBe(false);
    expect(l.isLeading()).toBe(false);
    expect(l.hasLapsed()).toBe(false);
    expect(l.renewed(2500)).toBe(true);
    expect(l.isLeading()).toBe(true);
  });

  it('revoke ends leadership at once and for good', () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    l.renewed(0);
    l.revoke();
    expect(l.isLeading()).toBe(false);
    expect(l.hasLapsed()).toBe(true);
    expect(l.renewed(c.now())).toBe(false);
  });

  it('without leader election the fence always allows', () => {
    expect(ALWAYS_LEADING.isLeading()).toBe(true);
    expect(() => ALWAYS_LEADING.assertLeading('x')).not.toThrow();
  });
});

describe('LeaseObservation (a candidate’s view of the Lease)', () => {
  const rec = (holder: string | undefined, renewTime: string, leaseDurationSeconds = 3): LeaseRecord => ({
    holderIdentity: holder,
    leaseDurationSeconds,
    renewTime,
    acquireTime: '2026-01-01T00:00:00.000000Z',
    leaseTransitions: 0,
  });

  it('is not expired before anything was observed', () => {
    const c = fakeClock();
    expect(new LeaseObservation(c.now, 15).expired()).toBe(false);
  });

  it('waits a whole lease duration from the first observation, whatever renewTime says', () => {
    const c = fakeClock(5000);
    const o = new LeaseObservation(c.now, 15);
    // renewTime long in the past (or a holder whose clock is behind): still a full duration from now.
    o.observe(rec('a', '2000-01-01T00:00:00.000000Z'));
    c.advance(2999);
    expect(o.expired()).toBe(false);
    c.advance(1);
    expect(o.expired()).toBe(true);
  });

  it('restarts the countdown whenever the record changes, not when it stays the same', () => {
    const c = fakeClock(0);
    const o = new LeaseObservation(c.now, 15);
    o.observe(rec('a', 't1'));
    c.set(2000);
    o.observe(rec('a', 't2')); // renewed
    c.set(4000);
    o.observe(rec('a', 't2')); // unchanged: countdown keeps running from 2000
    expect(o.expired()).toBe(false);
    c.set(5000);
    expect(o.expired()).toBe(true);
  });

  it("uses the holder's lease duration from the Lease, else its own", () => {
    const c = fakeClock(0);
    const o = new LeaseObservation(c.now, 3);
    o.observe(rec('a', 't1', 15));
    c.set(14_999);
    expect(o.expired()).toBe(false);
    c.set(15_000);
    expect(o.expired()).toBe(true);
    const p = new LeaseObservation(c.now, 3);
    p.observe({ holderIdentity: 'a', renewTime: 't1' });
    c.advance(3000);
    expect(p.expired()).toBe(true);
  });

  it('a released Lease (no holder) may be taken at once', () => {
    const c = fakeClock(0);
    const o = new LeaseObservation(c.now, 15);
    o.observe(rec(undefined, 't1', 1));
    expect(o.expired()).toBe(true);
    expect(o.holderIdentity).toBeUndefined();
    o.observe(rec('', 't2', 1));
    expect(o.expired()).toBe(true);
  });
});

describe('renew deadline < lease duration keeps two leaders apart', () => {
  /** A small deterministic PRNG, so failures reproduce. */
  function prng(seed: number) {
    let s = seed >>> 0;
    return () => {
      s = (s * 1664525 + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  it('the old holder has stopped before a standby can take over, whatever the latencies', () => {
    const leaseMs = 3000;
    const renewMs = 2000;
    const retryMs = 400;
    for (let seed = 1; seed <= 500; seed++) {
      const rnd = prng(seed);
      const partitionAt = 1000 + rnd() * 5000;
      // The leader renews every retry period until the partition. A renewal is stored by the API server
      // `stored` ms after it was sent and answered `answered` ms after (answered >= stored); it counts for
      // the leader only if the answer got back before the partition, for the standby once it was stored.
      const renewals: Array<{ sent: number; storedAt: number; answeredAt: number }> = [];
      for (let t = 0; t < partitionAt; t += retryMs) {
        const answered = rnd() * 300;
        renewals.push({ sent: t, storedAt: t + answered * rnd(), answeredAt: t + answered });
      }
      const lc = fakeClock(0);
      const leader = new Leadership(lc.now, renewMs);
      for (const r of renewals) {
        if (r.answeredAt >= partitionAt) break;
        lc.set(r.answeredAt);
        leader.renewed(r.sent);
      }
      let lapsedAt = Math.ceil(lc.now());
      for (; ; lapsedAt++) {
        lc.set(lapsedAt);
        if (!leader.isLeading()) break;
      }
      // The standby polls every retry period from a random phase; it sees the last stored renewal.
      const sc = fakeClock(0);
      const standby = new LeaseObservation(sc.now, leaseMs / 1000);
      let takenAt: number | undefined;
      for (let p = rnd() * retryMs; takenAt === undefined; p += retryMs) {
        sc.set(p);
        const seen = renewals.filter((r) => r.storedAt <= p && r.storedAt < partitionAt).at(-1);
        standby.observe({
          holderIdentity: 'leader',
          leaseDurationSeconds: leaseMs / 1000,
          renewTime: String(seen?.sent),
        });
        if (standby.expired()) takenAt = p;
      }
      // No overlap, and a margin of lease duration - renew deadline = 1 s (to the millisecond of the scan).
      expect(takenAt - lapsedAt, `seed ${seed}: lapsed at ${lapsedAt}, taken at ${takenAt}`).toBeGreaterThanOrEqual(
        999,
      );
    }
  });
});

describe('leaseRequestTimeoutMs', () => {
  it('is one retry period, at least 1 s, at most the renew deadline', () => {
    expect(leaseRequestTimeoutMs({ leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2000 })).toBe(
      2000,
    );
    expect(leaseRequestTimeoutMs({ leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs: 400 })).toBe(1000);
    expect(leaseRequestTimeoutMs({ leaseDurationSeconds: 1, renewDeadlineMs: 600, retryPeriodMs: 100 })).toBe(600);
  });
});

describe('fencedKubeApi', () => {
  function recordingKube() {
    const calls: string[] = [];
    const kube: KubeApi = {
      apply: <T extends KubeObject>(obj: T) => {
        calls.push(`apply ${obj.kind}`);
        return Promise.resolve(obj);
      },
      get: () => {
        calls.push('get');
        return Promise.resolve(undefined);
      },
      delete: () => {
        calls.push('delete');
        return Promise.resolve();
      },
      patchStatus: () => {
        calls.push('patchStatus');
        return Promise.resolve();
      },
      event: () => {
        calls.push('event');
        return Promise.resolve();
      },
    };
    return { kube, calls };
  }
  const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name: 'n' };

  it('passes every call through while leading', async () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    l.renewed(0);
    const { kube, calls } = recordingKube();
    const f = fencedKubeApi(kube, l);
    await f.apply({ kind: 'ConfigMap', metadata: { name: 'n', namespace: 'ns' } });
    await f.get(ref);
    await f.delete(ref);
    await f.patchStatus({ ...ref, plural: 'configmaps' }, {});
    await f.event({ involved: ref, type: 'Normal', reason: 'R', message: 'm' });
    expect(calls).toEqual(['apply ConfigMap', 'get', 'delete', 'patchStatus', 'event']);
  });

  it('refuses every write once leadership lapsed, and still reads', async () => {
    const c = fakeClock(0);
    const l = new Leadership(c.now, 2000);
    l.renewed(0);
    c.set(2000);
    const { kube, calls } = recordingKube();
    const f = fencedKubeApi(kube, l);
    expect(() => f.apply({ kind: 'ConfigMap', metadata: { name: 'n', namespace: 'ns' } })).toThrow(NotLeaderError);
    expect(() => f.delete(ref)).toThrow(NotLeaderError);
    expect(() => f.patchStatus({ ...ref, plural: 'configmaps' }, {})).toThrow(NotLeaderError);
    expect(() => f.event({ involved: ref, type: 'Warning', reason: 'R', message: 'm' })).toThrow(NotLeaderError);
    await f.get(ref);
    expect(calls).toEqual(['get']);
  });
});
