import { describe, expect, it } from 'vitest';
import { parseClusterNodes } from '../redis/cluster-nodes.js';
import { planCluster, type ClusterPod } from './cluster-plan.js';
import { desiredClusterRoles, planClusterRoles, type ClusterRolePod } from './cluster-roles.js';

const name = (shard: number, ordinal: number) => `c-shard-${shard}-${ordinal}`;

/** Pods of `shards` shards × 2, each with the given label (default none). */
function rolePods(shards: number, labels: Record<string, string> = {}): ClusterRolePod[] {
  return Array.from({ length: shards }, (_, s) =>
    [0, 1].map((o) => ({ pod: name(s, o), shard: s, exists: true, roleLabel: labels[name(s, o)] })),
  ).flat();
}

/** Shards whose primary is pod 0 and replica pod 1. */
const steady = (shards: number): Array<{ index: number; primary?: string; replicas: string[] }> =>
  Array.from({ length: shards }, (_, index) => ({ index, primary: name(index, 0), replicas: [name(index, 1)] }));

/** Applies a plan's changes, in order, to the labels (checking after each that no shard has two primaries). */
function apply(pods: ClusterRolePod[], plan: ReturnType<typeof planClusterRoles>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const p of pods) if (p.roleLabel !== undefined) labels[p.pod] = p.roleLabel;
  for (const c of [...plan.demote, ...plan.promote, ...plan.rest]) {
    if (c.role === null) delete labels[c.pod];
    else labels[c.pod] = c.role;
    for (const s of new Set(pods.map((p) => p.shard))) {
      const primaries = pods.filter((p) => p.shard === s && labels[p.pod] === 'primary');
      expect(primaries.length, `shard ${s} after ${JSON.stringify(c)}`).toBeLessThanOrEqual(1);
    }
  }
  return labels;
}

describe('desiredClusterRoles', () => {
  it('primary on each shard primary, replica on the pods following it, nothing for a shard without primary', () => {
    const roles = desiredClusterRoles([
      { index: 0, primary: name(0, 0), replicas: [name(0, 1)] },
      { index: 1, replicas: [] },
      { index: 2, primary: name(2, 1), replicas: [] },
    ]);
    expect(Object.fromEntries(roles)).toEqual({
      [name(0, 0)]: 'primary',
      [name(0, 1)]: 'replica',
      [name(2, 1)]: 'primary',
    });
  });
});

