import { REDIS_CONF_KEY, SIDECAR_CONF_KEY } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import { desiredEviction } from './eviction.js';
import type { ConfigMap } from './kube-types.js';
import { configMapName } from './names.js';
import { childMetadata } from './owner-reference.js';
import { renderRedisConf } from './redis-conf.js';
import { renderSidecarYaml } from './sidecar-config.js';

/**
 * `<name>-config`: `redis.conf` for the Redis pods and `sidecar.yaml` for injected sidecars. The
 * eviction values come from `opts.appliedEviction` (what every pod already runs with) when given, else
 * from the spec. Pods mount it under a fixed name, so its content never changes the pod template.
 */
export function desiredConfigMap(cc: CacheCluster, opts: DesiredOptions = {}): ConfigMap {
  const eviction = opts.appliedEviction ?? desiredEviction(cc);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMetadata(cc, configMapName(cc)),
    data: {
      [REDIS_CONF_KEY]: renderRedisConf(cc, eviction),
      [SIDECAR_CONF_KEY]: renderSidecarYaml(cc),
    },
  };
}
