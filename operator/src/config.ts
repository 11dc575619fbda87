/**
 * Operator configuration: the only reader of process.argv and process.env in the operator.
 * Every flag `--foo-bar` can also be given as the environment variable `RIPPLECACHE_FOO_BAR`;
 * a flag wins over the environment.
 */
import { hostname } from 'node:os';
import {
  envName,
  envValues,
  FlagError,
  parseFlags,
  valuesByFlag,
  type FlagSpec as CommonFlagSpec,
} from '../../common/src/flags.js';
import { parseHostPort as parseHostPortText, type HostPort } from '../../common/src/host-port.js';
import { IMAGE_PATTERN } from './api/v1alpha1/schema.js';

export { envName } from '../../common/src/flags.js';

export interface OperatorConfig {
  /**
   * Path to a kubeconfig (`--kubeconfig` / `RIPPLECACHE_KUBECONFIG`). Default: undefined, and `loadKubeConfig`
   * looks at $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
   */
  kubeconfig?: string | undefined;
  /** Namespaces whose CacheClusters are reconciled. Default: [] (every namespace). */
  watchNamespaces: string[];
  /** Address of the metrics and probe server. Default `0.0.0.0:8080`. */
  metricsListen: string;
  /** Take a Lease before reconciling, so that of several replicas only one acts. Default true. */
  leaderElect: boolean;
  /** Namespace of the leader-election Lease. Default `$POD_NAMESPACE` or `default`. */
  leaderElectionNamespace: string;
  /** Name of the leader-election Lease. Default `ripplecache-operator-leader`. */
  leaderElectionId: string;
  /** Seconds a Lease stays valid without renewal. Default 15. */
  leaseDurationSeconds: number;
  /**
   * Seconds after its last successful renewal within which the leader must renew again, or stop reconciling
   * and writing (to Redis and to the API server) and exit. Must be shorter than the lease duration, so the
   * old leader has stopped before any other replica can take the Lease. Default 2/3 of the lease duration
   * (10 for 15, as client-go).
   */
  renewDeadlineSeconds: number;
  /** Seconds between Lease renewals (leader) and acquisition attempts (standby). Default 1/5 of the renew deadline (2 for 10). */
  retryPeriodSeconds: number;
  /** This replica's identity in the Lease. Default `$POD_NAME` or the host name, plus the pid. */
  identity: string;
  /** Concurrent reconciles (of different CacheClusters; one object is never reconciled twice at once). Default 4. */
  workers: number;
  /** Client-side limit on Kubernetes API requests per second (token bucket; 0: unlimited). Default 200. */
  kubeApiQps: number;
  /** Requests the token bucket lets through at once after an idle period. Default 400. */
  kubeApiBurst: number;
  /** Periodic resync of every CacheCluster, in seconds (live config is re-verified). Default 300. */
  resyncSeconds: number;
  /** Per-call time box for Redis CONFIG GET/SET, in ms. Default 2000. */
  redisTimeoutMs: number;
  /**
   * Redis address overrides, `namespace/pod=host:port`, for running the operator outside the cluster
   * (tests, the local demo, a port-forward). Default: none (pods are reached by headless-service DNS).
   */
  podAddressOverrides: Map<string, { host: string; port: number }>;
  /** Image of the redis_exporter sidecar container. Default `oliver006/redis_exporter:v1.62.0`. */
  exporterImage: string;
  /** Log level: fatal, error, warn, info, debug, trace. Default `info`. */
  logLevel: string;
  /** HOST:PORT of the sidecar-injection webhook (HTTPS). Default `''`: no webhook. */
  webhookListen: string;
  /**
   * Directory with `tls.crt` and `tls.key` for the webhook (a mounted Secret, e.g. from cert-manager).
   * Default `''`: the operator manages a self-signed CA and certificate in `webhookSecret`.
   */
  webhookCertDir: string;
  /** Secret of the self-managed webhook certificate. Default `ripplecache-webhook-tls` in `$POD_NAMESPACE` (or `default`). */
  webhookSecret: { namespace: string; name: string };
  /** MutatingWebhookConfiguration whose caBundle the operator writes (self-managed mode). Default `''`: none. */
  webhookConfiguration: string;
  /** DNS names and IPs of the self-managed serving certificate (e.g. `<service>.<namespace>.svc`). Default: none. */
  webhookCertHosts: string[];
  /** Image of the injected sidecar. Default `ghcr.io/ripplecache/sidecar:0.1.0`. */
  sidecarImage: string;
}

