/**
 * Runs the sidecar-injection webhook inside the operator: gets a certificate (retrying until it can),
 * serves AdmissionReviews over HTTPS, and re-checks the certificate periodically (a rotated cert-manager
 * Secret, a renewal of the self-managed one, a caBundle someone reset). Every replica serves the webhook,
 * leader or not.
 */
import type { Logger } from 'pino';
import { API_VERSION, KIND } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { KubeApi } from '../k8s/kube-client.js';
import { reviewPodAdmission, type AdmissionOutcome } from './admission.js';
import type { CertificateSource } from './certificate-sources.js';
import type { InjectOptions } from './inject-sidecar.js';
import { startWebhookServer, type TlsPair, type WebhookServer } from './webhook-server.js';

export interface WebhookOptions {
  host: string;
  port: number;
  certificates: CertificateSource;
  kube: KubeApi;
  inject: Partial<InjectOptions>;
  log: Logger;
  /** How often the certificate is re-read or re-checked. Default 60 s. */
  refreshMs?: number;
  /** How long to wait before retrying a failed first certificate load. Default 5 s. */
  retryMs?: number;
  onAdmission?: (outcome: AdmissionOutcome) => void;
}

export interface RunningWebhook {
  readonly port: number;
  close(): Promise<void>;
}

export async function startWebhook(opts: WebhookOptions): Promise<RunningWebhook> {
  const { log } = opts;
  let closed = false;
  let tls: TlsPair | undefined;
  for (;;) {
    try {
      tls = await opts.certificates.load();
      break;
    } catch (err) {
      log.warn(
        { source: opts.certificates.description, err: err instanceof Error ? err.message : String(err) },
        'Could not load the webhook certificate; retrying',
      );
      await new Promise((r) => setTimeout(r, opts.retryMs ?? 5_000));
    }
  }
  const server: WebhookServer = await startWebhookServer({
    host: opts.host,
    port: opts.port,
    tls,
    log,
    review: async (body) => {
      const result = await reviewPodAdmission(body, {
        getCacheCluster: async (namespace, name) =>
          (await opts.kube.get({ apiVersion: API_VERSION, kind: KIND, namespace, name })) as CacheCluster | undefined,
        inject: opts.inject,
      });
      opts.onAdmission?.(result.outcome);
      return result;
    },
  });
  log.info(
    { address: `${opts.host}:${server.port}`, source: opts.certificates.description },
    'Started the sidecar-injection webhook',
  );

  let timer: NodeJS.Timeout | undefined;
  const refresh = async () => {
    try {
      const next = await opts.certificates.load();
      if (next.cert !== tls!.cert || next.key !== tls!.key) {
        server.setCertificate(next);
        tls = next;
        log.info({ source: opts.certificates.description }, 'Reloaded the webhook certificate');
      }
    } catch (err) {
      log.warn(
        { source: opts.certificates.description, err: err instanceof Error ? err.message : String(err) },
        'Could not refresh the webhook certificate; serving the current one',
      );
    }
    if (!closed) {
      timer = setTimeout(() => void refresh(), opts.refreshMs ?? 60_000);
      timer.unref();
    }
  };
  timer = setTimeout(() => void refresh(), opts.refreshMs ?? 60_000);
  timer.unref();

  return {
    port: server.port,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      await server.close();
    },
  };
}
