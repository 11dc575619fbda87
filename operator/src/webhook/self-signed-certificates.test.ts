import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { namedBits, oid, time, unsignedInteger } from './der.js';
import {
  createCertificateAuthority,
  issueServingCertificate,
  servingCertificateProblem,
} from './self-signed-certificates.js';

const now = new Date('2030-01-15T12:00:00Z');
const DAY = 86_400_000;

describe('DER primitives', () => {
  it('encodes OIDs, positive integers, named bits and times as X.690 says', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
    expect(unsignedInteger(Buffer.from([0x80])).toString('hex')).toBe('02020080');
    expect(unsignedInteger(Buffer.from([0, 0, 5])).toString('hex')).toBe('020105');
    expect(namedBits([0]).toString('hex')).toBe('03020780'); // digitalSignature
    expect(namedBits([0, 5, 6]).toString('hex')).toBe('03020186'); // + keyCertSign, cRLSign
    expect(time(new Date('2030-01-15T12:00:00Z')).toString('latin1')).toBe('\x17\x0d300115120000Z');
    expect(time(new Date('2060-01-15T12:00:00Z')).toString('latin1')).toBe('\x18\x0f20600115120000Z');
  });
});

describe('self-signed webhook certificates', () => {
  const ca = createCertificateAuthority({ now });
  const hosts = ['ripplecache-webhook.ripplecache-system.svc', '127.0.0.1'];
  const serving = issueServingCertificate(ca, { hosts, now });

  it('makes a CA that node parses as a CA, valid for ten years', () => {
    const x = new X509Certificate(ca.cert);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('CN=ripplecache-webhook-ca');
    expect(x.verify(x.publicKey)).toBe(true);
    expect(new Date(x.validTo).getTime()).toBe(now.getTime() + 3650 * DAY);
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
  });

  it('accepts a good stored pair and names what is wrong with a bad one', () => {
    const pair = { ...serving, caCert: ca.cert, caKey: ca.key };
    expect(servingCertificateProblem(pair, { hosts, now })).toBeUndefined();
    expect(servingCertificateProblem(pair, { hosts: ['elsewhere.svc'], now })).toBe('does not name elsewhere.svc');
    expect(servingCertificateProblem(pair, { hosts, now: new Date(now.getTime() + 340 * DAY) })).toMatch(/^expires on/);
    const other = createCertificateAuthority({ now });
    expect(servingCertificateProblem({ ...pair, caCert: other.cert, caKey: other.key }, { hosts, now })).toBe(
      'not signed by the CA',
    );
    expect(servingCertificateProblem({ ...pair, key: other.key }, { hosts, now })).toBe(
      'the private key does not match the certificate',
    );
    expect(servingCertificateProblem({ ...pair, cert: 'garbage' }, { hosts, now })).toMatch(/^unreadable/);
  });

  it('encodes IPv6 addresses', () => {
    const x = new X509Certificate(issueServingCertificate(ca, { hosts: ['::1', 'fd00::a:1'], now }).cert);
    expect(x.checkIP('::1')).toBe('::1');
    expect(x.checkIP('fd00::a:1')).toBe('fd00::a:1');
  });
});
