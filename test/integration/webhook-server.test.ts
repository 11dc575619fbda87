/**
 * The webhook's HTTPS server on a real loopback socket: TLS with the certificate it was given, and a
 * certificate replaced while serving (rotation) reaching new connections.
 */
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  issueServingCertificate,
  type CertificateAndKey,
} from '../../operator/src/webhook/self-signed-certificates.js';
import { startWebhookServer, WEBHOOK_PATH, type WebhookServer } from '../../operator/src/webhook/webhook-server.js';

let ca: CertificateAndKey;
let first: CertificateAndKey;
let second: CertificateAndKey;
let server: WebhookServer;

/** The certificate the server presents on a new TLS connection (verified against the CA). */
function presented(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: ca.cert }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert.fingerprint256);
      else reject(new Error('no peer certificate'));
    });
    socket.on('error', reject);
  });
}

function post(body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path: WEBHOOK_PATH, method: 'POST', ca: ca.cert, timeout: 5_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  const now = new Date();
  ca = await createCertificateAuthority({ now });
  first = await issueServingCertificate(ca, { hosts: ['127.0.0.1'], now });
  second = await issueServingCertificate(ca, { hosts: ['127.0.0.1'], now });
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: first,
    log: pino({ level: 'silent' }),
    review: async () => ({
      review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u', allowed: true } },
      outcome: 'skipped',
      pod: 'ns/p',
    }),
  });
});

afterAll(async () => server?.close());

describe('webhook HTTPS server', () => {
  it('answers AdmissionReviews over TLS with the certificate it was given', async () => {
    expect(await presented()).toBe(new X509Certificate(first.cert).fingerprint256);
    const res = await post('{"kind":"AdmissionReview"}');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u', allowed: true },
    });
  });

  it('presents a replaced certificate on new connections', async () => {
    server.setCertificate(second);
    expect(await presented()).toBe(new X509Certificate(second.cert).fingerprint256);
    expect((await post('{}')).status).toBe(200);
  });
});
