/**
 * Leader election with a coordination.k8s.io/v1 Lease, with client-go's leaderelection semantics:
 * - optimistic concurrency on resourceVersion, so at most one writer of each Lease version;
 * - a candidate takes a Lease held by someone else only after the lease duration has passed on its own
 *   monotonic clock since it last saw the Lease record change (no comparison of two machines' wall clocks);
 * - the holder renews every retry period; every API request is time-boxed (aborted after
 *   `leaseRequestTimeoutMs`), so a frozen TCP connection cannot stall the loop;
 * - the holder's leadership (the `Leadership` fence) lapses `renewDeadlineMs` after the start of its last
 *   successful renewal, which is before the lease could expire for anyone else. A watchdog timer calls
 *   `onStoppedLeading` at that moment, and the fence refuses writes from then on even if the timer is late.
 */
import * as k8s from '@kubernetes/client-node';
import {
  LeaseObservation,
  leaseRequestTimeoutMs,
  type LeaderElectionTiming,
  type Leadership,
  type MonotonicClock,
} from '../controller/leadership.js';

export interface LeaderElectorOptions extends Omit<LeaderElectionTiming, 'renewDeadlineMs'> {
  /** The fence this elector keeps up to date; its clock and renew deadline are the elector's. */
  leadership: Leadership;
  namespace: string;
  name: string;
  identity: string;
  onStartedLeading: () => void;
  /** Called once when leadership lapses (renew deadline passed, or the Lease was found held by another). */
  onStoppedLeading: (reason: string) => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A request of the Lease loop did not answer within its time box. */
export class LeaseRequestTimeoutError extends Error {
  override readonly name = 'LeaseRequestTimeoutError';
  readonly code = 'LeaseRequestTimeout';
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly clock: MonotonicClock;
  private readonly timeoutMs: number;
  private readonly renewDeadlineMs: number;
  private readonly leadership: Leadership;
  private readonly observation: LeaseObservation;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private started = false;
  private stoppedLeading = false;
  private stopped = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: LeaderElectorOptions,
  ) {
    this.leadership = opts.leadership;
    this.renewDeadlineMs = opts.leadership.renewDeadlineMs;
    if (!(this.renewDeadlineMs < opts.leaseDurationSeconds * 1000))
      throw new RangeError('the renew deadline must be shorter than the lease duration');
    if (!(opts.retryPeriodMs > 0 && opts.retryPeriodMs < this.renewDeadlineMs))
      throw new RangeError('the retry period must be positive and shorter than the renew deadline');
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.clock = opts.leadership.clock;
    this.timeoutMs = leaseRequestTimeoutMs({ ...opts, renewDeadlineMs: this.renewDeadlineMs });
    this.observation = new LeaseObservation(this.clock, opts.leaseDurationSeconds);
  }

  start(): void {
    const tick = async () => {
      if (this.stopped || this.stoppedLeading) return;
      let delay = this.opts.retryPeriodMs;
      try {
        await this.tryAcquireOrRenew();
      } catch (err) {
        this.opts.log?.('Lease update failed', { error: err instanceof Error ? err.message : String(err) });
        // A request that timed out has already waited at least a retry period: try again at once (on a new
        // connection), so one dead connection costs the leader one time box, not a time box plus a period.
        if (err instanceof LeaseRequestTimeoutError) delay = 0;
      }
      this.checkLeadership();
      if (!this.stopped && !this.stoppedLeading) this.timer = setTimeout(() => void tick(), delay);
    };
    void tick();
  }

