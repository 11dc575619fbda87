/**
 * Leadership as a fence, with the timing rules of client-go's leaderelection (pure: no I/O, the clock is
 * injected). Every path that writes (CONFIG SET to Redis, writes to the API server) asks the fence right
 * before it writes, so even a reconcile already in flight cannot write once leadership has lapsed.
 *
 * The holder's side: leadership lasts until `renewDeadlineMs` after the *start* of the last successful
 * renewal (the request was sent then, so the API server stored it no earlier). A candidate's side: a Lease
 * held by someone else counts as expired only after its `leaseDurationSeconds` have passed on the candidate's
 * own monotonic clock since the candidate last saw the Lease record change (never by comparing the holder's
 * wall-clock `renewTime` with its own clock, which two machines may disagree on). With renew deadline <
 * lease duration the old holder stops writing at least `leaseDuration - renewDeadline` before any successor
 * can start.
 */
import type { KubeApi } from '../k8s/kube-client.js';

/** Thrown by `assertLeading` when this process may not write. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  readonly code = 'NotLeader';
}

/** What write paths consult right before they write. */
export interface LeadershipFence {
  /** True while this process may act as the leader. */
  isLeading(): boolean;
  /** Throws NotLeaderError (naming `action`) unless this process may act as the leader. */
  assertLeading(action: string): void;
}

/** The fence without leader election (`--leader-elect=false`): this process is the only one. */
export const ALWAYS_LEADING: LeadershipFence = {
  isLeading: () => true,
  assertLeading: () => undefined,
};

/** A monotonic clock in milliseconds (e.g. `performance.now()`), never the wall clock. */
export type MonotonicClock = () => number;

/**
 * The holder's fence: leading from the first successful acquire until `renewDeadlineMs` after the start
 * of the last successful renewal. Once lapsed (or revoked) it never comes back: a process that lost
 * leadership steps down for good (main exits; its replacement starts as a standby).
 */
export class Leadership implements LeadershipFence {
  private leadingUntil: number | undefined;
  private lost = false;

  constructor(
    readonly clock: MonotonicClock,
    readonly renewDeadlineMs: number,
  ) {}

  /**
   * Records a successful acquire or renewal whose request was started at `startedAt` (clock time).
   * Returns false (and extends nothing) when leadership has already lapsed: a late success cannot revive it.
   */
  renewed(startedAt: number): boolean {
    if (this.hasLapsed()) return false;
    const until = startedAt + this.renewDeadlineMs;
    // An answer that came after its own deadline proves nothing about now (a candidate simply tries again).
    if (this.clock() >= until) return false;
    this.leadingUntil = this.leadingUntil === undefined ? until : Math.max(this.leadingUntil, until);
    return true;
  }

  /** Ends leadership now (shutdown, or the Lease was found held by someone else). */
  revoke(): void {
    if (this.leadingUntil !== undefined) this.lost = true;
    this.leadingUntil = undefined;
  }

  /** True once this process was leading and no longer is. */
  hasLapsed(): boolean {
    if (!this.lost && this.leadingUntil !== undefined && this.clock() >= this.leadingUntil) this.lost = true;
    return this.lost;
  }

  isLeading(): boolean {
    return this.leadingUntil !== undefined && !this.hasLapsed();
  }

  assertLeading(action: string): void {
    if (!this.isLeading())
      throw new NotLeaderError(`not the leader (Lease not renewed within the renew deadline): refusing to ${action}`);
  }

  /** Milliseconds until leadership lapses unless renewed (0 when not leading). */
  msLeft(): number {
    return this.isLeading() ? Math.max(0, this.leadingUntil! - this.clock()) : 0;
  }
}

/** The parts of a Lease spec that identify one renewal (client-go's LeaderElectionRecord). */
export interface LeaseRecord {
  holderIdentity?: string | undefined;
  leaseDurationSeconds?: number | undefined;
  acquireTime?: string | undefined;
  renewTime?: string | undefined;
  leaseTransitions?: number | undefined;
}

/**
 * A candidate's view of the Lease: when its record last changed, on the local monotonic clock. The Lease
 * counts as expired `leaseDurationSeconds` (the holder's, as written in the Lease) after that.
 */
export class LeaseObservation {
  private record: string | undefined;
  private observedAt = 0;
  private durationMs = 0;
  private holder: string | undefined;

  constructor(
    private readonly clock: MonotonicClock,
    private readonly defaultDurationSeconds: number,
  ) {}

  /** Notes the record just read (or written); a change restarts the expiry countdown. */
  observe(rec: LeaseRecord): void {
    const key = JSON.stringify([
      rec.holderIdentity ?? '',
      rec.leaseDurationSeconds ?? null,
      rec.acquireTime ?? null,
      rec.renewTime ?? null,
      rec.leaseTransitions ?? null,
    ]);
    if (key === this.record) return;
    this.record = key;
    this.observedAt = this.clock();
    this.holder = rec.holderIdentity || undefined;
    const d = rec.leaseDurationSeconds;
    this.durationMs = (d !== undefined && d > 0 ? d : this.defaultDurationSeconds) * 1000;
  }

  /** The holder last observed, if any. */
  get holderIdentity(): string | undefined {
    return this.holder;
  }

  /** True when nobody holds the Lease, or its holder has not renewed it for a whole lease duration. */
  expired(): boolean {
    if (this.record === undefined) return false;
    return this.holder === undefined || this.clock() >= this.observedAt + this.durationMs;
  }
}

/** The Lease-loop timing (client-go's LeaseDuration / RenewDeadline / RetryPeriod). */
export interface LeaderElectionTiming {
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/**
 * Time box of each API request of the Lease loop: one retry period, but at least 1 s (a busy API server may
 * need that long for a Lease write); never more than the renew deadline.
 */
export function leaseRequestTimeoutMs(t: LeaderElectionTiming): number {
  return Math.min(t.renewDeadlineMs, Math.max(1000, t.retryPeriodMs));
}

/** The API-server writes of `kube`, each refused unless `fence` says this process leads. Reads pass through. */
export function fencedKubeApi(kube: KubeApi, fence: LeadershipFence): KubeApi {
  return {
    get: (ref) => kube.get(ref),
    apply: (obj) => {
      fence.assertLeading(`apply ${obj.kind ?? 'object'} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`);
      return kube.apply(obj);
    },
    delete: (ref) => {
      fence.assertLeading(`delete ${ref.kind} ${ref.namespace}/${ref.name}`);
      return kube.delete(ref);
    },
    patchStatus: (ref, status) => {
      fence.assertLeading(`patch the status of ${ref.kind} ${ref.namespace}/${ref.name}`);
      return kube.patchStatus(ref, status);
    },
    event: (e) => {
      fence.assertLeading(`record an event on ${e.involved.kind} ${e.involved.namespace}/${e.involved.name}`);
      return kube.event(e);
    },
  };
}
