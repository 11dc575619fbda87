/**
 * Composition root of `ripplecache-operator`: config → clients → controller → probe/metrics server →
 * leader election → signals. Nothing else reads the environment or wires dependencies.
 */
import { pino } from 'pino';
import {
  API_VERSION,
  FIELD_MANAGER,
  KIND,
  PLURAL,
  LABEL_CLUSTER,
  LABEL_MANAGED_BY,
  LABEL_MANAGED_BY_VALUE,
  LABEL_ROLE,
} from './api/v1alpha1/constants.js';
import type { FailoverStep } from './api/v1alpha1/types.js';
import { ConfigError, listenFailure, loadOperatorConfig, operatorHelp, parseHostPort } from './config.js';
import { Controller } from './controller/controller.js';
import {
  ALWAYS_LEADING,
  fencedKubeApi,
  Leadership,
  NotLeaderError,
  type LeadershipFence,
} from './controller/leadership.js';
import { TokenBucket } from './controller/token-bucket.js';
import { InformerSet } from './k8s/informers.js';
import { ClientNodeKubeApi, KubeApiError, KubeConfigError, loadKubeConfig } from './k8s/kube-client.js';
import { LeaderElector } from './k8s/lease.js';
import { createOperatorMetrics, forgetConditions, showConditions } from './metrics.js';
import type { FailoverMemory } from './reconcile/failover-step.js';
import { needsFirstPass, reconcileCacheCluster, type ReconcileDeps } from './reconcile/cache-cluster.js';
import { buildProbeServer } from './server.js';
import { packageVersion } from '../../common/src/version.js';
import type { RunningWebhook } from './webhook/start-webhook.js';
import type * as LiveConfig from './redis/live-config.js';
import type * as Replication from './redis/replication.js';
import type * as Cluster from './redis/cluster.js';
import type { ClusterAdmin } from './reconcile/cluster-step.js';
import type { SlotMoveStep } from './redis/cluster.js';

/**
 * Loaded on first use, not at start: ioredis (live config) only once a CacheCluster has pods, the webhook
 * (@peculiar/x509, reflect-metadata) only with --webhook-listen: an idle operator measured 139 MiB RSS
 * instead of 149 (medians of three; README, Performance).
 */
let liveConfigModule: Promise<typeof LiveConfig> | undefined;
const loadLiveConfig = () => (liveConfigModule ??= import('./redis/live-config.js'));
/** INFO replication / REPLICAOF for failover (ioredis too): loaded with the first replication CacheCluster. */
let replicationModule: Promise<typeof Replication> | undefined;
const loadReplication = () => (replicationModule ??= import('./redis/replication.js'));
/** CLUSTER commands (ioredis too): loaded with the first cluster CacheCluster. */
let clusterModule: Promise<typeof Cluster> | undefined;
const loadCluster = () => (clusterModule ??= import('./redis/cluster.js'));

/**
 * A `ClusterAdmin` whose module is imported on its first call (the reconcile creates one per pass): each method
 * waits for the module, then for the one session it creates.
 */
function lazyClusterAdmin(make: (m: typeof Cluster) => ClusterAdmin): ClusterAdmin {
  let session: Promise<ClusterAdmin> | undefined;
  let closed = false;
  const get = () => (session ??= loadCluster().then(make));
  return {
    observe: async (ep, announce) => (await get()).observe(ep, announce),
    meet: async (ep, target) => (await get()).meet(ep, target),
    addSlotsRange: async (ep, ranges) => (await get()).addSlotsRange(ep, ranges),
    replicate: async (ep, id) => (await get()).replicate(ep, id),
    forget: async (ep, id) => (await get()).forget(ep, id),
    reset: async (ep) => (await get()).reset(ep),
    setSlotStable: async (ep, slot) => (await get()).setSlotStable(ep, slot),
    moveSlot: async (move, others, batch, after) => (await get()).moveSlot(move, others, batch, after),
    close: () => {
      if (closed) return;
      closed = true;
      void session?.then((s) => s.close());
    },
  };
}

/**
 * A listener (metrics, webhook) could not open its address: one line on stderr, as for a bad flag, and exit 1
 * (README, Operator flags). A stack trace would say nothing more about a port in use.
 */
