import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  caIsReusable,
  createCertificateAuthority,
  issueServingCertificate,
  servingCertificateProblem,
  type CertificateAndKey,
} from './self-signed-certificates.js';

const now = new Date('2030-01-15T12:00:00Z');
const DAY = 86_400_000;

/** The DER bytes of a PEM certificate. */
const der = (pem: string) => Buffer.from(new X509Certificate(pem).raw);

describe('self-signed webhook certificates', () => {
  const hosts = ['ripplecache-webhook.ripplecache-system.svc', '127.0.0.1'];
  let ca: CertificateAndKey;
  let serving: CertificateAndKey;
  /** A CA whose notAfter, 2060-01-15T12:00:00Z, is past 2049. */
  let longLived: CertificateAndKey;
  beforeAll(async () => {
    ca = await createCertificateAuthority({ now });
    longLived = await createCertificateAuthority({ now, validDays: 30 * 365 + 7 });
    serving = await issueServingCertificate(ca, { hosts, now });
  });

  it('makes a CA that node parses as a CA, valid for ten years', () => {
    const x = new X509Certificate(ca.cert);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('CN=ripplecache-webhook-ca');
    expect(x.verify(x.publicKey)).toBe(true);
    expect(new Date(x.validTo).getTime()).toBe(now.getTime() + 3650 * DAY);
    expect(x.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
  });

  it('encodes key usages, the CA path length and times as RFC 5280 says', () => {
    const caDer = der(ca.cert);
    // basicConstraints critical: cA TRUE, pathLenConstraint 0
    expect(caDer.includes(Buffer.from('0603551d130101ff040830060101ff020100', 'hex'))).toBe(true);
    // keyUsage critical: digitalSignature, keyCertSign, cRLSign
    expect(caDer.includes(Buffer.from('0603551d0f0101ff040403020186', 'hex'))).toBe(true);
    // notBefore as UTCTime (before 2050), notAfter of a 30-year CA as GeneralizedTime (from 2050 on)
    expect(caDer.includes(Buffer.from('\x17\x0d300115115500Z', 'latin1'))).toBe(true);
    expect(der(longLived.cert).includes(Buffer.from('\x18\x0f20600115120000Z', 'latin1'))).toBe(true);
    // serving: keyUsage critical digitalSignature + keyEncipherment; basicConstraints critical, empty
    const servingDer = der(serving.cert);
    expect(servingDer.includes(Buffer.from('0603551d0f0101ff0404030205a0', 'hex'))).toBe(true);
    expect(servingDer.includes(Buffer.from('0603551d130101ff04023000', 'hex'))).toBe(true);
  });

  it('issues a serving certificate signed by the CA for the DNS names and IPs asked for', () => {
    const x = new X509Certificate(serving.cert);
    expect(x.ca).toBe(false);
    expect(x.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(x.checkHost('ripplecache-webhook.ripplecache-system.svc')).toBeDefined();
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkHost('other.svc')).toBeUndefined();
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(x.subjectAltName).toBe('DNS:ripplecache-webhook.ripplecache-system.svc, IP Address:127.0.0.1');
    expect(x.issuer).toBe('CN=ripplecache-webhook-ca');
    expect(x.subject).toBe('CN=ripplecache-webhook.ripplecache-system.svc');
    expect(new Date(x.validTo).getTime()).toBe(now.getTime() + 365 * DAY);
    expect(new Date(x.validFrom).getTime()).toBe(now.getTime() - 5 * 60_000);
    expect(x.serialNumber).toMatch(/^[0-9A-F]{32}$/);
  });

  it('accepts a good stored pair and names what is wrong with a bad one', async () => {
    const pair = { ...serving, caCert: ca.cert, caKey: ca.key };
    expect(servingCertificateProblem(pair, { hosts, now })).toBeUndefined();
    expect(servingCertificateProblem(pair, { hosts: ['elsewhere.svc'], now })).toEqual({
      code: 'MissingHost',
      message: 'does not name elsewhere.svc',
      host: 'elsewhere.svc',
    });
    expect(servingCertificateProblem(pair, { hosts, now: new Date(now.getTime() + 340 * DAY) })).toMatchObject({
      code: 'Expiring',
      message: expect.stringMatching(/^expires on/) as unknown,
    });
    const other = await createCertificateAuthority({ now });
    expect(servingCertificateProblem({ ...pair, caCert: other.cert, caKey: other.key }, { hosts, now })).toEqual({
      code: 'NotSignedByCa',
      message: 'not signed by the CA',
    });
    expect(servingCertificateProblem({ ...pair, key: other.key }, { hosts, now })).toEqual({
      code: 'KeyMismatch',
      message: 'the private key does not match the certificate',
    });
    expect(servingCertificateProblem({ ...pair, caKey: other.key }, { hosts, now })).toEqual({
      code: 'CaKeyMismatch',
      message: 'the CA private key does not match the CA certificate',
    });
    expect(servingCertificateProblem({ ...pair, cert: 'garbage' }, { hosts, now })).toMatchObject({
      code: 'Unreadable',
      message: expect.stringMatching(/^unreadable/) as unknown,
    });
    const caExpiring = servingCertificateProblem(pair, { hosts, now: new Date(now.getTime() + 3640 * DAY) });
    expect(caExpiring).toMatchObject({
      code: 'CaExpiring',
      message: expect.stringMatching(/^the CA expires on/) as unknown,
    });
  });

  it('says which problems a new CA is needed for', () => {
    const reusable = (code: string) => caIsReusable({ code, message: '' } as Parameters<typeof caIsReusable>[0]);
    expect(['Missing', 'KeyMismatch', 'NotSignedByCa', 'Expiring', 'NotYetValid', 'MissingHost'].map(reusable)).toEqual(
      [true, true, true, true, true, true],
    );
    expect(['Unreadable', 'CaKeyMismatch', 'CaExpiring'].map(reusable)).toEqual([false, false, false]);
  });

  it('encodes IPv6 addresses', async () => {
    const x = new X509Certificate((await issueServingCertificate(ca, { hosts: ['::1', 'fd00::a:1'], now })).cert);
    expect(x.checkIP('::1')).toBe('::1');
    expect(x.checkIP('fd00::a:1')).toBe('fd00::a:1');
  });
});
