import type { ResolvedPeer } from './bridge.js';

/** What the builders need beyond the CacheCluster itself. */
export interface DesiredOptions {
  /**
   * The eviction settings the operator has verified on every pod with CONFIG SET / CONFIG GET. The
   * rendered `redis.conf` carries these, so that a restarted pod starts with what is live. Default: the
   * spec's settings (right for the first creation, before any pod exists).
   */
  appliedEviction?: { maxmemory: number; maxmemoryPolicy: string };
  /** Image of the `redis_exporter` container. Default `oliver006/redis_exporter:v1.62.0`. */
  exporterImage?: string;
  /**
   * A digest of the current Redis password (never the password), read by the operator from the auth
   * Secret. Part of the restart hash, so that a rotated password rolls the Redis pods, which read it from
   * the Secret only at start. Default: none (no auth, or the Secret is not there yet).
   */
  authChecksum?: string;
  /**
   * The cross-cluster bridge: the peers it relays to (`resolvePeers`) and its image (the sidecar image).
   * With no peer, no bridge is built and an existing one is deleted; without it, the bridge is left alone.
   */
  bridge?: { peers: readonly ResolvedPeer[]; image: string };
}
