/**
 * One keep-alive connection pool per API server for every request and watch the operator makes.
 *
 * @kubernetes/client-node 1.4 builds a new `https.Agent` (without keep-alive) for every request, in
 * `KubeConfig.applySecurityAuthentication` (generated API clients, `KubernetesObjectApi`) and in
 * `KubeConfig.applyToHTTPSOptions` (`Watch`, hence informers): each request then opens a new TCP
 * connection, builds a new TLS context and does a full TLS handshake. At 1,000 CacheClusters that was more
 * than half of the operator's CPU. Reported upstream:
 * https://github.com/kubernetes-client/javascript/issues/2893
 *
 * The library offers no option to pass an agent, but every request goes through those two public methods of
 * the `KubeConfig` it was given, so this subclass overrides them: it lets the library do all it does
 * (credentials, exec/token refresh, headers, TLS options) and then swaps the throwaway agent for one shared
 * keep-alive agent built from the very same options. The agent is rebuilt when those options change (a
 * rotated client certificate or CA), so credentials are never frozen. With a proxy (`proxy-url`), the
 * library's own proxy agent is kept, unpooled.
 *
 * The Lease elector is the exception: it runs on `unpooled()`, a plain copy (see there).
 *
 * Every request (not watches) is also time-boxed (`requestTimeoutMs`, default 30 s; a caller's own signal, set
 * by a middleware as the Lease elector's, runs later and replaces it): a keep-alive connection that died silently (a NAT or load balancer dropped it, the API
 * server froze) would otherwise hold a reconcile worker forever, while the Lease elector, on fresh
 * connections, keeps renewing — an operator that leads and does nothing. The abort destroys the socket, and
 * the retry gets a new one. Watches are left to the library (it sets TCP keepalive on their sockets) and to
 * the informers' re-list.
 *
 * `kube-connection-pool.test.ts` (integration) fails if the library stops calling these methods, or stops
 * using the agent they set: it counts the TCP connections the operator opens.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';

type RequestContext = Parameters<k8s.KubeConfig['applySecurityAuthentication']>[0];
type HttpsOptions = Parameters<k8s.KubeConfig['applyToHTTPSOptions']>[0];

/** The agent options that make two agents interchangeable (the TLS identity and trust, the server). */
const IDENTITY_OPTIONS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'rejectUnauthorized',
  'servername',
  'ciphers',
  'crl',
] as const;

function fingerprint(server: string, agent: http.Agent): string {
  const options = (agent as http.Agent & { options?: Record<string, unknown> }).options ?? {};
  const parts: string[] = [server, agent instanceof https.Agent ? 'https' : 'http'];
  for (const k of IDENTITY_OPTIONS) {
    const v = options[k];
    parts.push(
      v === undefined
        ? ''
        : Buffer.isBuffer(v)
          ? v.toString('base64')
          : Array.isArray(v)
            ? v.map((x) => (Buffer.isBuffer(x) ? x.toString('base64') : JSON.stringify(x))).join('\0')
            : JSON.stringify(v),
    );
  }
  return parts.join('\n');
}

/** Default time box of one API request (not a watch), ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Client-side rate limit: `take()` resolves when a request may be sent. */
export interface RequestRateLimiter {
  take(): Promise<void>;
}

export class PooledKubeConfig extends k8s.KubeConfig {
  private pool: { key: string; agent: http.Agent } | undefined;
  /** Agents built so far (1 unless credentials rotated); for tests and metrics. */
  agentsBuilt = 0;
  /**
   * When set, every request and every watch (re)start waits for it first (`--kube-api-qps`/`--kube-api-burst`).
   * It runs before the library's middleware, so a caller's time box (the Lease elector's) does not include
   * the wait.
   */
  rateLimiter: RequestRateLimiter | undefined;
  /** The time box of a request, ms (connect, send and the whole answer); 0 turns it off. */
  requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;

  /**
   * A plain KubeConfig with the same clusters, users and contexts: the library's behaviour, a new connection
   * per request and no rate limit. The Lease elector uses it: a renewal then never waits behind reconcile
   * traffic in the token bucket, and never lands on a pooled keep-alive connection that died silently (a
   * timed-out renewal is retried at once on a fresh connection). At one read and one write per retry
   * period, the handshakes cost little.
   */
  unpooled(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: this.clusters,
      users: this.users,
      contexts: this.contexts,
      currentContext: this.currentContext,
    });
    return kc;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.rateLimiter?.take();
    await super.applySecurityAuthentication(context);
    if (this.requestTimeoutMs > 0 && context.getSignal() === undefined)
      context.setSignal(AbortSignal.timeout(this.requestTimeoutMs));
    const agent = context.getAgent();
    if (agent instanceof http.Agent) context.setAgent(this.pooled(agent));
  }

  override async applyToHTTPSOptions(opts: HttpsOptions): Promise<void> {
    await this.rateLimiter?.take();
    await super.applyToHTTPSOptions(opts);
    const agent = (opts as https.RequestOptions).agent;
    if (agent instanceof http.Agent) (opts as https.RequestOptions).agent = this.pooled(agent);
  }

  /** The shared keep-alive agent equivalent to `fresh` (the one the library just built), or `fresh`. */
  private pooled(fresh: http.Agent): http.Agent {
    const cluster = this.getCurrentCluster();
    if (!cluster || cluster.proxyUrl) return fresh;
    const key = fingerprint(cluster.server, fresh);
    if (this.pool?.key !== key) {
      const options = { ...(fresh as http.Agent & { options?: http.AgentOptions }).options, keepAlive: true };
      const agent = fresh instanceof https.Agent ? new https.Agent(options) : new http.Agent(options);
      this.pool = { key, agent };
      this.agentsBuilt++;
    }
    return this.pool.agent;
  }
}
