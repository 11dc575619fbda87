import { describe, expect, it } from 'vitest';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { BadAdmissionReviewError, reviewPodAdmission, type AdmissionDeps } from './admission.js';
import { SIDECAR_CONTAINER_NAME } from './inject-sidecar.js';
import { cacheCluster } from '../../../test/fixtures/cache-cluster.js';

const sessions = cacheCluster('sessions');

const deps = (clusters: CacheCluster[] = [sessions]): AdmissionDeps => ({
  getCacheCluster: async (ns, name) => clusters.find((c) => c.metadata.namespace === ns && c.metadata.name === name),
});

function review(
  annotations: Record<string, string> | undefined,
  extra: Record<string, unknown> = {},
  containers = [{ name: 'app' }],
) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'shop',
      operation: 'CREATE',
      object: { metadata: { generateName: 'web-', ...(annotations ? { annotations } : {}) }, spec: { containers } },
      ...extra,
    },
  };
}

describe('reviewPodAdmission', () => {
  it('allows pods without the annotation unchanged', async () => {
    const r = await reviewPodAdmission(review(undefined), deps());
    expect(r.outcome).toBe('skipped');
    expect(r.review.response).toEqual({ uid: 'u-1', allowed: true });
    expect(r.review).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
  });

  it('returns a base64 JSON Patch for an annotated pod', async () => {
    const r = await reviewPodAdmission(review({ 'cache.ripplecache.io/inject': 'sessions' }), deps());
    expect(r.outcome).toBe('injected');
    expect(r.review.response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(r.review.response!.patch!, 'base64').toString('utf8')) as Array<{
      path: string;
      value: { name?: string };
    }>;
    expect(ops[0]).toMatchObject({
      path: '/spec/initContainers',
      value: [{ name: SIDECAR_CONTAINER_NAME, restartPolicy: 'Always' }],
    });
  });

  it('denies a pod naming a missing CacheCluster with a readable message', async () => {
    const r = await reviewPodAdmission(review({ 'cache.ripplecache.io/inject': 'nope' }), deps());
    expect(r.outcome).toBe('denied');
    expect(r.review.response!.allowed).toBe(false);
    expect(r.review.response!.status!.code).toBe(400);
    expect(r.review.response!.status!.message).toContain('CacheCluster "nope" not found in namespace "shop"');
  });

  it('denies an annotation that is not a name', async () => {
    const r = await reviewPodAdmission(review({ 'cache.ripplecache.io/inject': 'Not A Name' }), deps());
    expect(r.outcome).toBe('denied');
    expect(r.review.response!.status!.message).toContain('must be the name of a CacheCluster');
  });

  it('reports API errors as a 500 denial (the failure policy does not apply to a denial)', async () => {
    const r = await reviewPodAdmission(review({ 'cache.ripplecache.io/inject': 'sessions' }), {
      getCacheCluster: async () => {
        throw new Error('forbidden');
      },
    });
    expect(r.outcome).toBe('error');
    expect(r.review.response!.status).toMatchObject({ code: 500 });
    expect(r.review.response!.status!.message).toContain('forbidden');
  });

  it('does not inject twice, and does not even look the CacheCluster up then', async () => {
    let lookups = 0;
    const r = await reviewPodAdmission(
      review({ 'cache.ripplecache.io/inject': 'sessions' }, {}, [{ name: 'app' }, { name: SIDECAR_CONTAINER_NAME }]),
      {
        getCacheCluster: async () => {
          lookups++;
          return sessions;
        },
      },
    );
    expect(r.outcome).toBe('already-injected');
    expect(r.review.response).toEqual({ uid: 'u-1', allowed: true });
    expect(lookups).toBe(0);
  });

  it('leaves a pod that already has the sidecar as it is, even with a malformed annotation (idempotent first)', async () => {
    const r = await reviewPodAdmission(
      review({ 'cache.ripplecache.io/inject': 'BAD' }, {}, [{ name: 'app' }, { name: SIDECAR_CONTAINER_NAME }]),
      {
        getCacheCluster: async () => {
          throw new Error('not looked up');
        },
      },
    );
    expect(r.outcome).toBe('already-injected');
    expect(r.review.response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('skips anything but a Pod CREATE', async () => {
    expect(
      (await reviewPodAdmission(review({ 'cache.ripplecache.io/inject': 'nope' }, { operation: 'UPDATE' }), deps()))
        .outcome,
    ).toBe('skipped');
    expect(
      (
        await reviewPodAdmission(
          review(
            { 'cache.ripplecache.io/inject': 'nope' },
            { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } },
          ),
          deps(),
        )
      ).outcome,
    ).toBe('skipped');
  });

  it('rejects what is not an admission.k8s.io/v1 AdmissionReview', async () => {
    await expect(reviewPodAdmission({ kind: 'Pod' }, deps())).rejects.toBeInstanceOf(BadAdmissionReviewError);
    await expect(
      reviewPodAdmission({ ...review(undefined), apiVersion: 'admission.k8s.io/v1beta1' }, deps()),
    ).rejects.toThrow(/v1/);
  });
});
