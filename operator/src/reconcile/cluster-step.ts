/**
 * The reconcile's cluster step (topology `cluster`): observe every Redis pod of every shard StatefulSet (its Pod
 * from the informer cache for its address, its own view of the cluster from Redis, setting its announce address
 * first), ask `planCluster` what to do, label each pod with its role (`planClusterRoles`: primary / replica as
 * Redis Cluster reports it, none when not known), and do the plan through the injected Redis adapter (every
 * write behind the leadership fence): MEET, FORGET, ADDSLOTSRANGE, REPLICATE, then slot moves in time-boxed batches (status
 * records the move in flight first), then the removal of a drained shard (FORGET its nodes everywhere, RESET
 * them, delete its StatefulSet). Nothing is kept between reconciles: the next one plans again from Redis.
 */
import type { Logger } from 'pino';
import { LABEL_ROLE, REDIS_PORT } from '../api/v1alpha1/constants.js';
import type { CacheCluster, ReshardingStatus } from '../api/v1alpha1/types.js';
import { shardPodName, shardStatefulSetName } from '../desired/names.js';
import { resolveSpec } from '../desired/resolved-spec.js';
import type { KubeApi, KubeObject } from '../k8s/kube-client.js';
import type { ClusterNodeView, SlotMoveResult, SlotMoveStep } from '../redis/cluster.js';
import type { PodEndpoint } from '../redis/live-config.js';
import { formatTime } from '../status/conditions.js';
import { planCluster, reshardingStatus, type ClusterPlan, type ClusterPod } from './cluster-plan.js';
import { planClusterRoles, type ClusterRoleChange } from './cluster-roles.js';

/** The Redis side of the cluster step (redis/cluster.ts's `ClusterSession` fits). */
export interface ClusterAdmin {
  observe(ep: PodEndpoint, announce: { ip: string; port: number } | undefined): Promise<ClusterNodeView>;
  meet(ep: PodEndpoint, target: { host: string; port: number }): Promise<void>;
  addSlotsRange(ep: PodEndpoint, ranges: Array<[number, number]>): Promise<void>;
  replicate(ep: PodEndpoint, primaryId: string): Promise<void>;
  forget(ep: PodEndpoint, id: string): Promise<void>;
  reset(ep: PodEndpoint): Promise<void>;
  setSlotStable(ep: PodEndpoint, slot: number): Promise<void>;
  moveSlot(
    move: { slot: number; source: PodEndpoint; sourceId: string; target: PodEndpoint; targetId: string },
    others: PodEndpoint[],
    batchKeys: number,
    afterStep?: (step: SlotMoveStep) => Promise<void>,
  ): Promise<SlotMoveResult>;
  close(): void;
}

export interface ClusterDeps {
  /** One admin session per reconcile (connections kept for its length), with the CacheCluster's password. */
  session: (password: string | undefined) => ClusterAdmin;
  /** Test hook: awaited after each step of a slot move (e.g. to stop an operator in the middle of one). */
  afterSlotStep?: (key: string, slot: number, step: SlotMoveStep) => Promise<void>;
  /** Longest time one reconcile spends moving slots before it records progress and requeues. Default 5000. */
  reshardBudgetMs?: number;
  /** Keys per MIGRATE. Default 100. */
  migrateBatchKeys?: number;
  /** A monotonic clock in ms. */
  clock: () => number;
  /**
   * Sets (or with null removes) the `cache.ripplecache.io/role` label of a Redis pod (behind the leadership
   * fence). Without it the cluster's pods get no role labels.
   */
  labelPod?: (namespace: string, pod: string, role: string | null) => Promise<void>;
}

/** What the cluster step found and did. */
export interface ClusterOutcome {
  plan: ClusterPlan;
  /** Every pod of the shards `0 … shards-1` that has an address (for live config). */
  endpoints: PodEndpoint[];
  resharding: ReshardingStatus | undefined;
  /** When to look again (ms): soon while anything is pending, {@link CLUSTER_RECHECK_MS} once settled. */
  retryInMs: number | undefined;
}

