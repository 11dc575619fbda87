import { describe, expect, it } from 'vitest';
import {
  encodeInvalidation,
  MalformedMessageError,
  parseInvalidation,
} from '../../../common/src/invalidation-message.js';
import { InvalidationPublisher } from './invalidation-publisher.js';
import { InvalidationReceiver, type DropReason, type LocalInvalidation } from './invalidation-receiver.js';
import { SequenceTracker } from './sequence-tracker.js';

describe('invalidation message', () => {
  it('round-trips keys and all', () => {
    const a = { v: 1, sender: 's', seq: 3, keys: ['a', 'b'] } as const;
    expect(parseInvalidation(encodeInvalidation({ ...a, keys: [...a.keys] }))).toEqual(a);
    expect(parseInvalidation('{"v":1,"sender":"flush-cronjob","seq":1,"all":true}')).toEqual({
      v: 1,
      sender: 'flush-cronjob',
      seq: 1,
      all: true,
    });
  });

  it.each([
    ['not json', '{'],
    ['array', '[]'],
    ['wrong version', '{"v":2,"sender":"s","seq":1,"all":true}'],
    ['no sender', '{"v":1,"seq":1,"all":true}'],
    ['seq 0', '{"v":1,"sender":"s","seq":0,"all":true}'],
    ['seq float', '{"v":1,"sender":"s","seq":1.5,"all":true}'],
    ['both keys and all', '{"v":1,"sender":"s","seq":1,"all":true,"keys":[]}'],
    ['neither', '{"v":1,"sender":"s","seq":1}'],
    ['all false', '{"v":1,"sender":"s","seq":1,"all":false}'],
    ['keys not strings', '{"v":1,"sender":"s","seq":1,"keys":[1]}'],
  ])('rejects %s', (_name, raw) => {
    expect(() => parseInvalidation(raw)).toThrow(MalformedMessageError);
  });

  it('publisher numbers its messages from 1', () => {
    const p = new InvalidationPublisher('me');
    expect(JSON.parse(p.keys(['a']))).toEqual({ v: 1, sender: 'me', seq: 1, keys: ['a'] });
    expect(JSON.parse(p.all())).toEqual({ v: 1, sender: 'me', seq: 2, all: true });
    expect(p.lastSeq).toBe(2);
  });
});

describe('SequenceTracker', () => {
  it('classifies first, next, restart, gap and regression', () => {
    const t = new SequenceTracker();
    expect(t.observe('a', 5).verdict).toBe('first');
    expect(t.observe('a', 6).verdict).toBe('next');
    expect(t.observe('a', 9)).toEqual({ verdict: 'gap', missed: 2 });
    expect(t.observe('a', 1).verdict).toBe('restart');
    expect(t.observe('a', 2).verdict).toBe('next');
    expect(t.observe('a', 2).verdict).toBe('regression');
  });

  it('the flush CronJob (seq 1 every run, same sender) is never a gap', () => {
    const t = new SequenceTracker();
    expect(t.observe('flush-cronjob', 1).verdict).toBe('first');
    expect(t.observe('flush-cronjob', 1).verdict).toBe('restart');
    expect(t.observe('flush-cronjob', 1).verdict).toBe('restart');
  });

  it('forgets the least recently heard sender beyond its bound', () => {
    const t = new SequenceTracker(2);
    t.observe('a', 1);
    t.observe('b', 1);
    t.observe('a', 2);
    t.observe('c', 1); // forgets b
    expect(t.senders).toBe(2);
    expect(t.observe('b', 7).verdict).toBe('first');
  });

  it('reset forgets everything', () => {
    const t = new SequenceTracker();
    t.observe('a', 1);
    t.reset();
    expect(t.observe('a', 10).verdict).toBe('first');
  });
});

class Target implements LocalInvalidation {
  log: string[] = [];
  invalidateKeys(keys: readonly string[]) {
    this.log.push(`keys:${keys.join(',')}`);
  }
  dropAll(reason: DropReason) {
    this.log.push(`drop:${reason}`);
  }
  subscriptionLost() {
    this.log.push('lost');
  }
  subscribed() {
    this.log.push('subscribed');
  }
}