export const OPERATOR_DEFAULTS = {
  watchNamespaces: [] as string[],
  metricsListen: '0.0.0.0:8080',
  leaderElect: true,
  leaderElectionId: 'ripplecache-operator-leader',
  leaseDurationSeconds: 15,
  workers: 4,
  kubeApiQps: 200,
  kubeApiBurst: 400,
  resyncSeconds: 300,
  redisTimeoutMs: 2000,
  exporterImage: 'oliver006/redis_exporter:v1.62.0',
  logLevel: 'info',
  webhookListen: '',
  webhookCertDir: '',
  webhookSecret: 'ripplecache-webhook-tls',
  webhookConfiguration: '',
  sidecarImage: 'ghcr.io/ripplecache/sidecar:0.1.0',
} as const;

/**
 * The longest delay a Node.js timer takes (2^31-1 ms, about 24.8 days): a longer one warns
 * TimeoutOverflowWarning and fires after 1 ms. Every flag that ends in a timer is bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The most concurrent reconciles `--workers` allows (as the Helm chart's values schema). */
export const MAX_WORKERS = 256;
/** The smallest non-zero `--kube-api-qps`: the wait for one token, 1/qps s, must fit a timer. */
export const MIN_KUBE_API_QPS = 0.000001;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'InvalidConfiguration';
}

interface FlagSpec extends CommonFlagSpec {
  help: string;
}

