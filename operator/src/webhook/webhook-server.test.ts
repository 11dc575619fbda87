import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadAdmissionReviewError, type AdmissionResult } from './admission.js';
import {
  createCertificateAuthority,
  issueServingCertificate,
  type CertificateAndKey,
} from './self-signed-certificates.js';
import { buildWebhookApp, MAX_BODY_BYTES, WEBHOOK_PATH } from './webhook-server.js';

const now = new Date('2030-01-15T12:00:00Z');
let tls: CertificateAndKey;
const lines: Array<Record<string, unknown>> = [];
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      cb();
    },
  }),
);

const injected: AdmissionResult = {
  review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } },
  outcome: 'injected',
  pod: 'shop/web-',
  cacheCluster: 'sessions',
};

let reviewed: unknown[] = [];
let answer: (body: unknown) => Promise<AdmissionResult> = async () => injected;
let app: ReturnType<typeof buildWebhookApp>;

beforeAll(async () => {
  const ca = await createCertificateAuthority({ now });
  tls = await issueServingCertificate(ca, { hosts: ['127.0.0.1'], now });
  app = buildWebhookApp({
    tls,
    log,
    review: async (body) => {
      reviewed.push(body);
      return answer(body);
    },
  });
  await app.ready();
});
afterAll(async () => app.close());

describe('webhook app', () => {
  it('keeps the timeouts of the https server: headers 15 s, request 30 s, idle keep-alive 5 s', () => {
    expect(app.server.headersTimeout).toBe(15_000);
    expect(app.server.requestTimeout).toBe(30_000);
    expect(app.server.keepAliveTimeout).toBe(5_000);
  });

  it('answers an AdmissionReview with the review and logs the admission as JSON', async () => {
    reviewed = [];
    lines.length = 0;
    answer = async () => injected;
    const res = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: { kind: 'AdmissionReview' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(injected.review);
    expect(reviewed).toEqual([{ kind: 'AdmissionReview' }]);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'Injected the sidecar',
        pod: 'shop/web-',
        cacheCluster: 'sessions',
        outcome: 'injected',
      }),
    ]);
  });

  it('reads the body as JSON whatever its content type says', async () => {
    reviewed = [];
    const res = await app.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      headers: { 'content-type': 'text/plain' },
      payload: '{"kind":"AdmissionReview"}',
    });
    expect(res.statusCode).toBe(200);
    expect(reviewed).toEqual([{ kind: 'AdmissionReview' }]);
  });

  it('says 400 BadAdmissionReview for a body that is not JSON, too large, or not a review', async () => {
    const notJson = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: '{nope' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ error: { code: 'BadAdmissionReview' } });

    const big = await app.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      headers: { 'content-type': 'application/json' },
      payload: `"${'x'.repeat(MAX_BODY_BYTES)}"`,
    });
    expect(big.statusCode).toBe(400);
    expect(big.json()).toEqual({
      error: { code: 'BadAdmissionReview', message: `request body larger than ${MAX_BODY_BYTES} bytes` },
    });

    answer = async () => {
      throw new BadAdmissionReviewError('request.uid is missing');
    };
    const bad = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: {} });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: { code: 'BadAdmissionReview', message: 'request.uid is missing' } });
  });

  it('says 500 without details when answering fails, and logs why', async () => {
    lines.length = 0;
    answer = async () => {
      throw new Error('etcd on fire');
    };
    const res = await app.inject({ method: 'POST', url: WEBHOOK_PATH, payload: {} });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: { code: 'InternalError', message: 'the webhook failed; see the operator log' },
    });
    expect(lines).toEqual([
      expect.objectContaining({ level: 50, msg: 'Failed to answer an AdmissionReview', err: 'etcd on fire' }),
    ]);
  });

  it('serves /healthz, 405 for other methods on the webhook path, 404 elsewhere', async () => {
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const get = await app.inject({ method: 'GET', url: WEBHOOK_PATH });
    expect(get.statusCode).toBe(405);
    expect(get.json()).toEqual({ error: { code: 'MethodNotAllowed', message: `use POST ${WEBHOOK_PATH}` } });
    const missing = await app.inject({ method: 'GET', url: '/elsewhere?x=1' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: 'NotFound', message: 'no route GET /elsewhere' } });
  });
});
