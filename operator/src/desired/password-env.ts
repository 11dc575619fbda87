import type { EnvVar } from './kube-types.js';
import type { ResolvedSpec } from './resolved-spec.js';

/**
 * Environment variables named `names`, each read from the auth Secret key (none without auth):
 * `REDIS_PASSWORD` for redis-server and the exporter, `REDISCLI_AUTH` for redis-cli (probes, flush).
 * The password itself never appears in an object the operator writes.
 */
export function passwordEnv(spec: ResolvedSpec, names: string[]): EnvVar[] {
  const ref = spec.authSecretRef;
  if (ref === undefined) return [];
  return names.map((name) => ({ name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } }));
}