  /** Stops renewing; when leading, releases the lease so a successor need not wait. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearTimeout(this.watchdog);
    const wasLeading = this.leadership.isLeading();
    this.leadership.revoke();
    if (!wasLeading) return;
    try {
      const { name, namespace } = this.opts;
      const lease = await this.api.readNamespacedLease({ name, namespace }, this.timeBox());
      if (lease.spec?.holderIdentity === this.opts.identity) {
        delete lease.spec.holderIdentity;
        lease.spec.leaseDurationSeconds = 1;
        lease.spec.renewTime = new k8s.V1MicroTime(Date.now() - 2000);
        await this.api.replaceNamespacedLease({ name, namespace, body: lease }, this.timeBox());
      }
    } catch {
      // The lease expires by itself.
    }
  }

  /** Per-request options: an AbortSignal that fires after the time box (covers connect, send and body). */
  private timeBox(): k8s.ConfigurationOptions {
    const ms = this.timeoutMs;
    return {
      middleware: [
        {
          pre: (ctx) => {
            ctx.setSignal(AbortSignal.timeout(ms));
            return new k8s.Observable(Promise.resolve(ctx));
          },
          post: (res) => new k8s.Observable(Promise.resolve(res)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
  }

  private async call<T>(what: string, fn: (options: k8s.ConfigurationOptions) => Promise<T>): Promise<T> {
    try {
      return await fn(this.timeBox());
    } catch (err) {
      if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))
        throw new LeaseRequestTimeoutError(`${what} got no answer within ${this.timeoutMs} ms`, { cause: err });
      throw err;
    }
  }

  /** Fires onStoppedLeading once leadership has lapsed; otherwise re-arms the watchdog for the deadline. */
  private checkLeadership(): void {
    if (this.stoppedLeading || this.stopped || !this.started) return;
    if (this.leadership.isLeading()) {
      if (this.watchdog) clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => this.checkLeadership(), this.leadership.msLeft() + 1);
      return;
    }
    this.stepDown(`the Lease was not renewed within the renew deadline (${this.renewDeadlineMs} ms)`);
  }

  private stepDown(reason: string): void {
    if (this.stoppedLeading) return;
    this.stoppedLeading = true;
    this.leadership.revoke();
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.opts.log?.('Lost leadership', { lease: `${this.opts.namespace}/${this.opts.name}`, reason });
    this.opts.onStoppedLeading(reason);
  }

  private acquired(startedAt: number): void {
    if (this.stopped) return; // shutting down: an answer that arrives now starts nothing
    if (!this.leadership.renewed(startedAt)) return; // lapsed meanwhile: a late answer cannot revive it
    if (!this.started) {
      this.started = true;
      this.opts.log?.('Acquired leadership', {
        lease: `${this.opts.namespace}/${this.opts.name}`,
      });
      this.opts.onStartedLeading();
    }
    this.checkLeadership();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    // Leadership gained by this attempt counts from now, before any request is sent.
    const startedAt = this.clock();
    if (this.leadership.hasLapsed()) return; // never write the Lease again after stepping down
    const now = new k8s.V1MicroTime(Date.now());
    let lease: k8s.V1Lease | undefined;
    try {
      lease = await this.call('reading the Lease', (o) => this.api.readNamespacedLease({ name, namespace }, o));
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
    }
    if (!lease) {
      const spec: k8s.V1LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: this.opts.leaseDurationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      };
      try {
        await this.call('creating the Lease', (o) =>
          this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } }, o),
        );
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 409) return;
        throw err;
      }
      this.observation.observe(recordOf(spec));
      this.acquired(startedAt);
      return;
    }
    const spec = lease.spec ?? {};
    this.observation.observe(recordOf(spec));
    const holder = spec.holderIdentity || undefined;
    if (holder !== undefined && holder !== identity) {
      if (this.started) {
        this.stepDown(`the Lease is held by ${holder}`);
        return;
      }
      if (!this.observation.expired()) return;
    }
    if (this.leadership.hasLapsed()) return;
    const taking = holder !== identity;
    const next: k8s.V1LeaseSpec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.opts.leaseDurationSeconds,
      renewTime: now,
      ...(taking ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    lease.spec = next;
    try {
      // Fails with 409 if anyone wrote the Lease since it was read.
      await this.call('updating the Lease', (o) =>
        this.api.replaceNamespacedLease({ name, namespace, body: lease }, o),
      );
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) return;
      throw err;
    }
    this.observation.observe(recordOf(next));
    this.acquired(startedAt);
  }
}

function microTime(t: Date | string | undefined): string | undefined {
  if (t === undefined) return undefined;
  return t instanceof Date ? t.toISOString() : String(t);
}

function recordOf(spec: k8s.V1LeaseSpec) {
  return {
    holderIdentity: spec.holderIdentity,
    leaseDurationSeconds: spec.leaseDurationSeconds,
    acquireTime: microTime(spec.acquireTime),
    renewTime: microTime(spec.renewTime),
    leaseTransitions: spec.leaseTransitions,
  };
}
