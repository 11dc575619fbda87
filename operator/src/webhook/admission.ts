/**
 * The AdmissionReview (admission.k8s.io/v1) protocol of the sidecar-injection webhook, without the
 * HTTP server: a review of a Pod CREATE in, a review with the response out. The CacheCluster is read
 * through an injected function, so this module does no I/O of its own.
 */
import { ANNOTATION_INJECT, KIND } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import {
  InjectionConflictError,
  injectSidecar,
  isInjected,
  requestedCacheCluster,
  type InjectOptions,
  type PodLike,
} from './inject-sidecar.js';

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  namespace?: string;
  operation?: string;
  object?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export type AdmissionOutcome = 'skipped' | 'injected' | 'already-injected' | 'denied' | 'error';

export interface AdmissionResult {
  review: AdmissionReview;
  outcome: AdmissionOutcome;
  /** Namespace/name of the pod (or its generateName) and the CacheCluster, for logs. */
  pod: string;
  cacheCluster?: string;
  message?: string;
}

export interface AdmissionDeps {
  /** Reads a CacheCluster; undefined when it does not exist. Throws on other API errors. */
  getCacheCluster(namespace: string, name: string): Promise<CacheCluster | undefined>;
  inject?: Partial<InjectOptions>;
}

/** The request is not an AdmissionReview this webhook can answer (HTTP 400). */
export class BadAdmissionReviewError extends Error {
  override readonly name = 'BadAdmissionReviewError';
  readonly code = 'BadAdmissionReview';
}

/** A DNS-1123 subdomain, as CacheCluster names are. */
const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function respond(
  request: AdmissionRequest,
  apiVersion: string,
  response: Omit<AdmissionResponse, 'uid'>,
): AdmissionReview {
  return { apiVersion, kind: 'AdmissionReview', response: { uid: request.uid, ...response } };
}

/** Validates the shape of a decoded AdmissionReview; throws BadAdmissionReviewError. */
export function parseAdmissionReview(body: unknown): AdmissionReview & { request: AdmissionRequest } {
  const r = body as Partial<AdmissionReview> | null;
  if (!r || typeof r !== 'object' || r.kind !== 'AdmissionReview')
    throw new BadAdmissionReviewError('expected an AdmissionReview');
  if (r.apiVersion !== 'admission.k8s.io/v1')
    throw new BadAdmissionReviewError(
      `unsupported AdmissionReview version ${String(r.apiVersion)}; this webhook speaks admission.k8s.io/v1`,
    );
  if (!r.request || typeof r.request.uid !== 'string')
    throw new BadAdmissionReviewError('the AdmissionReview has no request.uid');
  return r as AdmissionReview & { request: AdmissionRequest };
}

/**
 * Answers a review. Pods without the inject annotation, and requests for anything but a Pod CREATE, are
 * allowed unchanged. An annotated pod gets the sidecar, or is denied with a message saying why (the
 * CacheCluster does not exist, the annotation is not a name, the pod clashes with the sidecar).
 */
export async function reviewPodAdmission(body: unknown, deps: AdmissionDeps): Promise<AdmissionResult> {
  const review = parseAdmissionReview(body);
  const req = review.request;
  const pod = (req.object ?? {}) as PodLike;
  const namespace = req.namespace || pod.metadata?.namespace || 'default';
  const podName = `${namespace}/${pod.metadata?.name ?? `${pod.metadata?.generateName ?? ''}*`}`;
  const allow = (outcome: AdmissionOutcome, extra: Partial<AdmissionResult> = {}): AdmissionResult => ({
    review: respond(req, review.apiVersion, { allowed: true }),
    outcome,
    pod: podName,
    ...extra,
  });
  const deny = (code: number, reason: string, message: string, cacheCluster?: string): AdmissionResult => ({
    review: respond(req, review.apiVersion, { allowed: false, status: { code, reason, message } }),
    outcome: code >= 500 ? 'error' : 'denied',
    pod: podName,
    message,
    ...(cacheCluster ? { cacheCluster } : {}),
  });

  const isPod = (req.kind?.kind ?? 'Pod') === 'Pod' && (req.kind?.group ?? '') === '';
  if (!isPod || (req.operation ?? 'CREATE') !== 'CREATE') return allow('skipped');
  const raw = pod.metadata?.annotations?.[ANNOTATION_INJECT];
  if (raw === undefined) return allow('skipped');
  const name = requestedCacheCluster(pod);
  // Idempotent first (docs/helm.md): a pod that already has the sidecar is left as it is, whatever else.
  if (isInjected(pod)) return allow('already-injected', name === undefined ? {} : { cacheCluster: name });
  if (name === undefined || !NAME_RE.test(name) || name.length > 253) {
    return deny(
      400,
      'BadRequest',
      `annotation ${ANNOTATION_INJECT} must be the name of a ${KIND} in namespace "${namespace}", got "${raw}"`,
    );
  }

  let cc: CacheCluster | undefined;
  try {
    cc = await deps.getCacheCluster(namespace, name);
  } catch (err) {
    return deny(
      500,
      'InternalError',
      `could not read ${KIND} ${namespace}/${name} to inject the ripplecache sidecar: ${err instanceof Error ? err.message : String(err)}`,
      name,
    );
  }
  if (!cc) {
    return deny(
      400,
      'BadRequest',
      `${KIND} "${name}" not found in namespace "${namespace}": the pod's annotation ${ANNOTATION_INJECT} names it, so the ripplecache sidecar cannot be configured. ` +
        `Create the ${KIND} first (kubectl get cacheclusters -n ${namespace}), or fix or remove the annotation.`,
      name,
    );
  }
  try {
    const ops = injectSidecar(pod, cc, deps.inject);
    if (ops.length === 0) return allow('already-injected', { cacheCluster: name });
    return {
      review: respond(req, review.apiVersion, {
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
      }),
      outcome: 'injected',
      pod: podName,
      cacheCluster: name,
    };
  } catch (err) {
    if (err instanceof InjectionConflictError)
      return deny(
        400,
        'BadRequest',
        `cannot inject the ripplecache sidecar for ${KIND} "${name}": ${err.message}`,
        name,
      );
    throw err;
  }
}
