/**
 * Where the webhook's serving certificate comes from:
 *
 * - a directory with `tls.crt` and `tls.key` (a mounted Secret, e.g. written by cert-manager, which also
 *   injects the caBundle); re-read periodically so that rotated certificates are picked up;
 * - self-managed: the operator keeps a self-signed CA and a serving certificate in a Secret of its own
 *   namespace (every replica serves the same certificate), renews the certificate before it expires, and
 *   writes the CA as `caBundle` into its MutatingWebhookConfiguration. All API access goes through KubeApi.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { KubeApiError, type KubeApi, type KubeObject } from '../k8s/kube-client.js';
import {
  caIsReusable,
  createCertificateAuthority,
  issueServingCertificate,
  servingCertificateProblem,
  type CertificateAndKey,
  type CertificateProblem,
} from './self-signed-certificates.js';
import { tlsPairProblem } from './tls-pair-problem.js';
import type { TlsPair } from './webhook-server.js';

/** Keys of the self-managed Secret. */
export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export interface CertificateSource {
  /** Reads (or makes) the current certificate. Throws when none can be had. */
  load(): Promise<TlsPair>;
  readonly description: string;
}

/** `tls.crt` + `tls.key` in `dir`, checked by {@link tlsPairProblem} before use. */
export function certificateDirSource(dir: string, now: () => Date = () => new Date()): CertificateSource {
  return {
    description: `certificate directory ${dir}`,
    async load() {
      const [cert, key] = await Promise.all([
        readFile(join(dir, 'tls.crt'), 'utf8'),
        readFile(join(dir, 'tls.key'), 'utf8'),
      ]);
      const problem = tlsPairProblem({ cert, key }, now());
      if (problem !== undefined) throw new Error(`${dir}: ${problem}`);
      return { cert, key };
    },
  };
}

export interface SelfManagedOptions {
  kube: KubeApi;
  /** The Secret holding the CA and the serving certificate (the Helm chart creates it empty). */
  secret: { namespace: string; name: string };
  /** The MutatingWebhookConfiguration whose webhooks get the CA as `caBundle`. None when undefined. */
  webhookConfiguration?: string;
  /** DNS names and IP addresses the serving certificate names (e.g. `<service>.<namespace>.svc`). */
  hosts: string[];
  now: () => Date;
  log: Logger;
}

function decode(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((data ?? {}) as Record<string, string>))
    out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Writes `caPem` as the caBundle of every webhook of the configuration that lacks it. */
export async function ensureCaBundle(
  kube: KubeApi,
  configurationName: string,
  caPem: string,
  log: Logger,
): Promise<boolean> {
  const ref = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    namespace: '',
    name: configurationName,
  };
  const mwc = await kube.get<KubeObject & { webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }> }>(
    ref,
  );
  if (!mwc) {
    log.warn(
      { webhookConfiguration: configurationName },
      'MutatingWebhookConfiguration not found; will write its caBundle once it exists',
    );
    return false;
  }
  const want = b64(caPem);
  const stale = (mwc.webhooks ?? []).filter((w) => w.clientConfig?.caBundle !== want);
  if (stale.length === 0) return true;
  await kube.apply({
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: configurationName },
    webhooks: (mwc.webhooks ?? []).map((w) => ({ name: w.name, clientConfig: { caBundle: want } })),
  });
  log.info(
    { webhookConfiguration: configurationName, webhooks: stale.map((w) => w.name) },
    'Wrote the webhook CA into caBundle',
  );
  return true;
}

/** The operator's own CA and serving certificate, shared by every replica through a Secret. */
export function selfManagedSource(opts: SelfManagedOptions): CertificateSource {
  const { kube, secret, log } = opts;
  const ref = { apiVersion: 'v1', kind: 'Secret', namespace: secret.namespace, name: secret.name };
  return {
    description: `self-managed certificate in Secret ${secret.namespace}/${secret.name}`,
    async load() {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = await kube.get<KubeObject>(ref);
        const data = decode(current?.data);
        const caCert = data[SECRET_KEYS.caCert];
        const caKey = data[SECRET_KEYS.caKey];
        const cert = data[SECRET_KEYS.cert];
        const key = data[SECRET_KEYS.key];
        const problem: CertificateProblem | undefined =
          !caCert || !caKey || !cert || !key
            ? { code: 'Missing', message: 'no certificate yet' }
            : servingCertificateProblem({ cert, key, caCert, caKey }, { hosts: opts.hosts, now: opts.now() });
        if (problem === undefined) {
          if (opts.webhookConfiguration) await ensureCaBundle(kube, opts.webhookConfiguration, caCert!, log);
          return { cert: cert!, key: key! };
        }
        // Keep a CA that is still good (sidecars of other replicas and the caBundle trust it); else make one.
        const keepCa = caCert && caKey && caIsReusable(problem);
        const ca: CertificateAndKey = keepCa
          ? { cert: caCert, key: caKey }
          : await createCertificateAuthority({ now: opts.now() });
        const serving = await issueServingCertificate(ca, { hosts: opts.hosts, now: opts.now() });
        log.info(
          {
            secret: `${secret.namespace}/${secret.name}`,
            reason: problem.message,
            code: problem.code,
            newCa: ca.cert !== caCert,
            hosts: opts.hosts,
          },
          'Issued a webhook serving certificate',
        );
        try {
          // resourceVersion makes the write conditional: of several replicas renewing at once, one wins.
          await kube.apply({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {
              name: secret.name,
              namespace: secret.namespace,
              ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
            },
            data: {
              [SECRET_KEYS.caCert]: b64(ca.cert),
              [SECRET_KEYS.caKey]: b64(ca.key),
              [SECRET_KEYS.cert]: b64(serving.cert),
              [SECRET_KEYS.key]: b64(serving.key),
            },
          });
        } catch (err) {
          if (err instanceof KubeApiError && err.conflict) continue; // another replica wrote first: use theirs
          throw err;
        }
      }
      throw new Error(
        `could not settle the webhook certificate in Secret ${secret.namespace}/${secret.name} after 5 attempts`,
      );
    },
  };
}