export const OPERATOR_FLAGS: FlagSpec[] = [
  { name: 'kubeconfig', help: 'path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)' },
  { name: 'watch-namespaces', help: 'comma-separated namespaces to watch (default: all)' },
  {
    name: 'metrics-listen',
    help: `HOST:PORT of /metrics, /healthz, /readyz (default ${OPERATOR_DEFAULTS.metricsListen})`,
  },
  { name: 'leader-elect', help: 'true|false: hold a Lease before reconciling (default true)', boolean: true },
  { name: 'leader-election-namespace', help: 'namespace of the Lease (default $POD_NAMESPACE or default)' },
  { name: 'leader-election-id', help: `name of the Lease (default ${OPERATOR_DEFAULTS.leaderElectionId})` },
  {
    name: 'lease-duration-seconds',
    help: `seconds a Lease is valid without renewal (default ${OPERATOR_DEFAULTS.leaseDurationSeconds})`,
  },
  {
    name: 'renew-deadline-seconds',
    help: 'seconds without a successful renewal after which the leader stops writing and exits; < lease duration (default 2/3 of it: 10 for 15)',
  },
  {
    name: 'retry-period-seconds',
    help: 'seconds between Lease renewals and acquisition attempts; < renew deadline (default 1/5 of it: 2 for 10)',
  },
  { name: 'identity', help: 'identity in the Lease (default $POD_NAME or host name, plus pid)' },
  { name: 'workers', help: `concurrent reconciles, 1-${MAX_WORKERS} (default ${OPERATOR_DEFAULTS.workers})` },
  {
    name: 'kube-api-qps',
    help: `client-side limit of Kubernetes API requests per second, 0 for none (default ${OPERATOR_DEFAULTS.kubeApiQps})`,
  },
  {
    name: 'kube-api-burst',
    help: `Kubernetes API requests allowed at once above the QPS (default ${OPERATOR_DEFAULTS.kubeApiBurst})`,
  },
  {
    name: 'resync-seconds',
    help: `periodic re-reconcile of every CacheCluster (default ${OPERATOR_DEFAULTS.resyncSeconds})`,
  },
  { name: 'redis-timeout-ms', help: `time box of each Redis call (default ${OPERATOR_DEFAULTS.redisTimeoutMs})` },
  {
    name: 'pod-address-override',
    help: 'namespace/pod=host:port, repeatable (env: comma-separated): reach a Redis pod (or namespace/<name>-bridge: a bridge) at this address instead of its DNS name',
    repeatable: true,
  },
  { name: 'exporter-image', help: `redis_exporter image (default ${OPERATOR_DEFAULTS.exporterImage})` },
  { name: 'log-level', help: `fatal|error|warn|info|debug|trace (default ${OPERATOR_DEFAULTS.logLevel})` },
  { name: 'webhook-listen', help: 'HOST:PORT of the sidecar-injection webhook over HTTPS (default: off)' },
  {
    name: 'webhook-cert-dir',
    help: 'directory with tls.crt and tls.key for the webhook, e.g. from cert-manager (default: self-managed certificate)',
  },
  {
    name: 'webhook-secret',
    help: `[NAMESPACE/]NAME of the Secret holding the self-managed webhook CA and certificate (default ${OPERATOR_DEFAULTS.webhookSecret} in $POD_NAMESPACE)`,
  },
  {
    name: 'webhook-configuration',
    help: 'MutatingWebhookConfiguration whose caBundle the operator writes with its self-managed CA (default: none)',
  },
  {
    name: 'webhook-cert-hosts',
    help: 'comma-separated DNS names and IPs of the self-managed webhook certificate, e.g. SERVICE.NAMESPACE.svc',
  },
  { name: 'sidecar-image', help: `image of the injected sidecar (default ${OPERATOR_DEFAULTS.sidecarImage})` },
];

export function operatorHelp(): string {
  const lines = [
    'Usage: ripplecache-operator [flags]',
    '',
    'Reconciles CacheCluster resources (cache.ripplecache.io/v1alpha1) into Redis.',
    '',
    'Flags (each also read from the environment variable shown):',
  ];
  for (const f of OPERATOR_FLAGS)
    lines.push(`  --${f.name.padEnd(28)} ${f.help}\n  ${' '.repeat(30)} env ${envName(f.name)}`);
  lines.push('  --version                      print the version (ripplecache-operator X.Y.Z) and exit');
  lines.push('  --help                         this text');
  lines.push(
    '',
    'Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad flag or unusable credentials.',
  );
  return lines.join('\n');
}

/**
 * Parses argv (without node and script) and env into raw string values per flag (common/src/flags.ts);
 * for each flag the command line wins over the environment. `--help` and `--version` are `main.ts`'s.
 */
function rawValues(argv: string[], env: NodeJS.ProcessEnv): Map<string, string[]> {
  let given;
  try {
    given = parseFlags(argv, OPERATOR_FLAGS).given;
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    const message = {
      'unknown-flag': `unknown flag --${err.subject} (see --help)`,
      'missing-value': `flag --${err.subject} needs a value`,
      'unexpected-argument': `unexpected argument "${err.subject}" (see --help)`,
    }[err.problem];
    throw new ConfigError(message, { cause: err });
  }
  const out = envValues(env, OPERATOR_FLAGS);
  for (const [name, values] of valuesByFlag(given)) out.set(name, values);
  return out;
}

