/**
 * The invalidation subscription: its own ioredis connection (a subscribed connection cannot be shared),
 * subscribed explicitly on every `ready` so that we know exactly when messages flow again, and checked
 * with a PING every `heartbeatMs` so that a silently dead connection is noticed (and torn down) within
 * about heartbeatMs + the command time box.
 */
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import type { InvalidationReceiver } from '../invalidation/invalidation-receiver.js';
import { describeError } from '../errors.js';
import { nodeName } from './redis-client.js';
import { backoffDelay, type Backoff } from '../../../common/src/backoff.js';

/** Back-off between failed SUBSCRIBEs: 250 ms doubling to 10 s, no jitter. */
export const RESUBSCRIBE_BACKOFF: Backoff = { baseMs: 250, capMs: 10_000 };

export interface InvalidationSubscriberOptions {
  client: Redis;
  channel: string;
  receiver: InvalidationReceiver;
  log: FastifyBaseLogger;
  heartbeatMs: number;
  onError: (err: unknown) => void;
}

export class InvalidationSubscriber {
  private up = false;
  private stopped = false;
  /** Consecutive failed SUBSCRIBE attempts. */
  private failures = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly client: Redis;
  private readonly channel: string;
  private readonly receiver: InvalidationReceiver;
  private readonly log: FastifyBaseLogger;
  private readonly onError: (err: unknown) => void;

  constructor(private readonly options: InvalidationSubscriberOptions) {
    this.client = options.client;
    this.channel = options.channel;
    this.receiver = options.receiver;
    this.log = options.log;
    this.onError = options.onError;
  }

  get subscribed(): boolean {
    return this.up;
  }

  start(): void {
    this.client.on('ready', () => this.subscribe());
    this.client.on('close', () => this.lost('connection closed'));
    this.client.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receiver.handle(message);
    });
    if (this.client.status === 'ready') this.subscribe();
    this.heartbeat = setInterval(() => this.ping(), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.up = false;
  }

  private subscribe(): void {
    if (this.stopped) return;
    this.client.subscribe(this.channel).then(
      () => {
        this.failures = 0;
        if (this.stopped || this.up) return;
        this.up = true;
        this.log.info(
          { channel: this.channel, redis: nodeName(this.client) },
          'Subscribed to the invalidation channel',
        );
        this.receiver.subscribed();
      },
      (err: unknown) => {
        this.onError(err);
        // Reconnect to try again, backing off: a refusal (e.g. an ACL without this channel) would
        // otherwise loop at the reconnect delay of a fresh connection.
        const delay = backoffDelay(RESUBSCRIBE_BACKOFF, this.failures, 0);
        this.failures++;
        this.log.warn(
          { error: describeError(err), channel: this.channel, attempt: this.failures, retryInMs: delay },
          'Failed to subscribe to the invalidation channel',
        );
        const timer = setTimeout(() => {
          if (!this.stopped) this.client.disconnect(true);
        }, delay);
        timer.unref();
      },
    );
  }

  private lost(why: string): void {
    if (!this.up) return;
    this.up = false;
    this.log.warn({ channel: this.channel, reason: why }, 'Lost the invalidation subscription');
    this.receiver.subscriptionLost();
  }

  private ping(): void {
    if (!this.up || this.stopped) return;
    this.client.ping().catch((err: unknown) => {
      if (!this.up) return;
      this.onError(err);
      this.lost('heartbeat failed');
      this.client.disconnect(true);
    });
  }
}