describe('planClusterRoles', () => {
  it("labels a fresh cluster: each shard's other pod set (replica) before its primary label", () => {
    const pods = rolePods(3);
    const plan = planClusterRoles(steady(3), pods);
    expect(plan.demote).toEqual([0, 1, 2].map((s) => ({ pod: name(s, 1), role: 'replica' })));
    expect(plan.promote).toEqual([0, 1, 2].map((s) => ({ pod: name(s, 0), role: 'primary' })));
    expect(plan.rest).toEqual([]);
  });

  it('a second pass over labels already right changes nothing', () => {
    const labels = apply(rolePods(3), planClusterRoles(steady(3), rolePods(3)));
    expect(planClusterRoles(steady(3), rolePods(3, labels))).toEqual({ demote: [], promote: [], rest: [] });
  });

  it('a shard failed over: the old primary loses its label before the new one gets it', () => {
    const before = apply(rolePods(3), planClusterRoles(steady(3), rolePods(3)));
    // Shard 1's primary (pod 0) died and is not reachable; Redis Cluster promoted pod 1.
    const shards = steady(3);
    shards[1] = { index: 1, primary: name(1, 1), replicas: [] };
    const pods = rolePods(3, before);
    const plan = planClusterRoles(shards, pods);
    expect(plan.demote).toEqual([{ pod: name(1, 0), role: null }]);
    expect(plan.promote).toEqual([{ pod: name(1, 1), role: 'primary' }]);
    expect(plan.rest).toEqual([]);
    const after = apply(pods, plan);
    expect(after[name(1, 0)]).toBeUndefined();
    expect(after[name(1, 1)]).toBe('primary');
    // The old pod back as a replica of the new primary.
    shards[1] = { index: 1, primary: name(1, 1), replicas: [name(1, 0)] };
    expect(planClusterRoles(shards, rolePods(3, after))).toEqual({
      demote: [],
      promote: [],
      rest: [{ pod: name(1, 0), role: 'replica' }],
    });
  });

  it('while a shard has no live primary its pods carry no role (not known), the other shards keep theirs', () => {
    const before = apply(rolePods(3), planClusterRoles(steady(3), rolePods(3)));
    const shards = steady(3);
    shards[2] = { index: 2, replicas: [] }; // primaryLost: the replica still follows the dead primary
    const plan = planClusterRoles(shards, rolePods(3, before));
    expect(plan.demote).toEqual([{ pod: name(2, 0), role: null }]);
    expect(plan.promote).toEqual([]);
    expect(plan.rest).toEqual([{ pod: name(2, 1), role: null }]);
  });

  it('when a primary label is added, every other pod of that shard is set first, whatever the cache shows', () => {
    // The informer cache lags: it shows no label on pod 0 although this operator labelled it primary earlier.
    const shards = steady(1);
    shards[0] = { index: 0, primary: name(0, 1), replicas: [name(0, 0)] };
    const plan = planClusterRoles(shards, rolePods(1));
    expect(plan.demote).toEqual([{ pod: name(0, 0), role: 'replica' }]);
    expect(plan.promote).toEqual([{ pod: name(0, 1), role: 'primary' }]);
    expect(plan.rest).toEqual([]);
  });

  it('a primary that became a replica is demoted to replica before the promotion (switchover both ways)', () => {
    const labels = { [name(0, 0)]: 'primary', [name(0, 1)]: 'replica' };
    const shards = [{ index: 0, primary: name(0, 1), replicas: [name(0, 0)] }];
    const pods = rolePods(1, labels);
    const plan = planClusterRoles(shards, pods);
    expect(plan.demote).toEqual([{ pod: name(0, 0), role: 'replica' }]);
    expect(plan.promote).toEqual([{ pod: name(0, 1), role: 'primary' }]);
    expect(apply(pods, plan)).toEqual({ [name(0, 0)]: 'replica', [name(0, 1)]: 'primary' });
  });

  it('skips pods without a Pod object, removes a label with an unknown value, never labels across shards', () => {
    const pods = rolePods(2, { [name(1, 1)]: 'leader' });
    pods[1] = { ...pods[1]!, exists: false };
    // A (corrupt) plan naming shard 0's pod as shard 1's primary is not followed.
    const shards = [
      { index: 0, primary: name(0, 0), replicas: [name(0, 1)] },
      { index: 1, primary: name(0, 1), replicas: [] },
    ];
    const plan = planClusterRoles(shards, pods);
    expect(plan.promote).toEqual([{ pod: name(0, 0), role: 'primary' }]);
    expect(plan.demote).toEqual([]);
    expect(plan.rest).toEqual([{ pod: name(1, 1), role: null }]);
  });

  it('from planCluster: a promoted replica is the primary, the unreachable old primary gets no label', () => {
    const id = (c: string) => c.repeat(40);
    const line = (nodeId: string, port: number, flags: string, master = '-', slots: string[] = []) =>
      `${nodeId} 127.0.0.1:${port}@${port + 10000} ${flags} ${master} 0 0 1 connected ${slots.join(' ')}`.trim();
    const owners = [['0-5461'], ['5462-10922'], ['10923-16383']];
    // Shard 1's primary (b) died: it is flagged fail and does not answer; its replica (1) owns the slots now.
    const table = owners.flatMap((slots, i) =>
      i === 1
        ? [line(id('b'), 7010, 'master,fail'), line(id('1'), 7011, 'master', '-', slots)]
        : [
            line(id(String.fromCharCode(97 + i)), 7000 + i * 10, 'master', '-', slots),
            line(id(String(i)), 7001 + i * 10, 'slave', id(String.fromCharCode(97 + i))),
          ],
    );
    const pods: ClusterPod[] = [0, 1, 2].flatMap((s) =>
      [0, 1].map((o) => {
        const myId = o === 0 ? id(String.fromCharCode(97 + s)) : id(String(s));
        const p: ClusterPod = { pod: name(s, o), shard: s, ordinal: o, endpoint: { host: '127.0.0.1', port: 7000 } };
        if (s === 1 && o === 0) return p; // not reachable
        const mine = table.map((l) => (l.startsWith(myId) ? l.replace(/ (master|slave)/, ' myself,$1') : l));
        return { ...p, view: { myId, nodes: parseClusterNodes(mine.join('\n')), state: 'ok' } };
      }),
    );
    const plan = planCluster({ pods, shards: 3, existingShards: [0, 1, 2] });
    const labelled = {
      [name(0, 0)]: 'primary',
      [name(0, 1)]: 'replica',
      [name(1, 0)]: 'primary',
      [name(1, 1)]: 'replica',
      [name(2, 0)]: 'primary',
      [name(2, 1)]: 'replica',
    };
    const roles = planClusterRoles(plan.shards, rolePods(3, labelled));
    expect(roles.demote).toEqual([{ pod: name(1, 0), role: null }]);
    expect(roles.promote).toEqual([{ pod: name(1, 1), role: 'primary' }]);
    expect(roles.rest).toEqual([]);
  });
});
