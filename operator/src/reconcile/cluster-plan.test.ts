import { describe, expect, it } from 'vitest';
import { parseClusterNodes, type ClusterNodeEntry } from '../redis/cluster-nodes.js';
import {
  evenSlotCounts,
  evenSlotRanges,
  planCluster,
  planSlotMoves,
  reshardingStatus,
  type ClusterPod,
} from './cluster-plan.js';

const id = (c: string) => c.repeat(40);

/** A CLUSTER NODES line. */
function line(
  nodeId: string,
  port: number,
  flags: string,
  master = '-',
  slots: string[] = [],
  link = 'connected',
): string {
  return `${nodeId} 127.0.0.1:${port}@${port + 10000} ${flags} ${master} 0 0 1 ${link} ${slots.join(' ')}`.trim();
}

/** A pod whose view is `lines` (its own line flagged myself). */
function pod(shard: number, ordinal: number, myId: string | undefined, lines: string[] = []): ClusterPod {
  const name = `c-shard-${shard}-${ordinal}`;
  const port = 7000 + shard * 10 + ordinal;
  if (myId === undefined) return { pod: name, shard, ordinal, endpoint: { host: '127.0.0.1', port } };
  const nodes: ClusterNodeEntry[] = parseClusterNodes(lines.join('\n'));
  return { pod: name, shard, ordinal, endpoint: { host: '127.0.0.1', port }, view: { myId, nodes, state: 'ok' } };
}

/** Views of a formed cluster: `owners[i]` the slots of shard i's primary (pod 0), pod 1 its replica. */
function formed(owners: string[][], opts: { self?: string; extra?: string[] } = {}): ClusterPod[] {
  const lines = owners.flatMap((slots, i) => [
    line(id(String.fromCharCode(97 + i)), 7000 + i * 10, 'master', '-', slots),
    line(id(String(i)), 7001 + i * 10, 'slave', id(String.fromCharCode(97 + i))),
  ]);
  const all = [...lines, ...(opts.extra ?? [])];
  return owners.flatMap((_, i) => {
    const pid = id(String.fromCharCode(97 + i));
    const rid = id(String(i));
    const mark = (self: string) =>
      all.map((l) => (l.startsWith(self) ? l.replace(/ (master|slave) /, ' myself,$1 ') : l));
    return [pod(i, 0, pid, mark(pid)), pod(i, 1, rid, mark(rid))];
  });
}

describe('even slot allocation', () => {
  it('spreads 16384 slots over the shards, the first ones taking the remainder, contiguous for a new cluster', () => {
    expect(evenSlotCounts(3)).toEqual([5462, 5461, 5461]);
    expect(evenSlotRanges(3)).toEqual([
      [0, 5461],
      [5462, 10922],
      [10923, 16383],
    ]);
    expect(evenSlotCounts(4)).toEqual([4096, 4096, 4096, 4096]);
  });

  it('moves the fewest slots: 3 → 4 takes a quarter to the new shard; 4 → 3 drains shard 3', () => {
    const owner3 = evenSlotRanges(3).flatMap(([a, b], s) => Array.from({ length: b - a + 1 }, () => s));
    const out = planSlotMoves(owner3, 4);
    expect(out).toHaveLength(4096);
    expect(out.every((m) => m.to === 3)).toBe(true);
    expect(out.filter((m) => m.from === 0)).toHaveLength(5462 - 4096);
    const after = [...owner3];
    for (const m of out) after[m.slot] = m.to;
    expect(planSlotMoves(after, 4)).toEqual([]);
    const back = planSlotMoves(after, 3);
    expect(back).toHaveLength(4096);
    expect(back.every((m) => m.from === 3 && m.to < 3)).toBe(true);
    for (const m of back) after[m.slot] = m.to;
    expect([0, 1, 2].map((s) => after.filter((o) => o === s).length)).toEqual([5462, 5461, 5461]);
  });
});

