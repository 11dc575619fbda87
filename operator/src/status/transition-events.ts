/**
 * Which Events a status change records. Pure: the reconcile posts them after patching the status.
 */
import { CONDITION_CONFIG_APPLIED, CONDITION_READY, CONDITION_ROLLING_UPDATE } from '../api/v1alpha1/constants.js';
import type { CacheClusterStatus } from '../api/v1alpha1/types.js';
import { formatBytes } from '../desired/quantity.js';
import { findCondition } from './conditions.js';

export interface TransitionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/**
 * Events on transitions of the conditions people act on (Ready, ConfigApplied), then one for a live
 * eviction change verified on every pod (EvictionSettingsApplied): the only place it shows besides status.
 */
export function transitionEvents(before: CacheClusterStatus | undefined, after: CacheClusterStatus): TransitionEvent[] {
  const events: TransitionEvent[] = [];
  const conditionEvents: { type: string; e: TransitionEvent }[] = [];
  for (const type of [CONDITION_READY, CONDITION_CONFIG_APPLIED]) {
    const was = findCondition(before?.conditions, type);
    const is = findCondition(after.conditions, type);
    if (!is || (was?.status === is.status && was.reason === is.reason)) continue;
    const warning =
      is.status === 'False' &&
      (type === CONDITION_CONFIG_APPLIED || after.phase === 'Degraded' || after.phase === 'Failed');
    // Events are for transitions people act on. A condition's first state is news only as a success or a
    // warning (a new CacheCluster starting up shows in its status), and so is a new reason with the same
    // status (WaitingForPods -> RollingOut -> WaitingForPods while pods start): an Event for each would
    // double the writes of every CacheCluster coming up.
    if (!was && is.status !== 'True' && !warning) continue;
    if (was && was.status === is.status && !warning) continue;
    const e: TransitionEvent = {
      type: warning ? 'Warning' : 'Normal',
      reason: is.status === 'True' ? type : is.reason || `Not${type}`,
      message: is.message,
    };
    events.push(e);
    conditionEvents.push({ type, e });
  }
  // A settings failure turns Ready False with the same message as ConfigApplied: one Warning, ConfigApplied's.
  const [first, second] = conditionEvents;
  if (
    first?.type === CONDITION_READY &&
    second?.type === CONDITION_CONFIG_APPLIED &&
    first.e.message === second.e.message
  )
    events.splice(events.indexOf(first.e), 1);
  // A rolling update that stopped making progress: once, when it becomes stuck (the condition says the rest).
  const roll = findCondition(after.conditions, CONDITION_ROLLING_UPDATE);
  if (
    roll?.reason === 'RollStuck' &&
    findCondition(before?.conditions, CONDITION_ROLLING_UPDATE)?.reason !== 'RollStuck'
  )
    events.push({ type: 'Warning', reason: 'RollStuck', message: roll.message });
  const from = before?.appliedConfig;
  const to = after.appliedConfig;
  if (
    from !== undefined &&
    to !== undefined &&
    (from.maxmemory !== to.maxmemory || from.maxmemoryPolicy !== to.maxmemoryPolicy)
  ) {
    const n = to.pods?.length ?? 0;
    // Only the settings that changed: an unchanged one listed as `x -> x` reads as a change.
    const changes: string[] = [];
    if (from.maxmemory !== to.maxmemory)
      changes.push(`maxmemory ${formatBytes(from.maxmemory)} -> ${formatBytes(to.maxmemory)}`);
    if (from.maxmemoryPolicy !== to.maxmemoryPolicy)
      changes.push(`maxmemory-policy ${from.maxmemoryPolicy} -> ${to.maxmemoryPolicy}`);
    events.push({
      type: 'Normal',
      reason: 'EvictionSettingsApplied',
      message: `${changes.join(', ')}, applied live on ${n}/${n} pods`,
    });
  }
  const shardEvents = clusterEvents(before, after);
  // A shard losing its primary turns Ready False with reason ShardPrimaryLost too: one warning, the shard's
  // (it names the lost pod), rather than two worded differently for one loss.
  const readyLoss = events.findIndex((e) => e.reason === 'ShardPrimaryLost');
  if (readyLoss >= 0 && shardEvents.some((e) => e.reason === 'ShardPrimaryLost')) events.splice(readyLoss, 1);
  events.push(...shardEvents);
  return events;
}

/** Topology cluster: a resharding starting and ending, a shard losing its primary, a shard's new primary. */
function clusterEvents(before: CacheClusterStatus | undefined, after: CacheClusterStatus): TransitionEvent[] {
  const events: TransitionEvent[] = [];
  const r = after.resharding;
  if (r !== undefined && before?.resharding === undefined)
    events.push({
      type: 'Normal',
      reason: 'ReshardingStarted',
      message: `moving ${r.slotsToMove} slots to reach ${r.toShards} shards`,
    });
  if (r === undefined && before?.resharding !== undefined)
    events.push({
      type: 'Normal',
      reason: 'ReshardingCompleted',
      message: `${before.resharding.toShards} shards: ${before.resharding.slotsToMove} slots moved, ${before.resharding.keysMoved} keys`,
    });
  for (const s of after.shards ?? []) {
    const was = before?.shards?.find((b) => b.index === s.index);
    if (!was) continue;
    if (s.state === 'primaryLost' && was.state !== 'primaryLost')
      events.push({
        type: 'Warning',
        reason: 'ShardPrimaryLost',
        message: `shard ${s.index} lost its primary ${was.primary ?? ''}; Redis Cluster promotes a replica`.replace(
          '  ',
          ' ',
        ),
      });
    if (was.primary !== undefined && s.primary !== undefined && was.primary !== s.primary)
      events.push({
        type: 'Normal',
        reason: 'ShardFailedOver',
        message: `shard ${s.index}: primary ${was.primary} -> ${s.primary}`,
      });
  }
  return events;
}
