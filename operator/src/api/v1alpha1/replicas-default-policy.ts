/**
 * The MutatingAdmissionPolicy that writes the default of `spec.replicas` into a CacheCluster, so that the
 * scale subresource (`specReplicasPath: .spec.replicas`) answers with the read replicas that run when the
 * spec leaves them out. A CRD default cannot depend on another field (the default is 1 with topology
 * replication or cluster and 0 with standalone); this policy runs inside the API server (GA and on by default
 * in Kubernetes 1.36), so it needs no webhook server and works while the operator is down.
 *
 * The real API server does not read an absent spec.replicas as 0: GET /scale fails with "InternalError: the
 * spec replicas field ".spec.replicas" does not exist" (so `kubectl scale` and an HPA fail), whatever the
 * topology. The policy changes a CacheCluster in three cases (its match conditions):
 * - without `spec.replicas`: sets the default, `DEFAULTS.replicas` (1) with topology replication or cluster,
 *   `DEFAULTS.replicasStandalone` (0) with standalone;
 * - an update that changes the topology to standalone and leaves `spec.replicas` as it was (above 0, e.g. the
 *   value this policy wrote, which a client-side `kubectl apply` keeps): sets 0, the only value standalone
 *   accepts, instead of refusing the change;
 * - an update that changes the topology from standalone to replication or cluster and leaves `spec.replicas`
 *   at 0 as it was (the value this policy wrote for standalone): sets the default of the new topology.
 * `npm run manifests` writes it to charts/ripplecache/files/policies/ (the chart installs it where the API
 * server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy).
 *
 * The policy runs before the API server validates the object against the CRD's schema, so it must neither fail
 * nor mangle the error for a malformed object: the schema's own message ("spec.defaultTTLSeconds: Invalid
 * value: … must be of type integer") is what the user must see. Hence:
 * - a first match condition skips the policy unless `spec` is an object whose `topology` (when set) is a string
 *   and whose `replicas` (when set) is an integer: the other conditions read them, and CEL fails on a missing
 *   key ("no such key: spec") or on a comparison of the wrong types; match conditions are ANDed and one that is
 *   false skips the policy whatever the others evaluate to;
 * - the mutation is a JSON patch, not an apply configuration: an apply configuration is merged with structured
 *   merge diff, which first converts the whole object to its typed form and fails on any wrongly typed field
 *   (".spec.defaultTTLSeconds: expected numeric (int or float), got string"), before the schema could report it.
 */
import { GROUP, PLURAL } from './constants.js';
import { DEFAULTS } from './types.js';

export const REPLICAS_DEFAULT_POLICY_NAME = `cacheclusters-default-replicas.${GROUP}`;

const topology = (o: string) => `(has(${o}.spec.topology) ? ${o}.spec.topology : '${DEFAULTS.topology}')`;

/**
 * CEL: spec is an object, with topology (when set) a string and replicas (when set) an integer, so that the
 * conditions and the value below evaluate without error. Anything else is the schema's to refuse.
 */
export const SPEC_WELL_TYPED =
  'has(object.spec) && type(object.spec) == map && ' +
  '(!has(object.spec.topology) || type(object.spec.topology) == string) && ' +
  '(!has(object.spec.replicas) || type(object.spec.replicas) == int)';

/** CEL: replicas unset. */
export const NEEDS_DEFAULT = '!has(object.spec.replicas)';

/** CEL: an update to topology standalone that leaves replicas (above 0) as they were. */
export const TO_STANDALONE_KEEPING_REPLICAS =
  `oldObject != null && ${topology('object')} == 'standalone' && ${topology('oldObject')} != 'standalone' && ` +
  'has(object.spec.replicas) && object.spec.replicas > 0 && has(oldObject.spec.replicas) && ' +
  'object.spec.replicas == oldObject.spec.replicas';

/** CEL: an update from topology standalone to another that leaves replicas at 0 as they were. */
export const FROM_STANDALONE_KEEPING_ZERO =
  `oldObject != null && ${topology('object')} != 'standalone' && ${topology('oldObject')} == 'standalone' && ` +
  'has(object.spec.replicas) && object.spec.replicas == 0 && has(oldObject.spec.replicas) && ' +
  'oldObject.spec.replicas == 0';

/** CEL: the value to write (only evaluated when one of the three conditions holds). */
const VALUE =
  `(${topology('object')} == 'standalone' && (${NEEDS_DEFAULT} || (${TO_STANDALONE_KEEPING_REPLICAS}))) ` +
  `? ${DEFAULTS.replicasStandalone} : ${DEFAULTS.replicas}`;

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
          // First, and separate: a false condition skips the policy even if another one fails to evaluate.
          { name: 'spec-well-typed', expression: SPEC_WELL_TYPED },
          {
            name: 'replicas-default-or-topology-change',
            expression: `(${NEEDS_DEFAULT}) || (${TO_STANDALONE_KEEPING_REPLICAS}) || (${FROM_STANDALONE_KEEPING_ZERO})`,
          },
        ],
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        mutations: [
          {
            // A JSON patch: no conversion of the whole object to its typed form (see above). "add" replaces
            // the member when it exists (the topology-change cases).
            patchType: 'JSONPatch',
            jsonPatch: {
              expression: `[JSONPatch{op: 'add', path: '/spec/replicas', value: ${VALUE}}]`,
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