function receiver() {
  const target = new Target();
  const counts = { received: 0, gaps: 0, malformed: 0 };
  const r = new InvalidationReceiver('me', target, {
    received: () => counts.received++,
    gap: () => counts.gaps++,
    malformed: () => counts.malformed++,
  });
  const msg = (sender: string, seq: number, keys?: string[]) =>
    JSON.stringify(keys ? { v: 1, sender, seq, keys } : { v: 1, sender, seq, all: true });
  return { r, target, counts, msg };
}

describe('InvalidationReceiver', () => {
  it('applies keys and all from other senders', () => {
    const { r, target, counts, msg } = receiver();
    r.handle(msg('other', 1, ['a', 'b']));
    r.handle(msg('other', 2));
    expect(target.log).toEqual(['keys:a,b', 'drop:invalidate-all']);
    expect(counts.received).toBe(2);
  });

  it('ignores its own messages but tracks their sequence', () => {
    const { r, target, counts, msg } = receiver();
    r.handle(msg('me', 1, ['a']));
    r.handle(msg('me', 2, ['a']));
    expect(target.log).toEqual([]);
    r.handle(msg('me', 4, ['a']));
    expect(target.log).toEqual(['drop:sequence-gap']);
    expect(counts.gaps).toBe(1);
    expect(counts.received).toBe(0);
    // Its own message with the fields in another order takes the full parse, with the same outcome.
    r.handle(JSON.stringify({ seq: 5, keys: ['a'], sender: 'me', v: 1 }));
    r.handle(JSON.stringify({ v: 1, sender: 'me', keys: ['a'], seq: 7 }));
    expect(target.log).toEqual(['drop:sequence-gap', 'drop:sequence-gap']);
    // A sender whose id starts with this one's is another sender.
    r.handle(msg('me2', 1, ['b']));
    expect(target.log.at(-1)).toBe('keys:b');
    expect(counts.received).toBe(1);
  });

  it('drops L1 on a gap from another sender', () => {
    const { r, target, counts, msg } = receiver();
    r.handle(msg('other', 1, ['a']));
    r.handle(msg('other', 3, ['b']));
    expect(target.log).toEqual(['keys:a', 'drop:sequence-gap']);
    expect(counts.gaps).toBe(1);
  });

  it('a restart to seq 1 and a first message from an unknown sender are not gaps', () => {
    const { r, target, msg } = receiver();
    r.handle(msg('other', 41, ['a']));
    r.handle(msg('other', 1, ['b']));
    r.handle(msg('flush-cronjob', 1));
    r.handle(msg('flush-cronjob', 1));
    expect(target.log).toEqual(['keys:a', 'keys:b', 'drop:invalidate-all', 'drop:invalidate-all']);
  });

  it('counts a malformed message and drops L1', () => {
    const { r, target, counts } = receiver();
    r.handle('garbage');
    expect(counts.malformed).toBe(1);
    expect(target.log).toEqual(['drop:malformed-message']);
  });

  it('forgets sequences when the subscription is lost', () => {
    const { r, target, counts, msg } = receiver();
    r.handle(msg('other', 1, ['a']));
    r.subscriptionLost();
    r.subscribed();
    r.handle(msg('other', 7, ['a'])); // messages 2..6 went by while we were away: L1 was dropped already
    expect(counts.gaps).toBe(0);
    expect(target.log).toEqual(['keys:a', 'lost', 'subscribed', 'keys:a']);
  });
});

