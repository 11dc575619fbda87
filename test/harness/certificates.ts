/**
 * The test control plane's PKI, issued with @peculiar/x509 over node's WebCrypto (no openssl CLI): a
 * self-signed EC P-256 CA and certificates it signs (server or client, with O= groups, DNS and IP SANs).
 * Independent of the operator's own issuing code (operator/src/webhook/self-signed-certificates.ts), so
 * certificates the harness makes are a second opinion on what the operator makes.
 */
import 'reflect-metadata'; // @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';

/** PEM certificate and PKCS#8 private key. */
export interface PemPair {
  cert: string;
  key: string;
}

export interface CertificateRequest {
  commonName: string;
  /** Subject O= values (for client certificates: the user's groups). */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  /** 'server' (serverAuth) or 'client' (clientAuth). */
  usage: 'server' | 'client';
}

const crypto = webcrypto;
const SIGNING = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const VALID_MS = 30 * 86_400_000;

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + VALID_MS) };
}

/** A positive 12-byte serial number in hex. */
const serialNumber = () => `01${randomBytes(11).toString('hex')}`;

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A self-signed CA valid for 30 days: CA:TRUE, keyCertSign + cRLSign + digitalSignature, a key identifier. */
export async function createTestCa(commonName: string): Promise<PemPair> {
  const keys = await crypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: [{ CN: [commonName] }],
      keys,
      signingAlgorithm: SIGNING,
      ...validity(),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** A certificate for `req`, valid for 30 days, signed by `ca`. */
export async function issueTestCertificate(ca: PemPair, req: CertificateRequest): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), SIGNING, false, ['sign']);
  const keys = await crypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
  const sans: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value): x509.JsonGeneralName => ({ type: 'dns', value })),
    ...(req.ipAddresses ?? []).map((value): x509.JsonGeneralName => ({ type: 'ip', value })),
  ];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: [...(req.organizations ?? []).map((o) => ({ O: [o] })), { CN: [req.commonName] }],
      issuer: caCert.subjectName,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING,
      ...validity(),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([
          req.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
        ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans, false)] : []),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}
