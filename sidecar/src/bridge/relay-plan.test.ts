import { describe, expect, it } from 'vitest';
import { parseInvalidation } from '../../../common/src/invalidation-message.js';
import { LocalMessageClassifier, PendingKeys, RelayedMessages } from './relay-plan.js';

describe('LocalMessageClassifier', () => {
  it('relays local messages and never messages another bridge relayed here', () => {
    const c = new LocalMessageClassifier();
    expect(c.classify('{"v":1,"sender":"s","seq":1,"keys":["a","b"]}')).toEqual({
      kind: 'keys',
      keys: ['a', 'b'],
      gap: false,
    });
    expect(c.classify('{"v":1,"sender":"flush-cronjob","seq":1,"all":true}')).toEqual({ kind: 'all', gap: false });
    expect(c.classify('{"v":1,"sender":"bridge/x","seq":1,"keys":["a"],"origin":"ns/x"}')).toEqual({
      kind: 'relayed',
      origin: 'ns/x',
    });
    expect(c.classify('nope')).toMatchObject({ kind: 'malformed' });
  });

  it('reports a gap in a local sender, not in relayed senders', () => {
    const c = new LocalMessageClassifier();
    c.classify('{"v":1,"sender":"s","seq":1,"keys":["a"]}');
    expect(c.classify('{"v":1,"sender":"s","seq":2,"keys":["a"]}')).toMatchObject({ gap: false });
    expect(c.classify('{"v":1,"sender":"s","seq":5,"keys":["a"]}')).toMatchObject({ gap: true });
    c.classify('{"v":1,"sender":"b","seq":1,"keys":["a"],"origin":"o"}');
    expect(c.classify('{"v":1,"sender":"b","seq":9,"keys":["a"],"origin":"o"}')).toEqual({
      kind: 'relayed',
      origin: 'o',
    });
    c.reset();
    expect(c.classify('{"v":1,"sender":"s","seq":9,"keys":["a"]}')).toMatchObject({ gap: false });
  });
});

describe('RelayedMessages', () => {
  it('numbers its messages from 1 and carries the origin', () => {
    const m = new RelayedMessages('bridge/a', 'ns/a');
    expect(parseInvalidation(m.keys(['k']))).toEqual({ v: 1, sender: 'bridge/a', seq: 1, keys: ['k'], origin: 'ns/a' });
    expect(parseInvalidation(m.all())).toEqual({ v: 1, sender: 'bridge/a', seq: 2, all: true, origin: 'ns/a' });
  });
});

describe('PendingKeys', () => {
  it('keeps the highest version per key, in arrival order, and the oldest arrival of a batch', () => {
    const p = new PendingKeys(10);
    p.add('a', 5, 100);
    p.add('b', 7, 110);
    p.add('a', 3, 120);
    p.add('a', 9, 130);
    expect(p.take(1)).toEqual({ keys: ['a'], versions: [9], oldestReceivedMs: 100 });
    p.add('c', 1, 140);
    expect(p.take(10)).toEqual({ keys: ['b', 'c'], versions: [7, 1], oldestReceivedMs: 110 });
    expect(p.take(10)).toBeUndefined();
  });

  it('gives up past its bound, until cleared', () => {
    const p = new PendingKeys(2);
    p.add('a', 1, 0);
    p.add('b', 1, 0);
    p.add('a', 2, 0);
    expect(p.overflowed).toBe(false);
    p.add('c', 1, 0);
    expect(p.overflowed).toBe(true);
    expect(p.size).toBe(0);
    p.add('d', 1, 0);
    expect(p.size).toBe(0);
    p.clear();
    p.add('d', 1, 0);
    expect(p.take(5)?.keys).toEqual(['d']);
  });
});
