import { createHash } from 'node:crypto';
import { DEFAULT_EXPORTER_IMAGE } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { canonicalJson } from './canonical-json.js';
import type { DesiredOptions } from './desired-options.js';
import { resolveSpec } from './resolved-spec.js';

/**
 * The settings that need a Redis pod restart: image, topology, resources, the exporter and the auth
 * Secret (its name, key and a digest of the password it holds). Never eviction or the persistence mode
 * (live settings: CONFIG SET maxmemory / appendonly / save), never `persistence.storage` (fixed at creation;
 * its volumes are part of the pod template), never `defaultTTLSeconds` or sidecar settings (read by
 * sidecars, not Redis), never the replica count (scaling adds or removes pods only), never `podTemplate`
 * (labels and placement: a change there is a new pod template, which rolls the pods by itself).
 */
export function restartSettings(cc: CacheCluster, opts: DesiredOptions = {}): Record<string, unknown> {
  const spec = resolveSpec(cc);
  return {
    image: spec.image,
    topology: spec.topology,
    resources: spec.resources ?? null,
    exporter: spec.exporter ? { image: opts.exporterImage ?? DEFAULT_EXPORTER_IMAGE } : null,
    authSecret: spec.authSecretRef ?? null,
    // Only when known, so that a CacheCluster without auth keeps the hash it always had.
    ...(opts.authChecksum !== undefined ? { authChecksum: opts.authChecksum } : {}),
  };
}

/** The pod template annotation `cache.ripplecache.io/restart-hash`: 16 hex digits of SHA-256. */
export function restartHash(cc: CacheCluster, opts: DesiredOptions = {}): string {
  return createHash('sha256')
    .update(canonicalJson(restartSettings(cc, opts)))
    .digest('hex')
    .slice(0, 16);
}