interface StepDeps {
  kube: KubeApi;
  cached: (kind: string, namespace: string, name: string) => KubeObject | undefined;
  podAddress: (namespace: string, pod: string, dnsName: string, port: number) => { host: string; port: number };
  now: () => Date;
  cluster: ClusterDeps;
}

/** The most shard StatefulSets looked for (the CRD allows 128 shards). */
/**
 * A settled cluster is read again this often: Redis Cluster changes on its own (a replica's link drops, a
 * failover by the cluster itself) without any Kubernetes event that would start a reconcile.
 */
export const CLUSTER_RECHECK_MS = 30_000;
const MAX_SHARDS = 256;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
/** The highest pod ordinal looked for beyond a shard StatefulSet's replicas (the scan stops at the first gap). */
const MAX_LEFTOVER_ORDINAL = 1024;

/** The shard StatefulSets that exist, by index. */
export function existingShardSets(
  cached: StepDeps['cached'],
  cc: CacheCluster,
): Array<{ shard: number; sts: KubeObject & { spec?: { replicas?: number } } }> {
  const out = [];
  for (let i = 0; i < MAX_SHARDS; i++) {
    const sts = cached('StatefulSet', cc.metadata.namespace, shardStatefulSetName(cc, i));
    if (sts) out.push({ shard: i, sts: sts as KubeObject & { spec?: { replicas?: number } } });
  }
  return out;
}

function podEndpoint(deps: StepDeps, cc: CacheCluster, pod: string): PodEndpoint | undefined {
  const ns = cc.metadata.namespace;
  const obj = deps.cached('Pod', ns, pod) as { status?: { podIP?: string } } | undefined;
  const addr = deps.podAddress(ns, pod, obj?.status?.podIP ?? '', REDIS_PORT);
  return addr.host === '' ? undefined : { pod, host: addr.host, port: addr.port };
}

/**
 * Brings the pods' role labels to what `planClusterRoles` decides from the plan (`status.shards`): the changes
 * that take a primary label away first, one by one; the primary labels only if all of those succeeded; then the
 * replica labels. Returns the number of changes that failed (retried on the next reconcile); the fence's
 * refusal is rethrown.
 */
async function applyRoleLabels(
  deps: StepDeps,
  labelPod: NonNullable<ClusterDeps['labelPod']>,
  cc: CacheCluster,
  pods: Array<{ pod: string; shard: number }>,
  plan: ClusterPlan,
  log: Logger,
): Promise<number> {
  const ns = cc.metadata.namespace;
  const roles = planClusterRoles(
    plan.shards,
    pods.map((p) => {
      const obj = deps.cached('Pod', ns, p.pod);
      return { pod: p.pod, shard: p.shard, exists: obj !== undefined, roleLabel: obj?.metadata?.labels?.[LABEL_ROLE] };
    }),
  );
  let failed = 0;
  const label = async (c: ClusterRoleChange): Promise<boolean> => {
    try {
      await labelPod(ns, c.pod, c.role);
      log.info({ pod: c.pod, role: c.role }, c.role ? 'Labelled Redis pod with its role' : 'Removed role label');
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'NotLeader') throw err;
      failed++;
      log.warn(
        { pod: c.pod, role: c.role, err: err instanceof Error ? err.message : String(err) },
        'Could not label pod',
      );
      return false;
    }
  };
  let demoted = true;
  for (const c of roles.demote) if (!(await label(c))) demoted = false;
  if (demoted) for (const c of roles.promote) await label(c);
  else if (roles.promote.length > 0) {
    failed += roles.promote.length;
    log.warn(
      { pods: roles.promote.map((c) => c.pod) },
      'Not labelling primaries: a primary label could not be removed',
    );
  }
  for (const c of roles.rest) await label(c);
  return failed;
}

