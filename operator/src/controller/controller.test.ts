import { describe, expect, it } from 'vitest';
import { Controller, done } from './controller.js';

const opts = {
  workers: 1,
  resyncMs: 60_000,
  ownerKind: 'CacheCluster',
  ownerApiVersion: 'cache.ripplecache.io/v1alpha1',
};
const cc = (name: string) => ({ metadata: { namespace: 'shop', name } });
const sts = (name: string, owner: string) => ({
  metadata: {
    namespace: 'shop',
    name,
    ownerReferences: [
      { controller: true, kind: 'CacheCluster', apiVersion: 'cache.ripplecache.io/v1alpha1', name: owner, uid: 'u' },
    ],
  },
});

describe('Controller lanes', () => {
  it('queues CacheClusters that need a first pass ahead of follow-up passes', async () => {
    const fresh = new Set(['shop/new1', 'shop/new2']);
    const c = new Controller(
      { reconcile: () => Promise.resolve(done), isConflict: () => false, needsFirstPass: (k) => fresh.has(k) },
      opts,
    );
    c.handleEvent('StatefulSet', sts('old', 'old'), 'update');
    c.handleEvent('CacheCluster', cc('new1'), 'add');
    c.handleEvent('CacheCluster', cc('old2'), 'update');
    c.handleEvent('CacheCluster', cc('new2'), 'add');
    expect(c.firstPassesWaiting()).toBe(true);
    const order = [await c.queue.get(), await c.queue.get(), await c.queue.get(), await c.queue.get()];
    expect(order).toEqual(['shop/new1', 'shop/new2', 'shop/old', 'shop/old2']);
    expect(c.firstPassesWaiting()).toBe(false);
  });

  it('without the hook every key goes to the normal lane', () => {
    const c = new Controller({ reconcile: () => Promise.resolve(done), isConflict: () => false }, opts);
    c.handleEvent('CacheCluster', cc('a'), 'add');
    expect(c.queue.depth).toBe(1);
    expect(c.firstPassesWaiting()).toBe(false);
  });
});
