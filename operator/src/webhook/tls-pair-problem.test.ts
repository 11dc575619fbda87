import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueServingCertificate } from './self-signed-certificates.js';
import { tlsPairProblem } from './tls-pair-problem.js';

const NOW = new Date('2026-06-01T00:00:00Z');

describe('tlsPairProblem', () => {
  it('accepts a matching pair that is valid now', async () => {
    const ca = await createCertificateAuthority({ now: NOW });
    const serving = await issueServingCertificate(ca, { hosts: ['webhook.ns.svc'], now: NOW, validDays: 30 });
    expect(tlsPairProblem(serving, NOW)).toBeUndefined();
  });

  it('names what is wrong: unparsable files, a key of another certificate, expiry, not yet valid', async () => {
    const ca = await createCertificateAuthority({ now: NOW });
    const other = await createCertificateAuthority({ now: NOW });
    const serving = await issueServingCertificate(ca, { hosts: ['webhook.ns.svc'], now: NOW, validDays: 30 });
    const { validTo, validFrom } = new X509Certificate(serving.cert);

    expect(
      tlsPairProblem({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: serving.key }, NOW),
    ).toMatch(/^tls\.crt is not a PEM certificate/);
    expect(
      tlsPairProblem(
        { cert: serving.cert, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' },
        NOW,
      ),
    ).toMatch(/^tls\.key is not a PEM private key/);
    expect(tlsPairProblem({ cert: serving.cert, key: other.key }, NOW)).toBe(
      'tls.key does not match the certificate in tls.crt',
    );
    const after = new Date(new Date(validTo).getTime() + 1000);
    expect(tlsPairProblem(serving, after)).toBe(`the certificate in tls.crt expired on ${validTo}`);
    const before = new Date(new Date(validFrom).getTime() - 60_000);
    expect(tlsPairProblem(serving, before)).toBe(`the certificate in tls.crt is not valid before ${validFrom}`);
  });

  it('never quotes the key in its message', async () => {
    const ca = await createCertificateAuthority({ now: NOW });
    const body = ca.key.split('\n')[1]!;
    const broken = ca.key.replace(body, body.slice(0, 20));
    const problem = tlsPairProblem({ cert: ca.cert, key: broken }, NOW);
    expect(problem).toBeDefined();
    expect(problem).not.toContain(body.slice(0, 20));
  });
});
