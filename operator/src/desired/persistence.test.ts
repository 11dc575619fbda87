import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import { InvalidSpecError } from './invalid-spec-error.js';
import { desiredPersistence, persistenceSettings } from './persistence.js';
import { cacheCluster, withSpec } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster => cacheCluster('sessions', withSpec(spec));

describe('persistence settings', () => {
  it('maps each mode to appendonly and save as CONFIG GET reports them', () => {
    expect(persistenceSettings('none')).toEqual({ appendonly: 'no', save: '' });
    expect(persistenceSettings('rdb')).toEqual({ appendonly: 'no', save: '3600 1 300 100 60 10000' });
    expect(persistenceSettings('aof')).toEqual({ appendonly: 'yes', save: '' });
  });

  it('defaults to none, with or without storage', () => {
    expect(desiredPersistence(cc({}))).toEqual({ appendonly: 'no', save: '' });
    expect(desiredPersistence(cc({ persistence: { storage: { size: '1Gi' } } }))).toEqual({
      appendonly: 'no',
      save: '',
    });
    expect(desiredPersistence(cc({ persistence: { mode: 'aof', storage: { size: '1Gi' } } }))).toEqual({
      appendonly: 'yes',
      save: '',
    });
  });

  it('refuses rdb or aof without storage (a stored object the CRD now rejects): never persist to an emptyDir', () => {
    for (const mode of ['rdb', 'aof'] as const) {
      let err: unknown;
      try {
        desiredPersistence(cc({ persistence: { mode } }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidSpecError);
      expect((err as InvalidSpecError).reason).toBe('PersistenceWithoutStorage');
      expect((err as InvalidSpecError).message).toMatch(/needs persistence\.storage/);
    }
  });
});