function exitCannotListen(flag: string, address: string, err: unknown): never {
  process.stderr.write(`ripplecache-operator: ${listenFailure(flag, address, err)}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${operatorHelp()}\n`);
    return;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`ripplecache-operator ${packageVersion()}\n`);
    return;
  }
  let cfg;
  try {
    cfg = loadOperatorConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ripplecache-operator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let kc;
  try {
    kc = loadKubeConfig({ path: cfg.kubeconfig, env: process.env });
  } catch (err) {
    if (err instanceof KubeConfigError) {
      process.stderr.write(`ripplecache-operator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Every line names the program (`component`) and the replica (`identity`); a child logger adds `logger`
  // (reconcile, webhook, http). pino writes a key once per binding, so no binding may repeat another's key.
  const logger = pino({ level: cfg.logLevel, base: { component: 'ripplecache-operator', identity: cfg.identity } });
  // Leadership is a fence: every write to Redis and to the API server made by reconciles asks it right
  // before writing. It lapses at the renew deadline, before the Lease can expire for another replica.
  const leadership = cfg.leaderElect
    ? new Leadership(() => performance.now(), Math.round(cfg.renewDeadlineSeconds * 1000))
    : undefined;
  const fence: LeadershipFence = leadership ?? ALWAYS_LEADING;
  const metrics = createOperatorMetrics({
    version: packageVersion(),
    ...(leadership ? { isLeading: () => leadership.isLeading() } : {}),
  });
  // One token bucket in front of every API request and watch (--kube-api-qps / --kube-api-burst).
  kc.rateLimiter = new TokenBucket({
    qps: cfg.kubeApiQps,
    burst: cfg.kubeApiBurst,
    onWait: (seconds) => metrics.kubeApiThrottleWait.observe(seconds),
  });
  const onRequest = (verb: string, resource: string, code: string) =>
    metrics.kubeApiRequestsTotal.inc({ verb, resource, code });
  const kube = new ClientNodeKubeApi(kc, FIELD_MANAGER, { onRequest });

  let informers: InformerSet | undefined;
  const redisOpts = (password: string | undefined, action: string) => ({
    password,
    timeoutMs: cfg.redisTimeoutMs,
    beforeWrite: () => fence.assertLeading(action),
  });
  // Test hook (integration tests only): stop, without exiting, right after this failover step is recorded.
  const pauseAfterStep = process.env.RIPPLECACHE_TEST_PAUSE_AFTER_FAILOVER_STEP as FailoverStep | undefined;
  // Test hook (integration tests only): stop, without exiting, after this step of the first slot move.
  const pauseAfterSlotStep = process.env.RIPPLECACHE_TEST_PAUSE_AFTER_SLOT_STEP as SlotMoveStep | undefined;
  const deps: ReconcileDeps = {
    kube: fencedKubeApi(kube, fence),
    cached: (kind, namespace, name) => informers?.get(kind, namespace, name),
    applyEviction: async (endpoints, desired, password, timeBoxes) => {
      const live = await loadLiveConfig();
      const opts = (timeoutMs: number) => ({
        password,
        timeoutMs: Math.min(cfg.redisTimeoutMs, timeoutMs),
        beforeWrite: () => fence.assertLeading('CONFIG SET live settings'),
      });
      return Promise.all(
        endpoints.map((ep) => live.applyEvictionToPod(ep, desired, opts(timeBoxes?.get(ep.pod) ?? cfg.redisTimeoutMs))),
      );
    },
    podAddress: (namespace, pod, fallbackHost, port) =>
      cfg.podAddressOverrides.get(`${namespace}/${pod}`) ?? { host: fallbackHost, port },
    replication: {
      readReplication: async (ep, password, timeoutMs) =>
        (await loadReplication()).readReplication(ep, {
          ...redisOpts(password, 'INFO replication'),
          timeoutMs: Math.min(cfg.redisTimeoutMs, timeoutMs ?? cfg.redisTimeoutMs),
        }),
      promote: async (ep, password) =>
        (await loadReplication()).promote(ep, redisOpts(password, `REPLICAOF NO ONE on ${ep.pod}`)),
      follow: async (ep, primary, password, opts) =>
        (await loadReplication()).follow(
          ep,
          primary,
          redisOpts(password, `REPLICAOF ${primary.host} ${primary.port} on ${ep.pod}`),
          { disconnectClients: opts?.demote === true },
        ),
      pauseWrites: async (ep, ms, password) =>
        (await loadReplication()).pauseWrites(ep, ms, redisOpts(password, `CLIENT PAUSE WRITE on ${ep.pod}`)),
      unpauseWrites: async (ep, password) =>
        (await loadReplication()).unpauseWrites(ep, redisOpts(password, `CLIENT UNPAUSE on ${ep.pod}`)),
      deletePod: (namespace, pod, uid) => {
        fence.assertLeading(`delete pod ${namespace}/${pod}`);
        return kube.deletePod(namespace, pod, uid);
      },
      labelPod: (namespace, pod, role) => {
        fence.assertLeading(`label pod ${namespace}/${pod}`);
        return kube.patchPodLabels(namespace, pod, { [LABEL_ROLE]: role });
      },
      clock: () => performance.now(),
      memory: new Map<string, FailoverMemory>(),
      ...(pauseAfterStep
        ? {
            afterFailoverStep: (key: string, step: FailoverStep) => {
              if (step !== pauseAfterStep) return Promise.resolve();
              logger.warn(
                { cacheCluster: key, step },
                'Paused after failover step (RIPPLECACHE_TEST_PAUSE_AFTER_FAILOVER_STEP)',
              );
              return new Promise<void>(() => undefined);
            },
          }
        : {}),
    },
    cluster: {
      session: (password) =>
        lazyClusterAdmin(
          (m) =>
            new m.ClusterSession({
              password,
              timeoutMs: cfg.redisTimeoutMs,
              beforeWrite: () => fence.assertLeading('CLUSTER command'),
            }),
        ),
      clock: () => performance.now(),
      labelPod: (namespace, pod, role) => {
        fence.assertLeading(`label pod ${namespace}/${pod}`);
        return kube.patchPodLabels(namespace, pod, { [LABEL_ROLE]: role });
      },
      ...(pauseAfterSlotStep
        ? {
            afterSlotStep: (key: string, slot: number, step: SlotMoveStep) => {
              if (step !== pauseAfterSlotStep) return Promise.resolve();
              logger.warn(
                { cacheCluster: key, slot, step },
                'Paused after a slot move step (RIPPLECACHE_TEST_PAUSE_AFTER_SLOT_STEP)',
              );
              return new Promise<void>(() => undefined);
            },
          }
        : {}),
    },
    now: () => new Date(),
    log: logger.child({ logger: 'reconcile' }),
    exporterImage: cfg.exporterImage,
    bridgeImage: cfg.sidecarImage,
    bridgeReport: async (host, port) =>
      (await import('./bridge/bridge-client.js')).fetchBridgeReport(host, port, cfg.redisTimeoutMs),
    onConfigApply: (result) => metrics.configApplyTotal.inc({ result }),
    onConditions: (namespace, name, conditions) => showConditions(metrics, namespace, name, conditions),
    // Under a backlog of new CacheClusters, first passes apply the ConfigMap and StatefulSet only (README, Performance).
    firstPassesWaiting: () => controller.firstPassesWaiting(),
    onGone: (namespace, name) => forgetConditions(metrics, namespace, name),
  };

  const controller = new Controller(
    {
      reconcile: (key) => reconcileCacheCluster(deps, key),
      needsFirstPass: (key) => needsFirstPass(deps.cached, key),
      isConflict: (err) => err instanceof KubeApiError && err.conflict,
      onResult: (key, result, seconds, err) => {
        metrics.reconcileTotal.inc({ result });
        metrics.reconcileDuration.observe({ result }, seconds);
        if (result === 'error' && err instanceof NotLeaderError)
          logger.warn({ cacheCluster: key, err: err.message }, 'Reconcile stopped: not the leader');
        else if (result === 'error')
          logger.warn(
            { cacheCluster: key, err: err instanceof Error ? err.message : String(err) },
            'Reconcile failed; will retry with back-off',
          );
        else if (result === 'conflict') logger.debug({ cacheCluster: key }, 'Reconcile hit a conflict; retrying now');
      },
      onQueueDepth: (depth) => metrics.queueDepth.set(depth),
    },
    {
      workers: cfg.workers,
      resyncMs: cfg.resyncSeconds * 1000,
      ownerKind: KIND,
      ownerApiVersion: API_VERSION,
      ownerLabel: LABEL_CLUSTER,
    },
  );

  const managed = `${LABEL_MANAGED_BY}=${LABEL_MANAGED_BY_VALUE}`;
  informers = new InformerSet(
    kc,
    [
      { apiVersion: API_VERSION, kind: KIND, plural: PLURAL },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets', labelSelector: managed },
      { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', labelSelector: managed },
      { apiVersion: 'v1', kind: 'Service', plural: 'services', labelSelector: managed },
      { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', labelSelector: managed },
      { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs', labelSelector: managed },
      // The cross-cluster bridges (spec.invalidation.peers).
      { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', labelSelector: managed },
      // The Redis pods (readiness, role labels), for failover and the cluster's role labels.
      { apiVersion: 'v1', kind: 'Pod', plural: 'pods', labelSelector: managed },
    ],
    {
      namespaces: cfg.watchNamespaces,
      onEvent: (kind, obj, type) => controller.handleEvent(kind, obj, type),
      onRequest,
      onError: (kind, err) =>
        logger.warn({ kind, err: err instanceof Error ? err.message : String(err) }, 'Watch failed; restarting it'),
    },
  );

  // The sidecar-injection webhook (every replica serves it); readiness waits for its certificate.
  let webhook: RunningWebhook | undefined;
  if (cfg.webhookListen) {
    const { host: whHost, port: whPort } = parseHostPort('webhook-listen', cfg.webhookListen);
    const whLog = logger.child({ logger: 'webhook' });
    const webhookSource = cfg.webhookCertDir;
    void (async () => {
      const [{ certificateDirSource, selfManagedSource }, { startWebhook }] = await Promise.all([
        import('./webhook/certificate-sources.js'),
        import('./webhook/start-webhook.js'),
      ]);
      const certificates = webhookSource
        ? certificateDirSource(webhookSource)
        : selfManagedSource({
            kube,
            secret: cfg.webhookSecret,
            hosts: cfg.webhookCertHosts,
            now: () => new Date(),
            log: whLog,
            ...(cfg.webhookConfiguration ? { webhookConfiguration: cfg.webhookConfiguration } : {}),
          });
      return startWebhook({
        host: whHost,
        port: whPort,
        certificates,
        kube,
        log: whLog,
        inject: { image: cfg.sidecarImage },
        onAdmission: (outcome) => metrics.webhookAdmissionTotal.inc({ outcome }),
      });
    })().then(
      (w) => {
        webhook = w;
      },
      (err: unknown) => {
        logger.fatal(
          { err: err instanceof Error ? err.message : String(err), address: cfg.webhookListen },
          'Could not start the webhook server',
        );
        const syscall = (err as NodeJS.ErrnoException | undefined)?.syscall;
        if (syscall === 'listen' || syscall === 'getaddrinfo')
          exitCannotListen('webhook-listen', cfg.webhookListen, err);
        process.exit(1);
      },
    );
  }

  let synced = false;
  const server = buildProbeServer({
    registry: metrics.registry,
    logger,
    ready: () => synced && (!cfg.webhookListen || webhook !== undefined),
  });
  const { host, port } = parseHostPort('metrics-listen', cfg.metricsListen);
  try {
    await server.listen({ host, port });
  } catch (err) {
    exitCannotListen('metrics-listen', cfg.metricsListen, err);
  }
  logger.info({ address: cfg.metricsListen }, 'Started metrics and probe server');

  await informers.start();
  synced = true;
  logger.info({ namespaces: cfg.watchNamespaces.length ? cfg.watchNamespaces : 'all' }, 'Synced informers');

  let elector: LeaderElector | undefined;
  if (leadership) {
    // Its own connections, outside the pool and the rate limit (see PooledKubeConfig.unpooled).
    elector = new LeaderElector(kc.unpooled(), {
      leadership,
      namespace: cfg.leaderElectionNamespace,
      name: cfg.leaderElectionId,
      identity: cfg.identity,
      leaseDurationSeconds: cfg.leaseDurationSeconds,
      retryPeriodMs: Math.round(cfg.retryPeriodSeconds * 1000),
      log: (msg, fields) => logger.info(fields ?? {}, msg),
      onStartedLeading: () => {
        metrics.isLeader.set(1);
        controller.start();
        logger.info('Started reconciling CacheClusters as leader');
      },
      onStoppedLeading: (reason) => {
        // The fence already refuses every write. Exit rather than demote: in-flight reconciles, queued work
        // and informer state all end with the process, and the Deployment restarts it as a standby.
        metrics.isLeader.set(0);
        logger.error({ reason }, 'Lost leadership; stopped writing, exiting so that only the new leader writes');
        process.exit(1);
      },
    });
    elector.start();
  } else {
    metrics.isLeader.set(1);
    controller.start();
    logger.info('Started reconciling CacheClusters (leader election off)');
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    synced = false;
    logger.info({ signal }, 'Shutting down: finishing in-flight reconciles');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await controller.stop();
    await elector?.stop();
    await informers?.stop();
    await webhook?.close();
    await server.close();
    logger.info('Stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`ripplecache-operator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
