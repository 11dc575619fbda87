/**
 * Checks a serving certificate and key read from a directory (a mounted Secret, e.g. cert-manager's)
 * before the webhook serves them: both parse, the key is the certificate's, and the certificate is valid
 * now. A pair that fails is not loaded (at start the webhook retries; on a refresh it keeps serving the
 * current pair), so a half-written rotation or an expired Secret never replaces a working certificate.
 * Pure: node's X509Certificate, the clock passed in. Messages never quote key material.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';

export function tlsPairProblem(pair: { cert: string; key: string }, now: Date): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
  } catch (err) {
    return `tls.crt is not a PEM certificate (${err instanceof Error ? err.message : String(err)})`;
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(pair.key));
  } catch (err) {
    return `tls.key is not a PEM private key (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!matches) return 'tls.key does not match the certificate in tls.crt';
  if (new Date(cert.validTo).getTime() <= now.getTime()) return `the certificate in tls.crt expired on ${cert.validTo}`;
  if (new Date(cert.validFrom).getTime() > now.getTime())
    return `the certificate in tls.crt is not valid before ${cert.validFrom}`;
  return undefined;
}
