import type { ContainerSecurityContext, PodSecurityContext } from './kube-types.js';

/**
 * The uid of the `redis` user of the official Redis images (`redis:*-alpine` and the Debian-based
 * `redis:*`). The Redis container's command is a shell script that execs redis-server directly, which
 * bypasses the image's entrypoint (the step that drops root with gosu/su-exec), so the pod itself must
 * name the user.
 */
export const REDIS_UID = 999;
/**
 * The gid of the `redis` group of the default image, `redis:7.2-alpine` (1000: Alpine already has a gid
 * 999; the Debian image uses 999). Nothing depends on the group: every path Redis writes to is an
 * emptyDir that `fsGroup` makes writable, and the image's own files are only read.
 */
export const REDIS_GID = 1000;

/**
 * The pod-level security context of the Redis pods and the flush job's pods: Pod Security `restricted`
 * (non-root, the runtime's default seccomp profile) with the Redis image's user.
 */
export function redisPodSecurityContext(): PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: REDIS_UID,
    runAsGroup: REDIS_GID,
    fsGroup: REDIS_GID,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Every container the operator writes: no privilege escalation, no capabilities, a read-only root
 * filesystem (Pod Security `restricted` asks for the first two; writable paths are emptyDir volumes).
 */
export function restrictedContainerSecurityContext(): ContainerSecurityContext {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
}
