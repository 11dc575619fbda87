import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import type { InvalidationReceiver } from '../invalidation/invalidation-receiver.js';
import { InvalidationSubscriber } from './invalidation-subscriber.js';

class FakeClient extends EventEmitter {
  status = 'connecting';
  options = { host: '127.0.0.1', port: 6379 };
  subscribeResult: () => Promise<unknown> = () => Promise.resolve(1);
  pingResult: () => Promise<unknown> = () => Promise.resolve('PONG');
  subscribe = vi.fn(() => this.subscribeResult());
  ping = vi.fn(() => this.pingResult());
  disconnect = vi.fn();
}

const log = { info: vi.fn(), warn: vi.fn(), debug: vi.fn(), error: vi.fn() } as unknown as FastifyBaseLogger;

function setup() {
  const client = new FakeClient();
  const events: string[] = [];
  const receiver = {
    handle: (m: string) => events.push(`message:${m}`),
    subscribed: () => events.push('subscribed'),
    subscriptionLost: () => events.push('lost'),
  } as unknown as InvalidationReceiver;
  const sub = new InvalidationSubscriber({
    client: client as unknown as Redis,
    channel: 'ch',
    receiver,
    log,
    heartbeatMs: 1000,
    onError: () => events.push('error'),
  });
  sub.start();
  return { client, sub, events };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('InvalidationSubscriber', () => {
  it('subscribes on every ready and reports the subscription', async () => {
    const { client, sub, events } = setup();
    client.status = 'ready';
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(0);
    expect(client.subscribe).toHaveBeenCalledWith('ch');
    expect(sub.subscribed).toBe(true);
    expect(events).toEqual(['subscribed']);
  });

  it('passes messages of its channel only', async () => {
    const { client, events } = setup();
    client.emit('message', 'ch', 'm1');
    client.emit('message', 'other', 'm2');
    expect(events).toEqual(['message:m1']);
  });

  it('reports a closed connection as a lost subscription, once', async () => {
    const { client, sub, events } = setup();
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(0);
    client.emit('close');
    client.emit('close');
    expect(sub.subscribed).toBe(false);
    expect(events).toEqual(['subscribed', 'lost']);
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['subscribed', 'lost', 'subscribed']);
  });

  it('a failed heartbeat PING tears the connection down and reports the loss', async () => {
    const { client, events } = setup();
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(0);
    client.pingResult = () => Promise.reject(new Error('Command timed out'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(events).toEqual(['subscribed', 'error', 'lost']);
    expect(client.disconnect).toHaveBeenCalledWith(true);
  });

  it('retries a refused SUBSCRIBE with back-off', async () => {
    const { client, events } = setup();
    client.subscribeResult = () => Promise.reject(new Error('NOPERM'));
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['error']);
    expect(client.disconnect).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(250);
    expect(client.disconnect).toHaveBeenCalledTimes(1);
    client.emit('ready');
    await vi.advanceTimersByTimeAsync(499);
    expect(client.disconnect).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.disconnect).toHaveBeenCalledTimes(2);
  });
});
