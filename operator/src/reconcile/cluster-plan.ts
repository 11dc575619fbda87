/**
 * Pure planning of topology `cluster` (Redis Cluster): from every pod's own view (`CLUSTER NODES`, read by the
 * cluster step), what to do next — MEET nodes that are not in the cluster yet, FORGET node ids that no pod has
 * any more, ADDSLOTSRANGE of unassigned slots, REPLICATE of each shard's other pods to its primary, slot moves
 * when `spec.shards` changed, and the removal of a drained shard. Nothing here is remembered between
 * reconciles: the plan is recomputed from what Redis reports, which makes every step resumable (a slot left
 * MIGRATING/IMPORTING by a killed operator is finished first) and idempotent.
 *
 * A shard is a StatefulSet `<name>-shard-<i>`: its primary is the pod whose node owns slots (Redis Cluster
 * itself promotes a replica when a primary dies); its other pods are made replicas of it.
 */
import { CLUSTER_SLOTS } from '../api/v1alpha1/constants.js';
import type { ReshardingStatus, ShardStatus } from '../api/v1alpha1/types.js';
import { formatSlotRanges, slotCount, toRanges, type ClusterNodeEntry } from '../redis/cluster-nodes.js';

/** One Redis pod of a shard StatefulSet, as the cluster step observed it. */
export interface ClusterPod {
  pod: string;
  shard: number;
  ordinal: number;
  /** Where the operator (and the other nodes) reach it; absent while the pod has no address. */
  endpoint?: { host: string; port: number };
  /** Its own answers; absent when it could not be asked. */
  view?: { myId: string; nodes: ClusterNodeEntry[]; state: string; replicaSynced?: boolean };
}

export interface ClusterPlanInput {
  /** Every pod of every shard StatefulSet that exists (desired shards and shards being drained). */
  pods: ClusterPod[];
  /** `spec.shards`. */
  shards: number;
  /** The shard StatefulSets that exist (indexes), including those beyond `shards`. */
  existingShards: number[];
}

/** One slot moving from one shard's primary to another's. */
export interface SlotMove {
  slot: number;
  from: number;
  to: number;
}

export type ClusterAction =
  | { kind: 'meet'; on: string; target: string }
  | { kind: 'forget'; id: string; on: string[] }
  | { kind: 'addSlots'; pod: string; ranges: Array<[number, number]> }
  | { kind: 'replicate'; pod: string; primaryId: string }
  /** `CLUSTER SETSLOT slot STABLE`: a slot left MIGRATING/IMPORTING towards a node no pod has any more. */
  | { kind: 'stableSlot'; pod: string; slot: number }
  | { kind: 'removeShard'; shard: number; ids: string[] };

export interface ClusterPlan {
  /** To carry out now, in order. */
  actions: ClusterAction[];
  /**
   * Slot moves to make now (those left in flight first); empty when the slots are where they belong, and also
   * while a move cannot be made (a shard without a primary: see `waiting`).
   */
  moves: SlotMove[];
  /**
   * Slots not where the target split puts them (in flight included), whether or not they can move now;
   * undefined when the owners are not all known (a slot unassigned or owned by an unknown node, a shard that
   * lost its primary).
   */
  slotsOff: number | undefined;
  /**
   * The slots are where they belong: every slot's owner is known, each shard `0 … shards-1` holds its even
   * count (`evenSlotCounts`) and every other shard none, no node has a slot MIGRATING or IMPORTING, and no
   * shard beyond `shards` is left to remove. Only then is a resharding over (status.resharding cleared).
   */
  settled: boolean;
  /** Per shard index (existing shards), for status. */
  shards: ShardStatus[];
  /** The node id of each shard's primary pod (when up). */
  primaryIds: Map<number, string>;
  /** `cluster_state` of the pod whose view was used. */
  clusterState: string | undefined;
  slotsAssigned: number;
  /** What bootstrap waits for, when it waits. */
  waiting?: string;
}