export async function clusterStep(
  deps: StepDeps,
  cc: CacheCluster,
  key: string,
  log: Logger,
  password: string | undefined,
  writeProgress: (resharding: ReshardingStatus, plan: ClusterPlan) => Promise<void>,
): Promise<ClusterOutcome> {
  const spec = resolveSpec(cc);
  const sets = existingShardSets(deps.cached, cc);
  const pods: ClusterPod[] = [];
  for (const { shard, sts } of sets) {
    const n = sts.spec?.replicas ?? spec.pods;
    for (let ordinal = 0; ordinal < n; ordinal++) {
      const pod = shardPodName(cc, shard, ordinal);
      const endpoint = podEndpoint(deps, cc, pod);
      pods.push({
        pod,
        shard,
        ordinal,
        ...(endpoint ? { endpoint: { host: endpoint.host, port: endpoint.port } } : {}),
      });
    }
  }
  const admin = deps.cluster.session(password);
  try {
    await Promise.all(
      pods.map(async (p) => {
        if (!p.endpoint) return;
        const ep = { pod: p.pod, ...p.endpoint };
        try {
          p.view = await admin.observe(ep, IPV4.test(ep.host) ? { ip: ep.host, port: ep.port } : undefined);
        } catch (err) {
          log.debug(
            { pod: p.pod, err: err instanceof Error ? err.message : String(err) },
            'Cluster node not reachable',
          );
        }
      }),
    );
    const plan = planCluster({ pods, shards: spec.shards, existingShards: sets.map((s) => s.shard) });
    const ep = (pod: string): PodEndpoint => {
      const p = pods.find((x) => x.pod === pod)!;
      return { pod, ...p.endpoint! };
    };
    const endpoints = pods.filter((p) => p.shard < spec.shards && p.endpoint).map((p) => ep(p.pod));
    let failed = 0;
    // Role labels first, from this very observation (the actions below may change roles: the next reconcile
    // labels what it then observes).
    if (deps.cluster.labelPod) {
      // Also the pods beyond a shard StatefulSet's replicas that are still there (a scale-down removing them):
      // not observed, so without a role, but one of them may carry the shard's primary label.
      const leftover: Array<{ pod: string; shard: number }> = [];
      for (const { shard, sts } of sets)
        for (let ordinal = sts.spec?.replicas ?? spec.pods; ordinal < MAX_LEFTOVER_ORDINAL; ordinal++) {
          const pod = shardPodName(cc, shard, ordinal);
          if (!deps.cached('Pod', cc.metadata.namespace, pod)) break;
          leftover.push({ pod, shard });
        }
      failed += await applyRoleLabels(deps, deps.cluster.labelPod, cc, [...pods, ...leftover], plan, log);
    }
    const attempt = async (what: string, fields: Record<string, unknown>, fn: () => Promise<void>) => {
      try {
        await fn();
        log.info(fields, what);
      } catch (err) {
        if (!(err instanceof Error) || err.name !== 'ClusterCommandError') throw err; // the fence, a bug
        failed++;
        log.warn({ ...fields, err: err.message }, `${what}: failed, will retry`);
      }
    };
    for (const a of plan.actions) {
      switch (a.kind) {
        case 'meet':
          await attempt('CLUSTER MEET', { on: a.on, target: a.target }, () => admin.meet(ep(a.on), ep(a.target)));
          break;
        case 'forget':
          for (const on of a.on)
            await attempt('CLUSTER FORGET of a node no pod has', { on, id: a.id }, () => admin.forget(ep(on), a.id));
          break;
        case 'addSlots':
          await attempt(
            'CLUSTER ADDSLOTSRANGE',
            { pod: a.pod, ranges: a.ranges.map((r) => r.join('-')).join(',') },
            () => admin.addSlotsRange(ep(a.pod), a.ranges),
          );
          break;
        case 'replicate':
          await attempt('CLUSTER REPLICATE', { pod: a.pod, primaryId: a.primaryId }, () =>
            admin.replicate(ep(a.pod), a.primaryId),
          );
          break;
        case 'stableSlot':
          await attempt(
            'CLUSTER SETSLOT STABLE of a move towards a node no pod has',
            { pod: a.pod, slot: a.slot },
            () => admin.setSlotStable(ep(a.pod), a.slot),
          );
          break;
        case 'removeShard': {
          const remaining = pods.filter((p) => p.shard < spec.shards && p.view);
          for (const id of a.ids)
            for (const p of remaining)
              await attempt('CLUSTER FORGET of a drained shard', { on: p.pod, id, shard: a.shard }, () =>
                admin.forget(ep(p.pod), id),
              );
          for (const p of pods.filter((x) => x.shard === a.shard && x.view))
            await attempt('CLUSTER RESET of a drained shard', { pod: p.pod, shard: a.shard }, () =>
              admin.reset(ep(p.pod)),
            );
          if (failed === 0) {
            await deps.kube.delete({
              apiVersion: 'apps/v1',
              kind: 'StatefulSet',
              namespace: cc.metadata.namespace,
              name: shardStatefulSetName(cc, a.shard),
            });
            log.info({ shard: a.shard, statefulSet: shardStatefulSetName(cc, a.shard) }, 'Deleted a drained shard');
          }
          break;
        }
      }
    }

    // ---- Slot moves, once nothing else is pending ----------------------------------------------------
    // status.resharding ends only when a plan made from Redis finds the slots settled (never on the strength
    // of the moves this reconcile made: the next one verifies them).
    const resharding = reshardingStatus(cc.status?.resharding, plan, spec.shards, formatTime(deps.now()));
    let moved = 0;
    if (resharding && plan.moves.length > 0 && plan.actions.length === 0) {
      const primaries = new Map<number, PodEndpoint>();
      for (const [shard, id] of plan.primaryIds) {
        const p = pods.find((x) => x.view?.myId === id);
        if (p) primaries.set(shard, ep(p.pod));
      }
      const first = plan.moves[0]!;
      resharding.current = `slot ${first.slot} from shard ${first.from} to shard ${first.to}`;
      await writeProgress(resharding, plan);
      const started = deps.cluster.clock();
      const budget = deps.cluster.reshardBudgetMs ?? 5000;
      for (const m of plan.moves) {
        if (deps.cluster.clock() - started > budget) break;
        const source = primaries.get(m.from)!;
        const target = primaries.get(m.to)!;
        const others = [...primaries.values()].filter((x) => x !== source && x !== target);
        resharding.current = `slot ${m.slot} from shard ${m.from} to shard ${m.to}`;
        try {
          const r = await admin.moveSlot(
            {
              slot: m.slot,
              source,
              sourceId: plan.primaryIds.get(m.from)!,
              target,
              targetId: plan.primaryIds.get(m.to)!,
            },
            others,
            deps.cluster.migrateBatchKeys ?? 100,
            deps.cluster.afterSlotStep ? (step) => deps.cluster.afterSlotStep!(key, m.slot, step) : undefined,
          );
          moved++;
          resharding.keysMoved += r.keys;
        } catch (err) {
          if (!(err instanceof Error) || err.name !== 'ClusterCommandError') throw err;
          failed++;
          log.warn({ slot: m.slot, from: m.from, to: m.to, err: err.message }, 'Slot move failed; will retry');
          break;
        }
      }
      resharding.slotsRemaining = Math.max(0, resharding.slotsRemaining - moved);
      log.info(
        { toShards: spec.shards, moved, remaining: resharding.slotsRemaining, keysMoved: resharding.keysMoved },
        'Moved slots',
      );
      if (resharding.slotsRemaining === 0 || moved === plan.moves.length) delete resharding.current;
    }
    // Redis Cluster changes on its own (a replica promoted, gossip spreading): look again while any shard is not ok.
    const pending =
      plan.actions.length > 0 ||
      plan.moves.length > 0 ||
      plan.waiting !== undefined ||
      resharding !== undefined ||
      plan.shards.some((sh) => sh.state !== 'ok');
    return {
      plan,
      endpoints,
      resharding,
      retryInMs: failed > 0 ? 2000 : moved > 0 ? 50 : pending ? 1000 : CLUSTER_RECHECK_MS,
    };
  } finally {
    admin.close();
  }
}
