import { describe, expect, it } from 'vitest';
import { parseQuantity } from './quantity.js';
import {
  DEFAULT_REDIS_CPU_REQUEST,
  DEFAULT_REDIS_MEMORY_REQUEST,
  redisMemoryRequestFor,
  redisResources,
} from './redis-resources.js';

const MI = 1024 * 1024;

describe('redisMemoryRequestFor', () => {
  it('is maxmemory + 25 % + 32Mi, in whole Mi rounded up', () => {
    expect(redisMemoryRequestFor(256 * MI)).toBe('352Mi');
    expect(redisMemoryRequestFor(64 * MI)).toBe('112Mi');
    expect(redisMemoryRequestFor(0)).toBe('32Mi');
    expect(redisMemoryRequestFor(1)).toBe('33Mi');
    expect(redisMemoryRequestFor(4 * 1024 * MI)).toBe('5152Mi');
  });

  it('never asks for less than maxmemory', () => {
    for (const bytes of [0, 1, 1023, MI - 1, 100 * MI + 7, 3 * 1024 * MI + 1]) {
      expect(parseQuantity(redisMemoryRequestFor(bytes))).toBeGreaterThan(bytes);
    }
  });
});

describe('redisResources', () => {
  it('without resources: a CPU and a memory request (fits the default maxmemory 256Mi), no limit', () => {
    expect(DEFAULT_REDIS_CPU_REQUEST).toBe('50m');
    expect(DEFAULT_REDIS_MEMORY_REQUEST).toBe('352Mi');
    expect(redisResources(undefined)).toEqual({ requests: { cpu: '50m', memory: '352Mi' } });
    expect(redisResources({})).toEqual({ requests: { cpu: '50m', memory: '352Mi' } });
  });

  it('keeps what the spec sets, and fills only resources left entirely open', () => {
    expect(redisResources({ requests: { cpu: '200m' } })).toEqual({ requests: { cpu: '200m', memory: '352Mi' } });
    expect(redisResources({ requests: { memory: '1Gi' } })).toEqual({ requests: { cpu: '50m', memory: '1Gi' } });
    const full = { limits: { memory: '512Mi', cpu: '1' }, requests: { cpu: '100m', memory: '400Mi' } };
    expect(redisResources(full)).toEqual(full);
  });

  it('adds no request where a limit is set (Kubernetes makes the request equal to it), and never a limit', () => {
    // A derived 352Mi request above a 128Mi limit would be rejected by the API server.
    expect(redisResources({ limits: { memory: '128Mi' } })).toEqual({
      limits: { memory: '128Mi' },
      requests: { cpu: '50m' },
    });
    expect(redisResources({ limits: { cpu: '2', memory: '1Gi' } })).toEqual({ limits: { cpu: '2', memory: '1Gi' } });
    expect(redisResources({ requests: { cpu: '1' } })).not.toHaveProperty('limits');
  });

  it('does not modify the spec', () => {
    const spec = { requests: { cpu: '1' }, limits: { cpu: '2' } };
    const copy = structuredClone(spec);
    redisResources(spec);
    expect(spec).toEqual(copy);
  });
});
