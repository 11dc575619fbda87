import { DEFAULTS } from '../api/v1alpha1/types.js';
import type { ResourceRequirements } from '../api/v1alpha1/types.js';
import type { ResourceList } from './kube-types.js';
import { parseQuantity } from './quantity.js';

const MI = 1024 * 1024;

/** CPU request of the Redis container when the spec sets neither `requests.cpu` nor `limits.cpu`. */
export const DEFAULT_REDIS_CPU_REQUEST = '50m';

/**
 * A memory request that fits a Redis of `maxmemory` bytes: maxmemory, plus 25 % for allocator
 * fragmentation, replication and client buffers (which maxmemory does not count), plus 32 Mi for the
 * process itself; in whole mebibytes, rounded up.
 */
export function redisMemoryRequestFor(maxmemoryBytes: number): string {
  const bytes = maxmemoryBytes + Math.ceil(maxmemoryBytes / 4) + 32 * MI;
  return `${Math.ceil(bytes / MI)}Mi`;
}

/**
 * Memory request of the Redis container when the spec sets neither `requests.memory` nor
 * `limits.memory`: what the default maxmemory (256Mi) needs, `352Mi`. It deliberately does not follow
 * `eviction.maxMemory`: eviction is a live setting, and a request in the pod template that moved with
 * it would roll every Redis pod (and lose the cache) on each eviction change.
 */
export const DEFAULT_REDIS_MEMORY_REQUEST = redisMemoryRequestFor(parseQuantity(DEFAULTS.eviction.maxMemory));

/**
 * The Redis container's resources: the spec's, with a request added for each of CPU and memory that the
 * spec leaves entirely open (no request and no limit), so that a Redis pod is never BestEffort (first
 * evicted under node memory pressure, scheduled anywhere). Where the spec sets a limit but no request,
 * Kubernetes itself makes the request equal to the limit. A limit is never added: the CRD already
 * rejects a memory limit below maxMemory, and the operator sets none of its own. Depends on
 * `spec.resources` only, like the restart hash.
 */
export function redisResources(spec: ResourceRequirements | undefined): {
  limits?: ResourceList;
  requests?: ResourceList;
} {
  const limits = spec?.limits;
  const requests: ResourceList = { ...(spec?.requests ?? {}) };
  if (requests['cpu'] === undefined && limits?.['cpu'] === undefined) requests['cpu'] = DEFAULT_REDIS_CPU_REQUEST;
  if (requests['memory'] === undefined && limits?.['memory'] === undefined)
    requests['memory'] = DEFAULT_REDIS_MEMORY_REQUEST;
  return {
    ...(limits !== undefined ? { limits: { ...limits } } : {}),
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
  };
}
