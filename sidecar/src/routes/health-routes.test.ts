import { describe, expect, it } from 'vitest';
import type { TieredCache } from '../tiers/tiered-cache.js';
import { readiness } from './health-routes.js';

/** The three facts readiness() reads of the tiers. */
function tiers(l2Available: boolean, isSubscribed: boolean): TieredCache {
  return { l1Only: false, l2Available, isSubscribed } as unknown as TieredCache;
}

describe('readiness', () => {
  it('without a write connection: the command connection and the subscription decide (no write field)', () => {
    expect(readiness(tiers(true, true), 'drop', false)).toEqual({
      status: 'ready',
      mode: 'redis',
      redis: 'up',
      subscribed: true,
    });
    expect(readiness(tiers(false, true), 'drop', false).status).toBe('not-ready');
  });

  it('the write connection (--durability replicated) counts: down is not ready (degraded with serve-stale)', () => {
    expect(readiness(tiers(true, true), 'drop', false, true)).toEqual({
      status: 'ready',
      mode: 'redis',
      redis: 'up',
      subscribed: true,
      write: 'up',
    });
    expect(readiness(tiers(true, true), 'drop', false, false)).toEqual({
      status: 'not-ready',
      mode: 'redis',
      redis: 'up',
      subscribed: true,
      write: 'down',
    });
    expect(readiness(tiers(true, true), 'serve-stale', false, false).status).toBe('degraded');
    expect(readiness(tiers(true, true), 'drop', true, true).status).toBe('shutting-down');
  });
});