describe('planCluster', () => {
  it('bootstraps: MEETs every node from one seed, waits for them, then assigns the slots evenly and REPLICATEs', () => {
    const alone = (s: number, o: number) => {
      const me = id(String.fromCharCode(97 + s * 2 + o));
      return pod(s, o, me, [line(me, 7000 + s * 10 + o, 'myself,master')]);
    };
    const pods = [0, 1, 2].flatMap((s) => [alone(s, 0), alone(s, 1)]);
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.actions.filter((a) => a.kind === 'meet')).toHaveLength(5);
    expect(plan.actions.some((a) => a.kind === 'addSlots')).toBe(false);
    expect(plan.waiting).toMatch(/MEET/);

    // Every node knows every other: slots to pod 0 of each shard, pod 1 replicates it.
    const all = pods.map((p) => line(p.view!.myId, p.endpoint!.port, 'master'));
    const met = pods.map((p) =>
      pod(
        p.shard,
        p.ordinal,
        p.view!.myId,
        all.map((l) => (l.startsWith(p.view!.myId) ? l.replace(' master ', ' myself,master ') : l)),
      ),
    );
    const next = planCluster({ pods: met, shards: 3, existingShards: [0, 1, 2] });
    expect(next.actions).toContainEqual({ kind: 'addSlots', pod: 'c-shard-0-0', ranges: [[0, 5461]] });
    expect(next.actions).toContainEqual({ kind: 'addSlots', pod: 'c-shard-2-0', ranges: [[10923, 16383]] });
    expect(next.actions).toContainEqual({ kind: 'replicate', pod: 'c-shard-1-1', primaryId: id('c') });
    expect(next.actions.some((a) => a.kind === 'meet')).toBe(false);
  });

  it('takes each node at its word for its own slots: no second ADDSLOTSRANGE while gossip lags', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']]);
    // The seed (most nodes known) has not heard of shard 1's and 2's slots yet; their primaries know them.
    const seed = pods[0]!;
    seed.view!.nodes = seed.view!.nodes.map((n) => (n.id === id('a') ? n : { ...n, slots: [] }));
    seed.view!.nodes.push(...parseClusterNodes(line(id('z'), 7990, 'master,fail')));
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.slotsAssigned).toBe(16384);
    expect(plan.actions.filter((a) => a.kind === 'addSlots')).toEqual([]);
    expect(plan.moves).toEqual([]);
  });

  /** Shard 1 of a formed, even 3-shard cluster, as status reports it when all is well. */
  const shard1Ok = {
    index: 1,
    slots: '5462-10922',
    slotCount: 5461,
    primary: 'c-shard-1-0',
    replicas: ['c-shard-1-1'],
    state: 'ok',
  };

  it('does nothing on a formed, even cluster and reports each shard', () => {
    const plan = planCluster({
      pods: formed([['0-5461'], ['5462-10922'], ['10923-16383']]),
      shards: 3,
      existingShards: [0, 1, 2],
    });
    expect(plan.actions).toEqual([]);
    expect(plan.moves).toEqual([]);
    expect(plan.slotsAssigned).toBe(16384);
    expect(plan.shards[1]).toEqual(shard1Ok);
  });

  it('reports a replica that has not synced with its primary, and the shard degraded, not ok', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']]);
    for (const p of pods) if (p.view && p.ordinal === 1) p.view.replicaSynced = p.shard !== 1;
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.actions).toEqual([]);
    expect(plan.shards[1]).toEqual({ ...shard1Ok, unsyncedReplicas: ['c-shard-1-1'], state: 'degraded' });
    expect(plan.shards.map((x) => x.state)).toEqual(['ok', 'degraded', 'ok']);
    expect(plan.shards[0]).not.toHaveProperty('unsyncedReplicas');
  });

  it('finishes a slot left MIGRATING by a killed operator first, then plans the rest', () => {
    const pods = formed([['0-5461', '[5461->-' + id('c') + ']'], ['5462-10922'], ['10923-16383']]);
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    // Shard 3 exists without pods here: nothing can move to it yet.
    expect(plan.moves[0]).toEqual({ slot: 5461, from: 0, to: 2 });
    expect(plan.moves).toHaveLength(1);
  });

  it('forgets a failed id no pod has any more (a pod back empty) once every pod answers, and makes it a replica', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']], {
      extra: [line(id('f'), 7999, 'master,fail')],
    });
    // Pod c-shard-0-1 came back empty: a new id, knowing the cluster after MEET.
    const fresh = id('9');
    const seedLines = pods[0]!.view!.nodes;
    pods[1] = pod(0, 1, fresh, [
      line(fresh, 7001, 'myself,master'),
      ...seedLines.map((n) => line(n.id, n.port, n.flags.filter((f) => f !== 'myself').join(','), n.masterId ?? '-')),
    ]);
    const withNew = pods.map((p) =>
      p === pods[1]
        ? p
        : { ...p, view: { ...p.view!, nodes: [...p.view!.nodes, ...parseClusterNodes(line(fresh, 7001, 'master'))] } },
    );
    const plan = planCluster({ pods: withNew, shards: 3, existingShards: [0, 1, 2] });
    const forgets = plan.actions.filter((a) => a.kind === 'forget');
    expect(forgets.map((f) => f.id)).toContain(id('f'));
    // The old id of c-shard-0-1 (id('0')) is followed by nobody and not failed yet here: not forgotten.
    expect(forgets.map((f) => f.id)).not.toContain(id('a'));
    expect(plan.actions).toContainEqual({ kind: 'replicate', pod: 'c-shard-0-1', primaryId: id('a') });
  });

  it('waits (and says so) while a pod back empty does not know its primary yet', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']]);
    const fresh = id('9');
    pods[1] = pod(0, 1, fresh, [line(fresh, 7001, 'myself,master'), line(id('a'), 7000, 'handshake')]);
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.actions.filter((a) => a.kind === 'replicate')).toEqual([]);
    expect(plan.waiting).toBe('waiting for c-shard-0-1 to learn its primary c-shard-0-0 (gossip) to replicate it');
    expect(plan.shards[0]!.state).toBe('degraded');
  });

  it('reports a shard whose primary is down as primaryLost and makes no move or REPLICATE in it', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']]);
    delete pods[2]!.view; // c-shard-1-0 unreachable
    for (const p of pods)
      if (p.view) p.view.nodes = p.view.nodes.map((n) => (n.id === id('b') ? { ...n, flags: ['master', 'fail'] } : n));
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2] });
    expect(plan.shards[1]!.state).toBe('primaryLost');
    expect(plan.moves).toEqual([]);
    expect(plan.actions.filter((a) => a.kind === 'replicate')).toEqual([]);
  });

  it('reports a shard without replicas whose primary is down as primaryLost, holding its slots', () => {
    const lines = [
      line(id('a'), 7000, 'master', '-', ['0-5461']),
      line(id('b'), 7010, 'master', '-', ['5462-10922']),
      line(id('c'), 7020, 'master,fail', '-', ['10923-16383']),
    ];
    const mark = (self: string) =>
      lines.map((l) => (l.startsWith(self) ? l.replace(/ master /, ' myself,master ') : l));
    const pods = [pod(0, 0, id('a'), mark(id('a'))), pod(1, 0, id('b'), mark(id('b'))), pod(2, 0, undefined)];
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.shards[2]).toMatchObject({ state: 'primaryLost', slots: '10923-16383', slotCount: 5461 });
    expect(plan.moves).toEqual([]);
    expect(plan.actions).toEqual([]);
    // Back empty (a new id): the old id's slots are no shard's, and go to a shard with a primary.
    const fresh = id('9');
    const back = pod(2, 0, fresh, [line(fresh, 7020, 'myself,master'), ...lines]);
    const after = planCluster({ pods: [pods[0]!, pods[1]!, back], shards: 3, existingShards: [0, 1, 2] });
    expect(after.actions).toContainEqual(expect.objectContaining({ kind: 'forget', id: id('c') }));
  });

  it('reports a draining shard whose primary is down as primaryLost, not only draining', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383']]);
    delete pods[4]!.view; // c-shard-2-0 unreachable, shard 2 being drained (shards: 2)
    for (const p of pods)
      if (p.view) p.view.nodes = p.view.nodes.map((n) => (n.id === id('c') ? { ...n, flags: ['master', 'fail'] } : n));
    const plan = planCluster({ pods, shards: 2, existingShards: [0, 1, 2] });
    expect(plan.shards[2]!.state).toBe('primaryLost');
    expect(plan.moves).toEqual([]);
    expect(plan.actions.filter((a) => a.kind === 'removeShard')).toEqual([]);
  });

  it('removes a drained shard beyond spec.shards', () => {
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383'], []]);
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2, 3] });
    expect(plan.moves).toEqual([]);
    expect(plan.actions).toContainEqual({ kind: 'removeShard', shard: 3, ids: [id('d'), id('3')] });
    expect(plan.shards[3]!.state).toBe('draining');
  });
});