function positiveInt(name: string, v: string, min = 1): number {
  // Plain decimal digits: Number() would also take `1e1`, `0x10` and ` 4`.
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

/** An integer from 1 to `max`; `why` says where the bound comes from. */
function boundedInt(name: string, v: string, max: number, why: string): number {
  const n = positiveInt(name, v);
  if (n > max) throw new ConfigError(`--${name} must be at most ${max} (${why}), got "${v}"`);
  return n;
}

const TIMER_LIMIT = `${MAX_TIMER_MS} ms = 2^31-1, the longest timer Node.js supports`;
/** The most whole seconds a timer takes. */
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** Milliseconds that end in a timer: an integer from 1 to 2^31-1. */
const timerMs = (name: string, v: string) => boundedInt(name, v, MAX_TIMER_MS, TIMER_LIMIT);
/** Whole seconds that end in a timer (× 1000): an integer from 1 to 2147483. */
const timerSeconds = (name: string, v: string) => boundedInt(name, v, MAX_TIMER_SECONDS, TIMER_LIMIT);

function nonNegativeNumber(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new ConfigError(`--${name} must be a number ≥ 0, got "${v}"`);
  return n;
}

/**
 * Seconds as a positive decimal number with at most millisecond precision (e.g. `2` or `0.5`), that end in
 * a timer: at most 2147483.647 (2^31-1 ms).
 */
function positiveSeconds(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d{1,3})?$/.test(v.trim()) || !(n > 0))
    throw new ConfigError(`--${name} must be a positive number of seconds (at most 3 decimals), got "${v}"`);
  if (Math.round(n * 1000) > MAX_TIMER_MS)
    throw new ConfigError(`--${name} must be at most ${MAX_TIMER_MS / 1000} seconds (${TIMER_LIMIT}), got "${v}"`);
  return n;
}

/** A DNS-1123 label (a namespace name): at most 63 lowercase letters, digits and '-', alphanumeric at both ends. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A DNS-1123 subdomain (most object names, e.g. a Lease): dot-separated labels, at most 253 characters. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function namespaceName(name: string, v: string): string {
  if (!DNS_LABEL.test(v))
    throw new ConfigError(
      `--${name} must be a namespace name (a DNS-1123 label: at most 63 lowercase letters, digits and '-', ` +
        `starting and ending with a letter or digit), got "${v}"`,
    );
  return v;
}

/** Comma-separated namespaces (spaces around the commas allowed); empty: every namespace. */
function namespaceList(name: string, v: string): string[] {
  if (v.trim() === '') return [];
  return v.split(',').map((s) => {
    const ns = s.trim();
    if (ns === '') throw new ConfigError(`--${name} has an empty entry, got "${v}"`);
    return namespaceName(name, ns);
  });
}

/** A container image reference, as the CRD's `spec.image` takes it (IMAGE_PATTERN: no white space). */
function imageReference(name: string, v: string): string {
  if (v.length > 512 || !new RegExp(IMAGE_PATTERN).test(v))
    throw new ConfigError(
      `--${name} must be a container image reference such as registry.example.com/team/image:tag (no white space), got "${v}"`,
    );
  return v;
}

function kubeApiQps(v: string): number {
  const qps = nonNegativeNumber('kube-api-qps', v);
  if (qps > 0 && qps < MIN_KUBE_API_QPS)
    throw new ConfigError(
      `--kube-api-qps must be 0 (no limit) or at least ${MIN_KUBE_API_QPS} (the wait for one request, 1/qps s, ` +
        `must fit a timer: ${TIMER_LIMIT}), got "${v}"`,
    );
  return qps;
}

/**
 * Lease timing: renew deadline < lease duration (the leader stops before anyone else may take the Lease)
 * and retry period < renew deadline (the leader gets to try at least once more).
 */
