/**
 * The MutatingAdmissionPolicy that writes the default of `spec.replicas` into a CacheCluster, so that the
 * scale subresource (`specReplicasPath: .spec.replicas`) shows the read replicas that run, not 0, when the
 * spec leaves them out. A CRD default cannot depend on another field (the default is 1 with topology
 * replication or cluster and 0 with standalone); this policy runs inside the API server (GA and on by default
 * in Kubernetes 1.36), so it needs no webhook server and works while the operator is down.
 *
 * It changes a CacheCluster only in two cases (its match conditions):
 * - topology replication or cluster without `spec.replicas`: sets the default, `DEFAULTS.replicas`;
 * - an update that changes the topology to standalone and leaves `spec.replicas` as it was (above 0, e.g. the
 *   value this policy wrote, which a client-side `kubectl apply` keeps): sets 0, the only value standalone
 *   accepts, instead of refusing the change.
 * A standalone CacheCluster without `spec.replicas` is left as it is: its scale already reads 0.
 *
 * `npm run manifests` writes it to charts/ripplecache/files/policies/ (the chart installs it where the API
 * server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy).
 */
import { GROUP, PLURAL } from './constants.js';
import { DEFAULTS } from './types.js';

export const REPLICAS_DEFAULT_POLICY_NAME = `cacheclusters-default-replicas.${GROUP}`;

const topology = (o: string) => `(has(${o}.spec.topology) ? ${o}.spec.topology : '${DEFAULTS.topology}')`;

/** CEL: topology replication or cluster, replicas unset. */
export const NEEDS_DEFAULT = `${topology('object')} != 'standalone' && !has(object.spec.replicas)`;

/** CEL: an update to topology standalone that leaves replicas (above 0) as they were. */
export const TO_STANDALONE_KEEPING_REPLICAS =
  `oldObject != null && ${topology('object')} == 'standalone' && ${topology('oldObject')} != 'standalone' && ` +
  'has(object.spec.replicas) && object.spec.replicas > 0 && has(oldObject.spec.replicas) && ' +
  'object.spec.replicas == oldObject.spec.replicas';

export function replicasDefaultPolicy(): [Record<string, unknown>, Record<string, unknown>] {
  const labels = { 'app.kubernetes.io/name': 'ripplecache', 'app.kubernetes.io/component': 'admission-policy' };
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicy',
      metadata: { name: REPLICAS_DEFAULT_POLICY_NAME, labels },
      spec: {
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [GROUP],
              apiVersions: ['*'],
              operations: ['CREATE', 'UPDATE'],
              // The main resource only: neither cacheclusters/status nor cacheclusters/scale.
              resources: [PLURAL],
            },
          ],
        },
        matchConditions: [
          {
            name: 'replicas-default-or-standalone',
            expression: `(${NEEDS_DEFAULT}) || (${TO_STANDALONE_KEEPING_REPLICAS})`,
          },
        ],
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        mutations: [
          {
            patchType: 'ApplyConfiguration',
            applyConfiguration: {
              expression: `Object{spec: Object.spec{replicas: (${NEEDS_DEFAULT}) ? ${DEFAULTS.replicas} : 0}}`,
            },
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name: REPLICAS_DEFAULT_POLICY_NAME, labels },
      spec: { policyName: REPLICAS_DEFAULT_POLICY_NAME },
    },
  ];
}
