/**
 * The webhook's self-managed TLS: a self-signed CA and a serving certificate it signs (ECDSA P-256,
 * SHA-256). Issuing goes through @peculiar/x509 over node's WebCrypto (this module is the operator's only
 * importer of it); checking a stored pair uses node's X509Certificate. Pure apart from key generation and
 * randomness; the clock is passed in.
 */
import 'reflect-metadata'; // @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

/** PEM-encoded certificate and PKCS#8 private key. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

export const SELF_SIGNED_DEFAULTS = {
  /** The CA's validity: 10 years (only the serving certificate is rotated). */
  caValidDays: 3650,
  /** The serving certificate's validity: 1 year. */
  certValidDays: 365,
  /** Renew the serving certificate when it has less than this left: 30 days. */
  renewBeforeDays: 30,
  /** The CA's subject common name. */
  caCommonName: 'ripplecache-webhook-ca',
} as const;

const DAY_MS = 86_400_000;
/** Backdating of notBefore, for clocks slightly behind ours. */
const CLOCK_SKEW_MS = 5 * 60_000;

const crypto = webcrypto;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { ...EC_P256, hash: 'SHA-256' } as const;

function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** 16 random bytes, positive and not shortened by leading zeros (RFC 5280 §4.1.2.2: at most 20 octets). */
function serialNumber(): string {
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x01;
  return serial.toString('hex');
}

/** The CA's own key identifier when it states one, else one computed from its public key. */
async function authorityKeyIdentifier(ca: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski
    ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
    : x509.AuthorityKeyIdentifierExtension.create(ca.publicKey, false, crypto);
}

const commonName = (cn: string): x509.JsonName => [{ CN: [cn] }];

/** A self-signed CA that may sign serving certificates only (pathLen 0). */
export async function createCertificateAuthority(opts: {
  now: Date;
  commonName?: string;
  validDays?: number;
}): Promise<CertificateAndKey> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: commonName(opts.commonName ?? SELF_SIGNED_DEFAULTS.caCommonName),
      keys,
      signingAlgorithm: SIGNING,
      notBefore: new Date(opts.now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(opts.now.getTime() + (opts.validDays ?? SELF_SIGNED_DEFAULTS.caValidDays) * DAY_MS),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/** A serving certificate for `hosts` (DNS names and IP addresses), signed by `ca`. */
export async function issueServingCertificate(
  ca: CertificateAndKey,
  opts: { hosts: string[]; now: Date; validDays?: number },
): Promise<CertificateAndKey> {
  if (opts.hosts.length === 0) throw new Error('a serving certificate needs at least one DNS name or IP address');
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), SIGNING, false, ['sign']);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: commonName(opts.hosts[0]!),
      issuer: caCert.subjectName,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING,
      notBefore: new Date(opts.now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(opts.now.getTime() + (opts.validDays ?? SELF_SIGNED_DEFAULTS.certValidDays) * DAY_MS),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await authorityKeyIdentifier(caCert),
        new x509.SubjectAlternativeNameExtension(
          opts.hosts.map((h): x509.JsonGeneralName => ({ type: isIP(h) ? 'ip' : 'dns', value: h })),
          false,
        ),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/**
 * What is wrong with a stored serving certificate, by `code`; `message` says it for logs. `Missing` (nothing
 * stored yet) is for callers that read the pair from somewhere; {@link servingCertificateProblem} never says it.
 */
export type CertificateProblem =
  | { code: 'Missing'; message: string }
  | { code: 'Unreadable'; message: string }
  | { code: 'KeyMismatch'; message: string }
  | { code: 'CaKeyMismatch'; message: string }
  | { code: 'NotSignedByCa'; message: string }
  | { code: 'CaExpiring'; message: string; validTo: string }
  | { code: 'Expiring'; message: string; validTo: string }
  | { code: 'NotYetValid'; message: string; validFrom: string }
  | { code: 'MissingHost'; message: string; host: string };

/** Whether the CA of a pair with this problem can sign its replacement (else a new CA is needed too). */
export function caIsReusable(problem: CertificateProblem): boolean {
  return problem.code !== 'Unreadable' && problem.code !== 'CaKeyMismatch' && problem.code !== 'CaExpiring';
}

/**
 * Why a stored serving certificate must be replaced, or undefined when it is fine: unparsable, not
 * signed by `caCert`, missing one of `hosts`, or expiring within `renewBeforeDays`.
 */
export function servingCertificateProblem(
  pair: { cert: string; key: string; caCert: string; caKey?: string },
  opts: { hosts: string[]; now: Date; renewBeforeDays?: number },
): CertificateProblem | undefined {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
    ca = new X509Certificate(pair.caCert);
    if (!cert.checkPrivateKey(createPrivateKey(pair.key)))
      return { code: 'KeyMismatch', message: 'the private key does not match the certificate' };
    if (pair.caKey !== undefined && !ca.checkPrivateKey(createPrivateKey(pair.caKey)))
      return { code: 'CaKeyMismatch', message: 'the CA private key does not match the CA certificate' };
  } catch (err) {
    return { code: 'Unreadable', message: `unreadable: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!cert.verify(ca.publicKey)) return { code: 'NotSignedByCa', message: 'not signed by the CA' };
  const renewBefore = (opts.renewBeforeDays ?? SELF_SIGNED_DEFAULTS.renewBeforeDays) * DAY_MS;
  if (new Date(ca.validTo).getTime() - opts.now.getTime() < renewBefore)
    return { code: 'CaExpiring', message: `the CA expires on ${ca.validTo}`, validTo: ca.validTo };
  if (new Date(cert.validTo).getTime() - opts.now.getTime() < renewBefore)
    return { code: 'Expiring', message: `expires on ${cert.validTo}`, validTo: cert.validTo };
  if (new Date(cert.validFrom).getTime() > opts.now.getTime() + CLOCK_SKEW_MS)
    return { code: 'NotYetValid', message: `not valid before ${cert.validFrom}`, validFrom: cert.validFrom };
  for (const host of opts.hosts) {
    const ok = isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host, { wildcards: false }) !== undefined;
    if (!ok) return { code: 'MissingHost', message: `does not name ${host}`, host };
  }
  return undefined;
}
