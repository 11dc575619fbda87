import { describe, expect, it } from 'vitest';
import { formatSlotRanges, parseClusterInfo, parseClusterNodes, slotCount, toRanges } from './cluster-nodes.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('parseClusterNodes', () => {
  it('reads ids, addresses, flags, masters, slots and migrations as Redis 7 prints them', () => {
    const nodes = parseClusterNodes(
      [
        `${A} 10.0.0.1:6379@16379,c-shard-0-0 myself,master - 0 1700000000000 1 connected 0-5460 7000 [5460->-${B}]`,
        `${B} 10.0.0.2:6379@16379 slave,fail ${A} 0 1700000000000 1 disconnected`,
        `${'c'.repeat(40)} :0@0 master,noaddr - 0 0 0 disconnected [42-<-${A}]`,
        'not a node line',
      ].join('\n'),
    );
    expect(nodes).toHaveLength(3);
    expect(nodes[0]).toEqual({
      id: A,
      host: '10.0.0.1',
      port: 6379,
      flags: ['myself', 'master'],
      linkState: 'connected',
      slots: [
        [0, 5460],
        [7000, 7000],
      ],
      migrating: [{ slot: 5460, to: B }],
      importing: [],
    });
    expect(nodes[1]).toMatchObject({ masterId: A, flags: ['slave', 'fail'], slots: [], linkState: 'disconnected' });
    expect(nodes[2]).toMatchObject({ host: '', port: 0, importing: [{ slot: 42, from: A }] });
  });

  it('reads CLUSTER INFO fields and formats slot ranges', () => {
    expect(parseClusterInfo('cluster_state:ok\r\ncluster_slots_assigned:16384\r\n')).toEqual({
      cluster_state: 'ok',
      cluster_slots_assigned: '16384',
    });
    expect(toRanges([5, 1, 2, 3, 9])).toEqual([
      [1, 3],
      [5, 5],
      [9, 9],
    ]);
    expect(formatSlotRanges(toRanges([5, 1, 2, 3]))).toBe('1-3,5');
    expect(
      slotCount([
        [0, 5460],
        [7000, 7000],
      ]),
    ).toBe(5462);
  });
});