/** Slots per shard when spread evenly over `shards`: the first `16384 % shards` shards get one more. */
export function evenSlotCounts(shards: number): number[] {
  const base = Math.floor(CLUSTER_SLOTS / shards);
  const extra = CLUSTER_SLOTS % shards;
  return Array.from({ length: shards }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Contiguous ranges of a fresh cluster: shard 0 gets the first slots, and so on (as `redis-cli --cluster create`). */
export function evenSlotRanges(shards: number): Array<[number, number]> {
  let start = 0;
  return evenSlotCounts(shards).map((n) => {
    const r: [number, number] = [start, start + n - 1];
    start += n;
    return r;
  });
}

/**
 * The fewest slot moves that give shards `0 … shards-1` even counts and every other shard none: `owner[slot]`
 * is the shard that owns the slot now. Donors give their highest slots, recipients take them in index order.
 */
export function planSlotMoves(owner: readonly number[], shards: number): SlotMove[] {
  const target = evenSlotCounts(shards);
  const owned = new Map<number, number[]>();
  owner.forEach((s, slot) => {
    if (!owned.has(s)) owned.set(s, []);
    owned.get(s)!.push(slot);
  });
  const give: number[] = [];
  const giveFrom: number[] = [];
  for (const s of [...owned.keys()].sort((a, b) => a - b)) {
    const slots = owned.get(s)!;
    const keep = s < shards ? target[s]! : 0;
    for (const slot of slots.slice(keep).reverse()) {
      give.push(slot);
      giveFrom.push(s);
    }
  }
  const moves: SlotMove[] = [];
  let k = 0;
  for (let s = 0; s < shards && k < give.length; s++) {
    const need = target[s]! - (owned.get(s)?.length ?? 0);
    for (let n = 0; n < need && k < give.length; n++, k++) moves.push({ slot: give[k]!, from: giveFrom[k]!, to: s });
  }
  return moves;
}

/** The owner id of each slot as one node sees it (`''`: unbound in its view). */
export function slotOwnersInView(nodes: ClusterNodeEntry[]): string[] {
  const owners = new Array<string>(CLUSTER_SLOTS).fill('');
  for (const n of nodes) {
    if (!n.flags.includes('master')) continue;
    for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owners[s] = n.id;
  }
  return owners;
}

function known(nodes: ClusterNodeEntry[], id: string): boolean {
  return nodes.some((n) => n.id === id && !n.flags.includes('handshake') && !n.flags.includes('noaddr'));
}

function me(p: ClusterPod): ClusterNodeEntry | undefined {
  return p.view?.nodes.find((n) => n.flags.includes('myself'));
}

/** Plans the next cluster steps from the pods' views (see the module comment). */
export function planCluster(input: ClusterPlanInput): ClusterPlan {
  const pods = [...input.pods].sort((a, b) => a.shard - b.shard || a.ordinal - b.ordinal);
  const reachable = pods.filter((p) => p.view !== undefined && p.endpoint !== undefined);
  const plan: ClusterPlan = {
    actions: [],
    moves: [],
    shards: [],
    primaryIds: new Map(),
    clusterState: undefined,
    slotsAssigned: 0,
    slotsOff: undefined,
    settled: false,
  };
  const existing = [...new Set([...input.existingShards, ...pods.map((p) => p.shard)])].sort((a, b) => a - b);
  if (reachable.length === 0) {
    plan.waiting = 'no Redis pod reachable yet';
    plan.shards = existing.map((index) => ({ index, slots: '', slotCount: 0, replicas: [], state: 'pending' }));
    return plan;
  }
  // The view used for the cluster as a whole: the pod that knows the most nodes (a pod back empty knows only itself).
  const seed = reachable.reduce((best, p) => (p.view!.nodes.length > best.view!.nodes.length ? p : best));
  const table = seed.view!.nodes;
  plan.clusterState = seed.view!.state;
  const podOfId = new Map(reachable.map((p) => [p.view!.myId, p]));
  const everyPodReachable = pods.length > 0 && pods.every((p) => p.view !== undefined);
  const byId = new Map(table.map((n) => [n.id, n]));

  // ---- MEET: every reachable pod into the seed's cluster ----------------------------------------------
  for (const p of reachable) {
    if (p === seed || known(table, p.view!.myId)) continue;
    plan.actions.push({ kind: 'meet', on: seed.pod, target: p.pod });
  }

  // ---- Shards: who owns which slots ---------------------------------------------------------------------
  const shardOfId = new Map<string, number>();
  for (const p of reachable) {
    shardOfId.set(p.view!.myId, p.shard);
    const m = me(p);
    // A replica's master belongs to the replica's shard (also when that master is a node that is gone).
    if (m?.masterId !== undefined && !shardOfId.has(m.masterId)) shardOfId.set(m.masterId, p.shard);
  }
  // A node that does not answer, followed by no replica (a shard without replicas that lost its primary): its
  // shard is the pod at its address, so that its slots show as the shard's and the shard as primaryLost
  // (before, they belonged to no shard and the shard read `pending` with no slots). Only pods that do not
  // answer: a pod back empty answers with a new id, and its old id must stay unknown (its slots are re-added).
  for (const p of pods) {
    if (p.view !== undefined || p.endpoint === undefined) continue;
    const { host, port } = p.endpoint;
    for (const n of table)
      if (n.host === host && n.port === port && n.flags.includes('master') && !shardOfId.has(n.id))
        shardOfId.set(n.id, p.shard);
  }
  // Who owns each slot: first what each reachable node says of itself (gossip may not have spread a fresh
  // ADDSLOTSRANGE or SETSLOT yet), then what any view says of nodes that do not answer. A slot no view gives to
  // anyone is unassigned.
  const owner: number[] = new Array<number>(CLUSTER_SLOTS).fill(-1);
  const ownerId: string[] = new Array<string>(CLUSTER_SLOTS).fill('');
  for (const p of reachable) {
    const m = me(p);
    if (!m?.flags.includes('master')) continue;
    for (const [a, b] of m.slots)
      for (let s = a; s <= b; s++) {
        // Two nodes claim a slot between the SETSLOT NODE of a move's target and its source: the source's claim
        // is the one left over.
        if (ownerId[s] !== '' && m.migrating.some((x) => x.slot === s)) continue;
        ownerId[s] = p.view!.myId;
      }
  }
  for (const p of reachable)
    for (const n of p.view!.nodes) {
      if (!n.flags.includes('master') || podOfId.has(n.id)) continue;
      for (const [a, b] of n.slots) for (let s = a; s <= b; s++) if (ownerId[s] === '') ownerId[s] = n.id;
    }
  ownerId.forEach((id, s) => {
    if (id !== '') owner[s] = shardOfId.get(id) ?? -2;
  });
  plan.slotsAssigned = ownerId.filter((id) => id !== '').length;
  const fresh = plan.slotsAssigned === 0;

  const slotOwners = new Set(ownerId.filter((id) => id !== ''));
  const primaryPod = new Map<number, ClusterPod>();
  const lostShards = new Set<number>();
  for (const shard of existing) {
    const shardPods = reachable.filter((p) => p.shard === shard);
    const ownerIds = new Set([...slotOwners].filter((id) => shardOfId.get(id) === shard));
    const up = shardPods.find((p) => ownerIds.has(p.view!.myId) && !byId.get(p.view!.myId)?.flags.includes('fail'));
    if (up) primaryPod.set(shard, up);
    else if (ownerIds.size > 0) lostShards.add(shard);
    else {
      // No slots yet (a new cluster, a new shard, or one whose slots were lost): its first master pod leads it.
      // Also in a shard being drained that has none: a move into it left in flight is finished, then undone.
      const lead = shardPods.find((p) => me(p)?.flags.includes('master') && me(p)!.slots.length === 0);
      if (lead) primaryPod.set(shard, lead);
    }
  }
  for (const [shard, p] of primaryPod) plan.primaryIds.set(shard, p.view!.myId);

  // ---- FORGET: ids no pod has any more (a pod back empty, a removed shard) -------------------------------
  if (everyPodReachable) {
    const followed = new Set(reachable.map((p) => me(p)?.masterId).filter((id): id is string => id !== undefined));
    for (const n of table) {
      if (podOfId.has(n.id) || !n.flags.includes('fail') || followed.has(n.id)) continue;
      const on = reachable.filter((p) => p.view!.myId !== n.id && p.view!.nodes.some((m) => m.id === n.id));
      if (on.length > 0) plan.actions.push({ kind: 'forget', id: n.id, on: on.map((p) => p.pod) });
    }
  }

  // ---- ADDSLOTSRANGE: slots no node owns ------------------------------------------------------------------
  const desiredShards = Array.from({ length: input.shards }, (_, i) => i);
  if (fresh) {
    const missing = desiredShards.filter((s) => !primaryPod.has(s));
    const unmet = plan.actions.some((a) => a.kind === 'meet');
    if (missing.length > 0) plan.waiting = `waiting for a node in shard(s) ${missing.join(', ')}`;
    else if (unmet) plan.waiting = 'waiting for every node to join the cluster (CLUSTER MEET)';
    else
      evenSlotRanges(input.shards).forEach((range, shard) =>
        plan.actions.push({ kind: 'addSlots', pod: primaryPod.get(shard)!.pod, ranges: [range] }),
      );
  } else if (plan.slotsAssigned < CLUSTER_SLOTS && everyPodReachable) {
    // Slots whose owner was forgotten (a shard without replica that lost its primary): to the shard with the
    // fewest slots among those with a primary; resharding evens them out afterwards.
    const counts = desiredShards
      .filter((s) => primaryPod.has(s))
      .map((s) => ({ s, n: owner.filter((o) => o === s).length }))
      .sort((a, b) => a.n - b.n || a.s - b.s);
    const to = counts[0];
    if (to) {
      const unassigned = ownerId.flatMap((id, slot) => (id === '' ? [slot] : []));
      plan.actions.push({ kind: 'addSlots', pod: primaryPod.get(to.s)!.pod, ranges: toRanges(unassigned) });
    }
  }

  // ---- REPLICATE: each shard's other pods follow its primary --------------------------------------------
  for (const [shard, primary] of primaryPod) {
    const pid = primary.view!.myId;
    for (const p of reachable) {
      if (p.shard !== shard || p === primary) continue;
      const m = me(p);
      if (!m) continue;
      const emptyMaster = m.flags.includes('master') && m.slots.length === 0 && m.importing.length === 0;
      const wrongMaster = m.flags.includes('slave') && m.masterId !== pid;
      if (!emptyMaster && !wrongMaster) continue;
      if (known(p.view!.nodes, pid)) plan.actions.push({ kind: 'replicate', pod: p.pod, primaryId: pid });
      else plan.waiting ??= `waiting for ${p.pod} to learn its primary ${primary.pod} (gossip) to replicate it`;
    }
  }

  // ---- Slot moves ------------------------------------------------------------------------------------------
  // A move left half-way (an operator killed between two steps) shows as MIGRATING on the source and/or
  // IMPORTING on the target, in their own views; its keys may be on both sides. It is finished first, towards
  // the target it was started for, whatever the owners say meanwhile (the target may already own the slot).
  const shardOf = (id: string) => shardOfId.get(id);
  const inFlight: SlotMove[] = [];
  let migrationState = false;
  for (const p of reachable) {
    const m = me(p);
    if (!m?.flags.includes('master')) continue;
    for (const mg of m.migrating) {
      migrationState = true;
      const to = shardOf(mg.to);
      if (to !== undefined && to !== p.shard) {
        if (!inFlight.some((x) => x.slot === mg.slot)) inFlight.push({ slot: mg.slot, from: p.shard, to });
      } else if (to === undefined && everyPodReachable)
        plan.actions.push({ kind: 'stableSlot', pod: p.pod, slot: mg.slot });
    }
    for (const im of m.importing) {
      migrationState = true;
      const from = shardOf(im.from);
      if (from !== undefined && from !== p.shard) {
        if (!inFlight.some((x) => x.slot === im.slot)) inFlight.push({ slot: im.slot, from, to: p.shard });
      } else if (from === undefined && everyPodReachable)
        plan.actions.push({ kind: 'stableSlot', pod: p.pod, slot: im.slot });
    }
  }
  const coverageKnown = plan.slotsAssigned === CLUSTER_SLOTS && owner.every((o) => o >= 0);
  let pending: SlotMove[] | undefined;
  if (coverageKnown && lostShards.size === 0) {
    // The rest is planned as if the moves in flight were done: the plan is the same before and after them.
    const landed = [...owner];
    for (const m of inFlight) landed[m.slot] = m.to;
    pending = [...inFlight, ...planSlotMoves(landed, input.shards)];
    plan.slotsOff = pending.length;
    plan.moves = pending.filter((m) => primaryPod.has(m.from) && primaryPod.has(m.to));
    if (plan.moves.length < pending.length) plan.waiting = 'waiting for a primary in every shard to move slots';
    // A move starts (or goes on) only once its target knows who owns the slot: Redis Cluster's gossip never
    // binds a slot a node is IMPORTING (it leaves such slots to the resharding tool), and MIGRATE's
    // RESTORE-ASKING on a target that sees the slot unbound fails with CLUSTERDOWN for as long as it stays
    // IMPORTING. A node just MEET-ed learns the slot map within a few gossip rounds; until then, wait. It
    // also refuses RESTORE-ASKING with `CLUSTERDOWN The cluster is down` until its own cluster_state is ok
    // (a few seconds after it joins), and a move failed half-way leaves the slot MIGRATING, where clients'
    // writes of new keys get TRYAGAIN: so a target must also report cluster_state ok.
    const viewOwners = new Map<number, string[]>();
    const ownerSeenBy = (shard: number, slot: number): string => {
      let owners = viewOwners.get(shard);
      if (!owners) {
        owners = slotOwnersInView(primaryPod.get(shard)!.view!.nodes);
        viewOwners.set(shard, owners);
      }
      return owners[slot]!;
    };
    const sees = (m: SlotMove) => primaryPod.get(m.to)!.view!.state === 'ok' && ownerSeenBy(m.to, m.slot) !== '';
    const ready = plan.moves.filter(sees);
    if (ready.length < plan.moves.length) {
      const blind = [...new Set(plan.moves.filter((m) => !sees(m)).map((m) => m.to))];
      plan.waiting ??= `waiting for shard(s) ${blind.join(', ')} to learn the slot map (gossip) and report cluster_state ok to move slots`;
      plan.moves = ready;
    }
  }
  // A slot a primary is IMPORTING while it sees no owner for it (IMPORTING sent before it learned the slot
  // map, by an operator without the wait above): it can neither take keys nor learn the owner, so its
  // IMPORTING is cleared (it holds none of the slot's keys: every command on an unbound slot is refused) and
  // the move is made again once gossip has bound the slot.
  for (const [, p] of primaryPod) {
    const m = me(p);
    if (!m || m.importing.length === 0) continue;
    const owners = slotOwnersInView(p.view!.nodes);
    for (const im of m.importing)
      if (owners[im.slot] === '') plan.actions.push({ kind: 'stableSlot', pod: p.pod, slot: im.slot });
  }

  // ---- Drained shards beyond spec.shards -------------------------------------------------------------------
  // Only once its slots are known to be elsewhere and no move (possible now or not) involves it.
  for (const shard of existing) {
    if (shard < input.shards || pending === undefined) continue;
    if (owner.some((o) => o === shard) || pending.some((m) => m.from === shard || m.to === shard)) continue;
    const ids = reachable.filter((p) => p.shard === shard).map((p) => p.view!.myId);
    plan.actions.push({ kind: 'removeShard', shard, ids });
  }
  plan.settled = plan.slotsOff === 0 && !migrationState && existing.every((shard) => shard < input.shards);

  // ---- Status per shard ------------------------------------------------------------------------------------
  plan.shards = existing.map((index): ShardStatus => {
    const slots = owner.flatMap((o, slot) => (o === index ? [slot] : []));
    const ranges = toRanges(slots);
    const primary = primaryPod.get(index);
    const pid = primary?.view!.myId;
    const replicas = reachable
      .filter((p) => p.shard === index && p !== primary && pid !== undefined && me(p)?.masterId === pid)
      .map((p) => p.pod);
    // Redis Cluster never promotes a replica that has not synced with its primary: until it has, the shard
    // cannot fail over to it (README "Redis Cluster").
    const unsynced = replicas.filter((name) => reachable.find((p) => p.pod === name)?.view?.replicaSynced === false);
    const shardPods = pods.filter((p) => p.shard === index);
    // A draining shard that loses its primary still owns slots nobody serves until Redis Cluster promotes a
    // replica: that shows (ShardPrimaryLost), not only `draining`.
    const state: ShardStatus['state'] = lostShards.has(index)
      ? 'primaryLost'
      : index >= input.shards
        ? 'draining'
        : primary === undefined || slots.length === 0
          ? 'pending'
          : replicas.length < shardPods.length - 1 || unsynced.length > 0
            ? 'degraded'
            : 'ok';
    return {
      index,
      slots: formatSlotRanges(ranges),
      slotCount: slotCount(ranges),
      ...(primary ? { primary: primary.pod } : {}),
      replicas,
      ...(unsynced.length > 0 ? { unsyncedReplicas: unsynced } : {}),
      state,
    };
  });
  return plan;
}

/**
 * `status.resharding` as this reconcile's plan finds it, before it moves any slot: absent once the plan is
 * `settled` (and only then: a reconcile that moved the last slots leaves it for the next one to verify from
 * Redis), else the slots still off their target split (`slotsOff`). The same resharding (same `toShards`) keeps
 * its start, its keys moved and the most slots it ever had to move. While the owners cannot be told (a shard
 * without a primary) the last status is kept as it is.
 */
export function reshardingStatus(
  prev: ReshardingStatus | undefined,
  plan: Pick<ClusterPlan, 'settled' | 'slotsOff'>,
  toShards: number,
  now: string,
): ReshardingStatus | undefined {
  if (plan.settled) return undefined;
  if (plan.slotsOff === undefined) return prev;
  if (plan.slotsOff === 0 && prev === undefined) return undefined;
  const same = prev?.toShards === toShards ? prev : undefined;
  return {
    toShards,
    slotsToMove: same ? Math.max(same.slotsToMove, plan.slotsOff) : plan.slotsOff,
    slotsRemaining: plan.slotsOff,
    keysMoved: same?.keysMoved ?? 0,
    startedAt: same?.startedAt ?? now,
  };
}