function leaseTiming(raw: (n: string) => string | undefined): {
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
} {
  const leaseDurationSeconds = timerSeconds(
    'lease-duration-seconds',
    raw('lease-duration-seconds') ?? String(OPERATOR_DEFAULTS.leaseDurationSeconds),
  );
  const renewArg = raw('renew-deadline-seconds');
  const renewDeadlineSeconds =
    renewArg === undefined
      ? Math.round(((leaseDurationSeconds * 2) / 3) * 1000) / 1000
      : positiveSeconds('renew-deadline-seconds', renewArg);
  if (renewDeadlineSeconds >= leaseDurationSeconds)
    throw new ConfigError(
      `--renew-deadline-seconds (${renewDeadlineSeconds}) must be less than --lease-duration-seconds (${leaseDurationSeconds}): ` +
        'a leader that cannot renew must stop before its Lease can expire and another replica take it',
    );
  const retryArg = raw('retry-period-seconds');
  const retryPeriodSeconds =
    retryArg === undefined
      ? Math.round((renewDeadlineSeconds / 5) * 1000) / 1000
      : positiveSeconds('retry-period-seconds', retryArg);
  if (retryPeriodSeconds >= renewDeadlineSeconds)
    throw new ConfigError(
      `--retry-period-seconds (${retryPeriodSeconds}) must be less than --renew-deadline-seconds (${renewDeadlineSeconds}): ` +
        'the leader must get to retry a failed renewal before its deadline',
    );
  return { leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds };
}

/** `HOST:PORT` of flag `--name` (common/src/host-port.ts); throws ConfigError naming the flag. */
export function parseHostPort(name: string, v: string): HostPort {
  const hostPort = parseHostPortText(v);
  if (!hostPort) throw new ConfigError(`--${name} must be HOST:PORT, got "${v}"`);
  return hostPort;
}

/** Why a listen failed, in words, for the errors a listen address can cause; else its first line. */
const LISTEN_PROBLEMS = new Map([
  ['EADDRINUSE', 'address already in use'],
  ['EACCES', 'permission denied'],
  ['EADDRNOTAVAIL', 'address not available on this host'],
  ['ENOTFOUND', 'host name not found'],
  ['EAI_AGAIN', 'host name lookup failed'],
]);

/**
 * The one line the operator prints (after `ripplecache-operator: `) when it cannot listen on the address of
 * flag `--name`, e.g. `cannot listen on 127.0.0.1:8080 (--metrics-listen): address already in use`.
 */
