/**
 * The webhook's self-managed TLS: a self-signed CA and a serving certificate it signs, made with
 * node:crypto alone (ECDSA P-256, SHA-256) so that the operator image needs neither openssl nor an
 * X.509 library. Pure apart from key generation and randomness; the clock is passed in.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  pem,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from './der.js';

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

const OID = {
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

function name(commonName: string): Buffer {
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** The subject key identifier: SHA-1 of the public key's BIT STRING contents (RFC 5280 §4.2.1.2, method 1). */
function keyId(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return createHash('sha1').update(point).digest();
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and write 8 groups of 16 bits.
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function subjectAltNames(hosts: string[]): Buffer {
  return sequence(
    ...hosts.map((h) => (isIP(h) ? implicitPrimitive(7, ipBytes(h)) : implicitPrimitive(2, Buffer.from(h, 'ascii')))),
  );
}

interface SignInput {
  subject: string;
  issuer: string;
  subjectKey: KeyObject;
  issuerKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function signCertificate(input: SignInput): string {
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive
  serial[0]! |= 0x01; // and not shortened by leading zeros
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    algorithm,
    name(input.issuer),
    sequence(time(input.notBefore), time(input.notAfter)),
    name(input.subject),
    input.subjectKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...input.extensions)),
  );
  const signature = sign('sha256', tbs, input.issuerKey); // DER-encoded ECDSA-Sig-Value
  return pem('CERTIFICATE', sequence(tbs, algorithm, bitString(signature)));
}

function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** A self-signed CA that may sign serving certificates only (pathLen 0). */
export function createCertificateAuthority(opts: {
  now: Date;
  commonName?: string;
  validDays?: number;
}): CertificateAndKey {
  const { privateKey, publicKey } = newKeyPair();
  const cn = opts.commonName ?? SELF_SIGNED_DEFAULTS.caCommonName;
  const ski = keyId(publicKey);
  const cert = signCertificate({
    subject: cn,
    issuer: cn,
    subjectKey: publicKey,
    issuerKey: privateKey,
    notBefore: new Date(opts.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(opts.now.getTime() + (opts.validDays ?? SELF_SIGNED_DEFAULTS.caValidDays) * DAY_MS),
    extensions: [
      extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))),
      extension(OID.keyUsage, true, namedBits([KU.digitalSignature, KU.keyCertSign, KU.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, octetString(ski)),
    ],
  });
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A serving certificate for `hosts` (DNS names and IP addresses), signed by `ca`. */
export function issueServingCertificate(
  ca: CertificateAndKey,
  opts: { hosts: string[]; now: Date; validDays?: number },
): CertificateAndKey {
  if (opts.hosts.length === 0) throw new Error('a serving certificate needs at least one DNS name or IP address');
  const caKey = createPrivateKey(ca.key);
  const caCert = new X509Certificate(ca.cert);
  const caPublic = createPublicKey(caKey);
  const { privateKey, publicKey } = newKeyPair();
  const cert = signCertificate({
    subject: opts.hosts[0]!,
    issuer: caCert.subject.replace(/^CN=/, ''),
    subjectKey: publicKey,
    issuerKey: caKey,
    notBefore: new Date(opts.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(opts.now.getTime() + (opts.validDays ?? SELF_SIGNED_DEFAULTS.certValidDays) * DAY_MS),
    extensions: [
      extension(OID.basicConstraints, true, sequence()),
      extension(OID.keyUsage, true, namedBits([KU.digitalSignature, KU.keyEncipherment])),
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
      extension(OID.subjectKeyIdentifier, false, octetString(keyId(publicKey))),
      extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId(caPublic)))),
      extension(OID.subjectAltName, false, subjectAltNames(opts.hosts)),
    ],
  });
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/**
 * Why a stored serving certificate must be replaced, or undefined when it is fine: unparsable, not
 * signed by `caCert`, missing one of `hosts`, or expiring within `renewBeforeDays`.
 */
export function servingCertificateProblem(
  pair: { cert: string; key: string; caCert: string; caKey?: string },
  opts: { hosts: string[]; now: Date; renewBeforeDays?: number },
): string | undefined {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
    ca = new X509Certificate(pair.caCert);
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) return 'the private key does not match the certificate';
    if (pair.caKey !== undefined && !ca.checkPrivateKey(createPrivateKey(pair.caKey)))
      return 'the CA private key does not match the CA certificate';
  } catch (err) {
    return `unreadable: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!cert.verify(ca.publicKey)) return 'not signed by the CA';
  const renewBefore = (opts.renewBeforeDays ?? SELF_SIGNED_DEFAULTS.renewBeforeDays) * DAY_MS;
  if (new Date(ca.validTo).getTime() - opts.now.getTime() < renewBefore) return `the CA expires on ${ca.validTo}`;
  if (new Date(cert.validTo).getTime() - opts.now.getTime() < renewBefore) return `expires on ${cert.validTo}`;
  if (new Date(cert.validFrom).getTime() > opts.now.getTime() + CLOCK_SKEW_MS)
    return `not valid before ${cert.validFrom}`;
  for (const h of opts.hosts) {
    const ok = isIP(h) ? cert.checkIP(h) !== undefined : cert.checkHost(h, { wildcards: false }) !== undefined;
    if (!ok) return `does not name ${h}`;
  }
  return undefined;
}
