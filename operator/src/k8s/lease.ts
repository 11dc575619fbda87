/**
 * Leader election with a coordination.k8s.io/v1 Lease: optimistic concurrency on resourceVersion, so
 * at most one holder at a time. The holder renews every `renewMs`; another candidate takes the lease
 * only after `leaseDurationSeconds` without a renewal. A holder that cannot renew in time stops leading.
 */
import * as k8s from '@kubernetes/client-node';

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease stays valid without renewal. Default 15 s. */
  leaseDurationSeconds?: number;
  /** How often the holder renews, and candidates retry. Default 2 s. */
  retryMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private lastRenew = 0;
  private stopped = false;
  private readonly duration: number;
  private readonly retryMs: number;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: LeaderElectorOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.retryMs = opts.retryMs ?? 2000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.tryAcquireOrRenew();
      } catch (err) {
        this.opts.log?.('Lease update failed', { error: err instanceof Error ? err.message : String(err) });
      }
      // A leader that could not renew within the lease duration must stop acting as leader.
      if (this.leading && Date.now() - this.lastRenew > this.duration * 1000) this.lose();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.retryMs);
    };
    void tick();
  }

  /** Stops renewing; when leading, releases the lease so a successor need not wait. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity === this.opts.identity) {
        delete lease.spec.holderIdentity;
        lease.spec.leaseDurationSeconds = 1;
        lease.spec.renewTime = new k8s.V1MicroTime(Date.now() - 2000);
        await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
      }
    } catch {
      // The lease expires by itself.
    }
  }

  private lose(): void {
    if (!this.leading) return;
    this.leading = false;
    this.opts.log?.('Lost leadership', { lease: `${this.opts.namespace}/${this.opts.name}` });
    this.opts.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const now = new k8s.V1MicroTime(Date.now());
    let lease: k8s.V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
    }
    if (!lease) {
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.duration,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.acquired();
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
      }
      return;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || Date.now() > renewedAt + (spec.leaseDurationSeconds ?? this.duration) * 1000;
    if (holder !== identity && !expired) {
      if (this.leading) this.lose();
      return;
    }
    const taking = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: now,
      ...(taking ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease }); // fails with 409 if someone else wrote first
      if (taking || !this.leading) this.acquired();
      else this.lastRenew = Date.now();
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) return;
      throw err;
    }
  }

  private acquired(): void {
    this.lastRenew = Date.now();
    if (this.leading) return;
    this.leading = true;
    this.opts.log?.('Acquired leadership', {
      lease: `${this.opts.namespace}/${this.opts.name}`,
    });
    this.opts.onStartedLeading();
  }
}