export function listenFailure(name: string, address: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why =
    (typeof code === 'string' ? LISTEN_PROBLEMS.get(code) : undefined) ??
    (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return `cannot listen on ${address} (--${name}): ${why}`;
}

/** Builds the configuration from argv and env; throws ConfigError with a message naming the flag. */
export function loadOperatorConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const raw = rawValues(argv, env);
  const one = (n: string) => raw.get(n)?.at(-1);
  const overrides = new Map<string, { host: string; port: number }>();
  for (const v of raw.get('pod-address-override') ?? []) {
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)=(.+)$/.exec(v);
    if (!m) throw new ConfigError(`--pod-address-override must be namespace/pod=host:port, got "${v}"`);
    overrides.set(`${m[1]}/${m[2]}`, parseHostPort('pod-address-override', m[3]!));
  }
  const leaderElect = one('leader-elect') ?? 'true';
  if (!['true', 'false'].includes(leaderElect))
    throw new ConfigError(`--leader-elect must be true or false, got "${leaderElect}"`);
  const metricsListen = one('metrics-listen') ?? OPERATOR_DEFAULTS.metricsListen;
  parseHostPort('metrics-listen', metricsListen);
  const webhookListen = one('webhook-listen') ?? OPERATOR_DEFAULTS.webhookListen;
  if (webhookListen) parseHostPort('webhook-listen', webhookListen);
  const webhookCertDir = one('webhook-cert-dir') ?? OPERATOR_DEFAULTS.webhookCertDir;
  const webhookCertHosts = (one('webhook-cert-hosts') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (webhookListen && !webhookCertDir && webhookCertHosts.length === 0) {
    throw new ConfigError(
      '--webhook-listen without --webhook-cert-dir needs --webhook-cert-hosts (the names the self-managed certificate is for)',
    );
  }
  const secretArg = one('webhook-secret') ?? OPERATOR_DEFAULTS.webhookSecret;
  const secretMatch = /^(?:([a-z0-9-]+)\/)?([a-z0-9.-]+)$/.exec(secretArg);
  if (
    !secretMatch ||
    (secretMatch[1] !== undefined && !DNS_LABEL.test(secretMatch[1])) ||
    !DNS_SUBDOMAIN.test(secretMatch[2]!) ||
    secretMatch[2]!.length > 253
  )
    throw new ConfigError(
      `--webhook-secret must be [NAMESPACE/]NAME (a namespace name and a Secret name), got "${secretArg}"`,
    );
  const webhookConfiguration = one('webhook-configuration') ?? OPERATOR_DEFAULTS.webhookConfiguration;
  if (webhookConfiguration !== '' && (!DNS_SUBDOMAIN.test(webhookConfiguration) || webhookConfiguration.length > 253))
    throw new ConfigError(
      `--webhook-configuration must be the name of a MutatingWebhookConfiguration (a DNS-1123 subdomain), got "${webhookConfiguration}"`,
    );
  const identity = one('identity') ?? `${env.POD_NAME || hostname()}-${process.pid}`;
  if (identity.trim() === '')
    throw new ConfigError(
      `--identity must not be empty: it names this replica in the leader-election Lease, got "${identity}"`,
    );
  const leaderElectionId = one('leader-election-id') ?? OPERATOR_DEFAULTS.leaderElectionId;
  if (leaderElectionId.length > 253 || !DNS_SUBDOMAIN.test(leaderElectionId))
    throw new ConfigError(
      `--leader-election-id must be a Lease name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'), ` +
        `got "${leaderElectionId}"`,
    );
  const logLevel = one('log-level') ?? OPERATOR_DEFAULTS.logLevel;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    throw new ConfigError(`--log-level must be one of fatal, error, warn, info, debug, trace; got "${logLevel}"`);
  return {
    kubeconfig: one('kubeconfig') || undefined,
    watchNamespaces: namespaceList('watch-namespaces', one('watch-namespaces') ?? ''),
    metricsListen,
    leaderElect: leaderElect === 'true',
    leaderElectionNamespace: (() => {
      const given = one('leader-election-namespace');
      return given === undefined ? env.POD_NAMESPACE || 'default' : namespaceName('leader-election-namespace', given);
    })(),
    leaderElectionId,
    ...leaseTiming(one),
    identity,
    workers: boundedInt(
      'workers',
      one('workers') ?? String(OPERATOR_DEFAULTS.workers),
      MAX_WORKERS,
      'the most concurrent reconciles the operator runs',
    ),
    kubeApiQps: kubeApiQps(one('kube-api-qps') ?? String(OPERATOR_DEFAULTS.kubeApiQps)),
    kubeApiBurst: positiveInt('kube-api-burst', one('kube-api-burst') ?? String(OPERATOR_DEFAULTS.kubeApiBurst)),
    resyncSeconds: timerSeconds('resync-seconds', one('resync-seconds') ?? String(OPERATOR_DEFAULTS.resyncSeconds)),
    redisTimeoutMs: timerMs('redis-timeout-ms', one('redis-timeout-ms') ?? String(OPERATOR_DEFAULTS.redisTimeoutMs)),
    podAddressOverrides: overrides,
    exporterImage: imageReference('exporter-image', one('exporter-image') ?? OPERATOR_DEFAULTS.exporterImage),
    logLevel,
    webhookListen,
    webhookCertDir,
    webhookSecret: { namespace: secretMatch[1] ?? (env.POD_NAMESPACE || 'default'), name: secretMatch[2]! },
    webhookConfiguration,
    webhookCertHosts,
    sidecarImage: imageReference('sidecar-image', one('sidecar-image') ?? OPERATOR_DEFAULTS.sidecarImage),
  };
}
