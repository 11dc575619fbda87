import { describe, expect, it } from 'vitest';
import { passwordChecksum } from './auth-checksum.js';
import type { EvictionSettings } from './eviction.js';
import { evictionToRender, renderedEviction, sameEviction } from './rendered-eviction.js';

const lru64: EvictionSettings = { maxmemory: 67108864, maxmemoryPolicy: 'allkeys-lru' };
const lfu128: EvictionSettings = { maxmemory: 134217728, maxmemoryPolicy: 'allkeys-lfu' };

describe('renderedEviction', () => {
  it('reads maxmemory and maxmemory-policy out of redis.conf', () => {
    const cm = { data: { 'redis.conf': 'port 6379\nmaxmemory 67108864\nmaxmemory-policy allkeys-lru\n' } };
    expect(renderedEviction(cm)).toEqual(lru64);
  });

  it.each([
    ['no ConfigMap', undefined],
    ['no redis.conf', { data: {} }],
    ['no maxmemory line', { data: { 'redis.conf': 'maxmemory-policy allkeys-lru\n' } }],
    ['no policy line', { data: { 'redis.conf': 'maxmemory 1024\n' } }],
    [
      'a maxmemory that is not a byte count',
      { data: { 'redis.conf': 'maxmemory 64mb\nmaxmemory-policy noeviction\n' } },
    ],
  ])('is undefined with %s', (_what, cm) => {
    expect(renderedEviction(cm)).toBeUndefined();
  });
});

describe('sameEviction', () => {
  it.each([
    [lru64, { ...lru64 }, true],
    [lru64, lfu128, false],
    [lru64, { ...lru64, maxmemoryPolicy: 'allkeys-lfu' as const }, false],
    [undefined, lru64, false],
    [lru64, undefined, false],
    [undefined, undefined, false],
  ])('%j and %j: %s', (a, b, same) => {
    expect(sameEviction(a, b)).toBe(same);
  });
});

describe('evictionToRender', () => {
  const input = { desired: lfu128, rendered: lru64, configMapExists: true, statefulSetExists: true, allApplied: false };
  it.each([
    ['a new cluster (no ConfigMap): the desired settings', { configMapExists: false }, lfu128],
    ['no StatefulSet yet: the desired settings', { statefulSetExists: false }, lfu128],
    ['every pod runs them: the desired settings', { allApplied: true }, lfu128],
    ['a pod does not run them yet: what is rendered now', {}, lru64],
    ['nothing parseable rendered: the desired settings', { rendered: undefined }, lfu128],
  ])('%s', (_what, over, expected) => {
    expect(evictionToRender({ ...input, ...over })).toEqual(expected);
  });
});

describe('passwordChecksum', () => {
  it('is a stable 16-hex-digit digest that differs per password and does not contain it', () => {
    const a = passwordChecksum('s3cret-password');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(passwordChecksum('s3cret-password')).toBe(a);
    expect(passwordChecksum('s3cret-passwore')).not.toBe(a);
    expect(a).not.toContain('s3cret');
  });
});