/** Slot → shard index, from the plan's status (`slots` of each shard). */
function ownersOf(plan: { shards: Array<{ index: number; slots: string }> }): number[] {
  const owner = new Array<number>(16384).fill(-1);
  for (const s of plan.shards)
    for (const r of s.slots.split(',').filter((x) => x !== '')) {
      const [a, b] = r.split('-').map(Number) as [number, number | undefined];
      for (let slot = a; slot <= (b ?? a); slot++) owner[slot] = s.index;
    }
  return owner;
}

const countsOf = (owner: number[], shards: number) =>
  Array.from({ length: shards }, (_, s) => owner.filter((o) => o === s).length);

describe('resharding: resuming and deciding it is done', () => {
  const even4 = ['0-4095', '4096-8191', '8192-12287', '12288-16383'];

  it('a plan made from a half-done move finishes it, then plans the rest as if it had landed: an even split', () => {
    // 3 → 4 under way: slot 100 (a slot the current plan would not pick) left half-moved from shard 0 to
    // shard 3 by an operator killed in the middle of its keys (MIGRATING on the source, IMPORTING on the target).
    const pods = formed([['0-5461', `[100->-${id('d')}]`], ['5462-10922'], ['10923-16383'], [`[100-<-${id('a')}]`]]);
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(plan.moves[0]).toEqual({ slot: 100, from: 0, to: 3 });
    expect(plan.settled).toBe(false);
    expect(plan.slotsOff).toBe(4096);
    expect(plan.moves).toHaveLength(4096);
    const owner = ownersOf(plan);
    for (const m of plan.moves) owner[m.slot] = m.to;
    expect(countsOf(owner, 4)).toEqual([4096, 4096, 4096, 4096]);
  });

  it('the target took the slot (its SETSLOT NODE sent) but the source still claims it MIGRATING: the target owns it, the move is finished', () => {
    // Shard 0 had 4097 slots, shard 1 4095: slot 4096 was moving from 0 to 1.
    const pods = formed([['0-4096', `[4096->-${id('b')}]`], ['4096-8191'], ['8192-12287'], ['12288-16383']]);
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    // Shard 1's claim on 4096 is its own word; the source's claim is the one left over.
    expect(plan.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
    expect(plan.moves).toEqual([{ slot: 4096, from: 0, to: 1 }]);
    expect(plan.slotsOff).toBe(1);
    expect(plan.settled).toBe(false);
  });

  it('the source learned by gossip that the target owns the slot, still MIGRATING: finished (SETSLOT NODE clears it)', () => {
    const pods = formed([['0-4095', `[4096->-${id('b')}]`], ['4096-8191'], ['8192-12287'], ['12288-16383']]);
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(plan.moves).toEqual([{ slot: 4096, from: 0, to: 1 }]);
    expect(plan.slotsOff).toBe(1);
    expect(plan.settled).toBe(false);
  });

  it('the counts CI once reported as settled ([4096, 4096, 4747, 3445]) are not: 651 slots still go to shard 3', () => {
    const pods = formed([['0-4095'], ['4096-8191'], ['8192-12938'], ['12939-16383']]);
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(plan.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4747, 3445]);
    expect(plan.settled).toBe(false);
    expect(plan.slotsOff).toBe(651);
    expect(plan.moves.every((m) => m.from === 2 && m.to === 3)).toBe(true);
    expect(plan.moves).toHaveLength(651);
  });

  it('settled only with even counts, no slot MIGRATING/IMPORTING and no shard left beyond spec.shards', () => {
    expect(
      planCluster({
        pods: formed([even4[0]!, even4[1]!, even4[2]!, even4[3]!].map((r) => [r])),
        shards: 4,
        existingShards: [0, 1, 2, 3],
      }).settled,
    ).toBe(true);
    // An IMPORTING left alone on a target (killed right after the first step): not settled, resumed.
    const importing = formed([[even4[0]!], [even4[1]!, `[5-<-${id('a')}]`], [even4[2]!], [even4[3]!]]);
    const p1 = planCluster({ pods: importing, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(p1.settled).toBe(false);
    expect(p1.moves[0]).toEqual({ slot: 5, from: 0, to: 1 });
    // Drained but its StatefulSet not removed yet.
    const drained = formed([['0-5461'], ['5462-10922'], ['10923-16383'], []]);
    const p2 = planCluster({ pods: drained, shards: 3, existingShards: [0, 1, 2, 3] });
    expect(p2.slotsOff).toBe(0);
    expect(p2.settled).toBe(false);
    // Uneven and nothing can move now (shard 3 has no pod yet): not settled, and the status says how far off.
    const p3 = planCluster({
      pods: formed([['0-5461'], ['5462-10922'], ['10923-16383']]),
      shards: 4,
      existingShards: [0, 1, 2],
    });
    expect(p3.moves).toEqual([]);
    expect(p3.slotsOff).toBe(4096);
    expect(p3.settled).toBe(false);
    expect(reshardingStatus(undefined, p3, 4, 'now')).toEqual({
      toShards: 4,
      slotsToMove: 4096,
      slotsRemaining: 4096,
      keysMoved: 0,
      startedAt: 'now',
    });
  });

  it('does not remove a drained shard while a move into it is left in flight', () => {
    // 4 → 3 decided while a slot was half-moved into shard 3.
    const pods = formed([['0-5461', `[7->-${id('d')}]`], ['5462-10922'], ['10923-16383'], [`[7-<-${id('a')}]`]]);
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2, 3] });
    expect(plan.actions.filter((a) => a.kind === 'removeShard')).toEqual([]);
    expect(plan.moves[0]).toEqual({ slot: 7, from: 0, to: 3 });
    const owner = ownersOf(plan);
    for (const m of plan.moves) owner[m.slot] = m.to;
    expect(countsOf(owner, 4)).toEqual([5462, 5461, 5461, 0]);
  });

  it('moves no slot to a new shard whose primary does not know the slot map yet (gossip), then moves them all', () => {
    // 3 → 4 right after the MEET: shard 3's node knows the others but not yet which slots they own.
    const pods = formed([['0-5461'], ['5462-10922'], ['10923-16383'], []]);
    const blind = (p: ClusterPod): ClusterPod => ({
      ...p,
      view: { ...p.view!, nodes: p.view!.nodes.map((n) => (n.flags.includes('myself') ? n : { ...n, slots: [] })) },
    });
    pods[6] = blind(pods[6]!);
    const early = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(early.moves).toEqual([]);
    expect(early.slotsOff).toBe(4096);
    expect(early.waiting).toMatch(/shard\(s\) 3 to learn the slot map/);
    expect(early.settled).toBe(false);
    // It knows the map but its own cluster_state is not ok yet (MIGRATE into it: CLUSTERDOWN The cluster is down).
    const joining = formed([['0-5461'], ['5462-10922'], ['10923-16383'], []]);
    joining[6] = { ...joining[6]!, view: { ...joining[6]!.view!, state: 'fail' } };
    const notYet = planCluster({ pods: joining, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(notYet.moves).toEqual([]);
    expect(notYet.waiting).toMatch(/shard\(s\) 3 .*cluster_state ok/);
    const later = planCluster({
      pods: formed([['0-5461'], ['5462-10922'], ['10923-16383'], []]),
      shards: 4,
      existingShards: [0, 1, 2, 3],
    });
    expect(later.moves).toHaveLength(4096);
    expect(later.waiting).toBeUndefined();
  });

  it('clears an IMPORTING its node sees no owner for (sent before it learned the slot map), then moves again', () => {
    // CI's stall: shard 3 was sent IMPORTING for slot 5421 before gossip told it shard 0 owns it; Redis never
    // binds an IMPORTING slot from gossip, and MIGRATE into it failed with CLUSTERDOWN on every retry.
    const pods = formed([['0-5461', `[5421->-${id('d')}]`], ['5462-10922'], ['10923-16383'], [`[5421-<-${id('a')}]`]]);
    const unbound = pods[6]!.view!.nodes.map((n) =>
      n.id === id('a') ? { ...n, slots: [[0, 5420] as [number, number], [5422, 5461] as [number, number]] } : n,
    );
    pods[6] = { ...pods[6]!, view: { ...pods[6]!.view!, nodes: unbound } };
    const plan = planCluster({ pods, shards: 4, existingShards: [0, 1, 2, 3] });
    expect(plan.actions).toContainEqual({ kind: 'stableSlot', pod: 'c-shard-3-0', slot: 5421 });
    expect(plan.moves.some((m) => m.slot === 5421)).toBe(false);
    expect(plan.settled).toBe(false);
    // Once it knows the owner, the move left in flight is finished first, as any other.
    const known = planCluster({
      pods: formed([['0-5461', `[5421->-${id('d')}]`], ['5462-10922'], ['10923-16383'], [`[5421-<-${id('a')}]`]]),
      shards: 4,
      existingShards: [0, 1, 2, 3],
    });
    expect(known.actions).toEqual([]);
    expect(known.moves[0]).toEqual({ slot: 5421, from: 0, to: 3 });
  });

  it('clears a slot MIGRATING towards a node no pod has (SETSLOT STABLE), only while every pod answers', () => {
    const gone = id('e');
    const pods = formed([['0-5461', `[9->-${gone}]`], ['5462-10922'], ['10923-16383']]);
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(plan.actions).toContainEqual({ kind: 'stableSlot', pod: 'c-shard-0-0', slot: 9 });
    expect(plan.settled).toBe(false);
    delete pods[5]!.view; // c-shard-2-1 does not answer: the id may be its own
    const later = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    expect(later.actions.filter((a) => a.kind === 'stableSlot')).toEqual([]);
  });
});

describe('reshardingStatus', () => {
  const prev = { toShards: 4, slotsToMove: 4096, slotsRemaining: 700, keysMoved: 300, startedAt: 't0' };

  it('ends only when the plan made from Redis is settled, never because the last batch moved', () => {
    // The reconcile that moves the last 651 slots planned them from Redis: the status keeps the resharding;
    // the next reconcile, finding the slots settled, ends it.
    expect(reshardingStatus(prev, { settled: false, slotsOff: 651 }, 4, 't1')).toEqual({
      ...prev,
      slotsRemaining: 651,
    });
    expect(reshardingStatus(prev, { settled: false, slotsOff: 0 }, 4, 't1')).toEqual({ ...prev, slotsRemaining: 0 });
    expect(reshardingStatus(prev, { settled: true, slotsOff: 0 }, 4, 't1')).toBeUndefined();
  });

  it('keeps the last status while owners cannot be told; a new target starts a new count', () => {
    expect(reshardingStatus(prev, { settled: false, slotsOff: undefined }, 4, 't1')).toBe(prev);
    expect(reshardingStatus(undefined, { settled: false, slotsOff: undefined }, 4, 't1')).toBeUndefined();
    expect(reshardingStatus(prev, { settled: false, slotsOff: 4000 }, 3, 't1')).toEqual({
      toShards: 3,
      slotsToMove: 4000,
      slotsRemaining: 4000,
      keysMoved: 0,
      startedAt: 't1',
    });
  });
});
