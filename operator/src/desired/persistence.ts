/**
 * The Redis persistence settings of `spec.persistence.mode`, as Redis names them and as `CONFIG GET`
 * reports them. Live settings: the operator applies them with CONFIG SET (no restart), and `redis.conf`
 * carries them for pods that start later.
 */
import type { CacheCluster, PersistenceMode } from '../api/v1alpha1/types.js';
import { InvalidSpecError } from './invalid-spec-error.js';
import { resolveSpec } from './resolved-spec.js';

export interface PersistenceSettings {
  appendonly: 'yes' | 'no';
  /** `save` as CONFIG GET reports it: `""` (no snapshots) is the empty string. */
  save: string;
}

/** The RDB snapshot points of mode `rdb` (Redis' own defaults): after 3600 s and 1 change, 300 s and 100, 60 s and 10000. */
export const RDB_SAVE_POINTS = '3600 1 300 100 60 10000';

export function persistenceSettings(mode: PersistenceMode): PersistenceSettings {
  switch (mode) {
    case 'none':
      return { appendonly: 'no', save: '' };
    case 'rdb':
      return { appendonly: 'no', save: RDB_SAVE_POINTS };
    case 'aof':
      return { appendonly: 'yes', save: '' };
  }
}

/**
 * The settings the spec asks for. Throws `InvalidSpecError` for mode `rdb` or `aof` without
 * `persistence.storage` (the CRD rejects it; an object stored by an older CRD may still have it): the
 * operator never writes "persistent" data to a volume that goes away with the pod.
 */
export function desiredPersistence(cc: CacheCluster): PersistenceSettings {
  const p = resolveSpec(cc).persistence;
  if (p.mode !== 'none' && p.storage === undefined) {
    throw new InvalidSpecError(
      'PersistenceWithoutStorage',
      `persistence.mode ${p.mode} needs persistence.storage (the volumes Redis writes to); set storage.size or use mode none`,
    );
  }
  return persistenceSettings(p.mode);
}