describe('per-bucket sequences (Redis Cluster, issue 15)', () => {
  /** Bucket of a key for these tests: the number before the slash. */
  const bucketOf = (key: string) => Number(key.split('/')[0]);

  it('the publisher numbers one-bucket messages per bucket and the others in its own sequence', () => {
    const p = new InvalidationPublisher('me', bucketOf);
    expect(JSON.parse(p.keys(['3/a']))).toEqual({ v: 1, sender: 'me', seq: 1, b: 3, keys: ['3/a'] });
    expect(JSON.parse(p.keys(['3/b', '3/c']))).toMatchObject({ seq: 2, b: 3 });
    expect(JSON.parse(p.keys(['7/a']))).toMatchObject({ seq: 1, b: 7 });
    expect(JSON.parse(p.keys(['3/a', '7/a']))).toEqual({ v: 1, sender: 'me', seq: 1, keys: ['3/a', '7/a'] });
    expect(JSON.parse(p.all())).toEqual({ v: 1, sender: 'me', seq: 2, all: true });
    expect(JSON.parse(p.keys(['3/z']))).toMatchObject({ seq: 3, b: 3 });
    // `b` goes right after `seq` (the receiver's fast path for its own messages reads it there).
    expect(p.keys(['9/x'])).toBe('{"v":1,"sender":"me","seq":1,"b":9,"keys":["9/x"]}');
  });

  it('the message format carries b and refuses a bad one', () => {
    expect(parseInvalidation('{"v":1,"sender":"s","seq":2,"b":255,"keys":["k"]}')).toEqual({
      v: 1,
      sender: 's',
      seq: 2,
      b: 255,
      keys: ['k'],
    });
    for (const b of ['-1', '1.5', '"3"', '70000'])
      expect(() => parseInvalidation(`{"v":1,"sender":"s","seq":2,"b":${b},"keys":["k"]}`)).toThrow(
        MalformedMessageError,
      );
  });

  it('the tracker keeps one sequence per (sender, bucket): buckets interleaving is not a gap', () => {
    const t = new SequenceTracker();
    expect(t.observe('a', 1, 3).verdict).toBe('first');
    expect(t.observe('a', 1, 7).verdict).toBe('first');
    expect(t.observe('a', 2, 7).verdict).toBe('next');
    expect(t.observe('a', 2, 3).verdict).toBe('next');
    expect(t.observe('a', 1).verdict).toBe('first'); // the sender's own (no bucket) sequence
    expect(t.observe('a', 3, 7).verdict).toBe('next');
    expect(t.observe('a', 5, 3)).toEqual({ verdict: 'gap', missed: 2 });
    expect(t.observe('a', 2, 7).verdict).toBe('regression');
    expect(t.senders).toBe(1); // one sender, however many buckets
  });

  it('messages of different buckets arriving out of order drop nothing; a real gap in one bucket drops L1', () => {
    const { r, target, counts } = receiver();
    const p = new InvalidationPublisher('other', bucketOf);
    const sent = [p.keys(['1/a']), p.keys(['2/a']), p.keys(['1/b']), p.keys(['2/b']), p.keys(['1/c'])];
    // Bucket 2's messages overtake bucket 1's (another shard's link was faster); each bucket stays in order.
    for (const i of [1, 3, 0, 2, 4]) r.handle(sent[i] as string);
    expect(counts.gaps).toBe(0);
    expect(target.log).toEqual(['keys:2/a', 'keys:2/b', 'keys:1/a', 'keys:1/b', 'keys:1/c']);
    p.keys(['2/lost']); // never delivered
    r.handle(p.keys(['2/c']));
    expect(counts.gaps).toBe(1);
    expect(target.log.at(-1)).toBe('drop:sequence-gap');
  });

  it('its own messages with a bucket take the fast path, per bucket too', () => {
    const { r, target, counts } = receiver();
    const p = new InvalidationPublisher('me', bucketOf);
    const a1 = p.keys(['1/a']);
    const b1 = p.keys(['2/a']);
    const a2 = p.keys(['1/b']);
    for (const m of [b1, a1, a2]) r.handle(m);
    expect(counts.gaps).toBe(0);
    p.keys(['1/lost']);
    r.handle(p.keys(['1/c']));
    expect(counts.gaps).toBe(1);
    expect(target.log).toEqual(['drop:sequence-gap']);
  });
});
