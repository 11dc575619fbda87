import { COMPONENT_FLUSH, LABEL_COMPONENT, REDIS_PORT } from '../api/v1alpha1/constants.js';
import { encodeInvalidation } from '../../../common/src/invalidation-message.js';
import { DEFAULT_INVALIDATION_CHANNEL, RECORD_KEY_PATTERN } from '../../../common/src/protocol.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import type { DesiredOptions } from './desired-options.js';
import type { CronJob } from './kube-types.js';
import { commonLabels } from './labels.js';
import { flushCronJobName, serviceHost } from './names.js';
import { childMetadata } from './owner-reference.js';
import { passwordEnv } from './password-env.js';
import { imagePullSecrets } from './pod-placement.js';
import { redisPodSecurityContext, restrictedContainerSecurityContext } from './pod-security.js';
import { resolveSpec } from './resolved-spec.js';
import { shellQuote } from './shell-quote.js';

/** The invalidation message the flush CronJob publishes: drop every sidecar's whole L1. */
export const FLUSH_INVALIDATION_MESSAGE = encodeInvalidation({ v: 1, sender: 'flush-cronjob', seq: 1, all: true });

/** The sidecars' cache records in Redis (see docs/sidecar.md, "Storage format"), and nothing else. */
export const CACHE_RECORD_PATTERN = RECORD_KEY_PATTERN;

/**
 * One step of the flush, run server-side: SCAN a batch of cache records and UNLINK those that have a
 * TTL. Records without a TTL are kept: they are write-back writes not yet in the database (the
 * sidecars give a record its TTL once the database has it), and deleting them would let a read fill
 * the cache from the older database row. Nothing outside the `rc:` prefix is touched — in particular
 * not the write-back journal, whose acknowledged writes FLUSHALL would destroy. Answers
 * `[next cursor, records deleted]`.
 */
export const FLUSH_STEP_SCRIPT = [
  "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000)",
  'local n = 0',
  "for _, k in ipairs(r[2]) do if redis.call('PTTL', k) >= 0 then redis.call('UNLINK', k); n = n + 1 end end",
  'return {r[1], n}',
].join(' ');

/**
 * FLUSH_STEP_SCRIPT for a Redis Cluster node: the keys it finds with SCAN are the node's own (every slot it
 * serves), in many slots; the flag lets a script touch keys it did not declare across slots (Redis 7).
 */
export const CLUSTER_FLUSH_STEP_SCRIPT = `#!lua flags=allow-cross-slot-keys\n${FLUSH_STEP_SCRIPT}`;

/**
 * Topology cluster: the flush job's script. It asks any node (through the client Service) for CLUSTER NODES,
 * walks the cache records of every primary that is not failed (each at its announced address) with
 * CLUSTER_FLUSH_STEP_SCRIPT, then publishes the invalidate-all message (PUBLISH reaches every node of a Redis
 * Cluster). Fails (and the Job is retried) when a primary answers anything but a cursor.
 */
export function clusterFlushScript(cc: CacheCluster): string {
  const seed = `redis-cli -h ${shellQuote(serviceHost(cc))} -p ${REDIS_PORT}`;
  return [
    'set -eu',
    `nodes="$(${seed} CLUSTER NODES)"`,
    // Fields: id, ip:port@bus[,hostname], flags, master, ping, pong, epoch, link, slots… (primaries with slots).
    `primaries="$(printf '%s\n' "$nodes" | awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { split($2, a, "@"); print a[1] }')"`,
    '[ -n "$primaries" ] || { echo "flush failed: no primary in CLUSTER NODES: $nodes" >&2; exit 1; }',
    'total=0',
    'count=0',
    'for addr in $primaries; do',
    '  host="${addr%:*}"',
    '  port="${addr##*:}"',
    '  cursor=0',
    '  while :; do',
    `    out="$(redis-cli -h "$host" -p "$port" EVAL ${shellQuote(CLUSTER_FLUSH_STEP_SCRIPT)} 0 "$cursor" ${shellQuote(CACHE_RECORD_PATTERN)})"`,
    `    cursor="$(printf '%s\n' "$out" | sed -n 1p)"`,
    `    deleted="$(printf '%s\n' "$out" | sed -n 2p)"`,
    '    case "$cursor$deleted" in ""|*[!0-9]*) echo "flush failed on $addr: Redis answered: $out" >&2; exit 1;; esac',
    '    total=$((total + deleted))',
    '    [ "$cursor" = 0 ] && break',
    '  done',
    '  count=$((count + 1))',
    'done',
    `receivers="$(${seed} PUBLISH ${shellQuote(DEFAULT_INVALIDATION_CHANNEL)} ${shellQuote(FLUSH_INVALIDATION_MESSAGE)})"`,
    `echo "Flushed ${serviceHost(cc)}: $total cache records deleted on $count primaries; invalidation published to $receivers subscribers"`,
  ].join('\n');
}

/**
 * The flush job's script: walks the primary's cache records with FLUSH_STEP_SCRIPT (replicas follow
 * through replication), then publishes the invalidate-all message so every sidecar drops its L1.
 * Fails (and the Job is retried) when Redis answers anything but a cursor.
 */
export function flushScript(cc: CacheCluster): string {
  const cli = `redis-cli -h ${shellQuote(serviceHost(cc))} -p ${REDIS_PORT}`;
  return [
    'set -eu',
    'cursor=0',
    'total=0',
    'while :; do',
    `  out="$(${cli} EVAL ${shellQuote(FLUSH_STEP_SCRIPT)} 0 "$cursor" ${shellQuote(CACHE_RECORD_PATTERN)})"`,
    `  cursor="$(printf '%s\\n' "$out" | sed -n 1p)"`,
    `  deleted="$(printf '%s\\n' "$out" | sed -n 2p)"`,
    '  case "$cursor$deleted" in ""|*[!0-9]*) echo "flush failed: Redis answered: $out" >&2; exit 1;; esac',
    '  total=$((total + deleted))',
    '  [ "$cursor" = 0 ] && break',
    'done',
    `receivers="$(${cli} PUBLISH ${shellQuote(DEFAULT_INVALIDATION_CHANNEL)} ${shellQuote(FLUSH_INVALIDATION_MESSAGE)})"`,
    `echo "Flushed ${serviceHost(cc)}: $total cache records deleted; invalidation published to $receivers subscribers"`,
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
  const pullSecrets = imagePullSecrets(cc);
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
              // The same image as the Redis pods: the same pull secrets.
              ...(pullSecrets !== undefined ? { imagePullSecrets: pullSecrets } : {}),
              // Pod Security `restricted`, as the Redis pods: redis-cli and sh need no writable path.
              securityContext: redisPodSecurityContext(),
              containers: [
                {
                  name: 'flush',
                  image: spec.image,
                  command: ['sh', '-c', spec.topology === 'cluster' ? clusterFlushScript(cc) : flushScript(cc)],
                  ...(env.length > 0 ? { env } : {}),
                  resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
                  securityContext: restrictedContainerSecurityContext(),
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
