import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import { InvalidSpecError } from './invalid-spec-error.js';
import { QuantityError, formatBytes, parseQuantity, parseRedisMemory, resolveMaxMemoryBytes } from './quantity.js';
import { cacheCluster, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster => cacheCluster('sessions', withUid('uid-1'), withSpec(spec));

describe('parseQuantity (Kubernetes)', () => {
  it.each<[string | number, number]>([
    ['256Mi', 268435456],
    ['1Gi', 1073741824],
    ['1.5Gi', 1610612736],
    ['64Ki', 65536],
    ['1G', 1_000_000_000],
    ['500M', 500_000_000],
    ['1k', 1000],
    ['1e9', 1_000_000_000],
    ['1E3', 1000],
    ['268435456', 268435456],
    [268435456, 268435456],
    ['0', 0],
    ['0.1', 1], // rounded up to a whole byte, as Quantity.Value() does
    ['256m', 1], // milli: 0.256 bytes, NOT 256 MB
    ['1.1Gi', 1181116007], // exact: 1.1 × 2^30 = 1181116006.4, rounded up
  ])('%j = %d bytes', (q, bytes) => {
    expect(parseQuantity(q)).toBe(bytes);
  });

  it.each(['', 'Mi', '256MB', '256mb', '12 Mi', '-1Mi', '1.2.3', 'abc'])('rejects %j', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
  });

  it('rejects negative numbers and values beyond 2^53', () => {
    expect(() => parseQuantity(-1)).toThrow(QuantityError);
    expect(() => parseQuantity('16Ei')).toThrow(QuantityError);
  });
});

describe('parseRedisMemory (redis.conf / CONFIG)', () => {
  it.each<[string | number, number]>([
    ['268435456', 268435456],
    [268435456, 268435456],
    ['256mb', 256 * 1024 * 1024],
    ['256MB', 256 * 1024 * 1024],
    ['256m', 256_000_000],
    ['1gb', 1024 ** 3],
    ['1g', 1_000_000_000],
    ['64kb', 65536],
    ['64k', 64_000],
    ['100b', 100],
    ['0', 0],
  ])('%j = %d bytes', (v, bytes) => {
    expect(parseRedisMemory(v)).toBe(bytes);
  });

  it('does not confuse Redis mb with Kubernetes Mi or M', () => {
    expect(parseRedisMemory('256mb')).toBe(parseQuantity('256Mi'));
    expect(parseRedisMemory('256m')).toBe(parseQuantity('256M'));
    expect(parseRedisMemory('256mb')).not.toBe(parseQuantity('256M'));
  });

  it.each(['256Mi', '1.5gb', '-1', 'lots', ''])('rejects %j', (v) => {
    expect(() => parseRedisMemory(v)).toThrow(QuantityError);
  });
});

describe('resolveMaxMemoryBytes', () => {
  it('takes maxMemory as given', () => {
    expect(resolveMaxMemoryBytes(cc({ eviction: { maxMemory: '64Mi' } }))).toBe(67108864);
    expect(resolveMaxMemoryBytes(cc({ eviction: { maxMemory: 1048576 } }))).toBe(1048576);
  });

  it('takes a percentage of the memory limit, rounded down', () => {
    expect(
      resolveMaxMemoryBytes(cc({ eviction: { maxMemoryPercent: 75 }, resources: { limits: { memory: '512Mi' } } })),
    ).toBe(402653184);
    expect(
      resolveMaxMemoryBytes(cc({ eviction: { maxMemoryPercent: 33 }, resources: { limits: { memory: 1000 } } })),
    ).toBe(330);
    expect(
      resolveMaxMemoryBytes(cc({ eviction: { maxMemoryPercent: 33 }, resources: { limits: { memory: 1001 } } })),
    ).toBe(330);
  });

  it('defaults to 75% of the limit, else 256Mi', () => {
    expect(resolveMaxMemoryBytes(cc({ resources: { limits: { memory: '1Gi' } } }))).toBe(805306368);
    expect(resolveMaxMemoryBytes(cc({}))).toBe(268435456);
  });

  it('throws InvalidSpecError for what CEL would reject', () => {
    expect(() => resolveMaxMemoryBytes(cc({ eviction: { maxMemoryPercent: 75 } }))).toThrow(InvalidSpecError);
    expect(() =>
      resolveMaxMemoryBytes(cc({ eviction: { maxMemory: '2Gi' }, resources: { limits: { memory: '1Gi' } } })),
    ).toThrow(/exceeds/);
    expect(() => resolveMaxMemoryBytes(cc({ eviction: { maxMemory: '1Gi', maxMemoryPercent: 50 } }))).toThrow(
      /exactly one/,
    );
    expect(() => resolveMaxMemoryBytes(cc({ eviction: { maxMemory: '256mb' } }))).toThrow(InvalidSpecError);
  });
});

describe('formatBytes (status.maxMemory, the MAXMEMORY column)', () => {
  it.each([
    [268435456, '256Mi'],
    [1610612736, '1536Mi'],
    [1073741824, '1Gi'],
    [402653184, '384Mi'],
    [1024, '1Ki'],
    [500_000_000, '500M'],
    [1_000_000_000, '1G'],
    [64_000, '64k'],
    [1_000_001, '1000001'],
    [1, '1'],
    [0, '0'],
  ])('formats %d as %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('is exact: the text parses back to the same bytes', () => {
    for (const n of [1, 1023, 1024, 3 * 1024 * 1024 + 512, 7_000_000, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      expect(parseQuantity(formatBytes(n))).toBe(n);
    }
  });
});
