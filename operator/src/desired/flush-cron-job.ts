import { COMPONENT_FLUSH, DEFAULT_INVALIDATION_CHANNEL, LABEL_COMPONENT, REDIS_PORT } from '../api/v1alpha1/constants.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { CronJob } from './kube-types.js';
import { commonLabels } from './labels.js';
import { flushCronJobName, serviceHost } from './names.js';
import { childMetadata } from './owner-reference.js';
import { passwordEnv } from './password-env.js';
import { resolveSpec } from './resolved-spec.js';
import { shellQuote } from './shell-quote.js';

/** The invalidation message the flush CronJob publishes: drop every sidecar's whole L1. */
export const FLUSH_INVALIDATION_MESSAGE = JSON.stringify({ v: 1, sender: 'flush-cronjob', seq: 1, all: true });

/**
 * The flush job's script: FLUSHALL ASYNC on the primary (replicas follow), then the invalidation on
 * the channel. Fails (and is retried by the Job) when Redis does not answer OK.
 */
export function flushScript(cc: CacheCluster): string {
  const cli = `redis-cli -h ${shellQuote(serviceHost(cc))} -p ${REDIS_PORT}`;
  return [
    'set -eu',
    `reply="$(${cli} FLUSHALL ASYNC)"`,
    'if [ "$reply" != "OK" ]; then echo "FLUSHALL ASYNC answered: $reply" >&2; exit 1; fi',
    `receivers="$(${cli} PUBLISH ${shellQuote(DEFAULT_INVALIDATION_CHANNEL)} ${shellQuote(FLUSH_INVALIDATION_MESSAGE)})"`,
    `echo "Flushed ${serviceHost(cc)}; invalidation published to $receivers subscribers"`,
  ].join('\n');
}

/**
 * `<name>-flush`: the scheduled whole-cache flush, or undefined when `spec.flush` is not set (then
 * `desiredChildren` lists the CronJob for deletion). Never two runs at once.
 */
export function desiredFlushCronJob(cc: CacheCluster, _opts: DesiredOptions = {}): CronJob | undefined {
  const flush = cc.spec.flush;
  if (flush === undefined) return undefined;
  const spec = resolveSpec(cc);
  const podLabels = { ...commonLabels(cc), [LABEL_COMPONENT]: COMPONENT_FLUSH };
  const env = passwordEnv(spec, ['REDISCLI_AUTH']);
  const cronJob: CronJob = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: childMetadata(cc, flushCronJobName(cc), { [LABEL_COMPONENT]: COMPONENT_FLUSH }),
    spec: {
      schedule: flush.schedule,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: podLabels },
        spec: {
          backoffLimit: 3,
          activeDeadlineSeconds: 300,
          template: {
            metadata: { labels: podLabels },
            spec: {
              enableServiceLinks: false,
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'flush',
                  image: spec.image,
                  command: ['sh', '-c', flushScript(cc)],
                  ...(env.length > 0 ? { env } : {}),
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ['ALL'] },
                    seccompProfile: { type: 'RuntimeDefault' },
                  },
                },
              ],
            },
          },
        },
      },
    },
  };
  if (flush.timeZone !== undefined) cronJob.spec.timeZone = flush.timeZone;
  return cronJob;
}
