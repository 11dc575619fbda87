import { describe, expect, it } from 'vitest';
import { encodeInvalidation, parseInvalidation } from './invalidation-message.js';
import { DEFAULT_INVALIDATION_CHANNEL, RECORD_KEY_PATTERN, RECORD_KEY_PREFIX } from './protocol.js';

describe('the names both programs agree on', () => {
  it('keeps the wire names of released versions', () => {
    // Changing one of these strands running sidecars or the flush CronJob: a protocol change, not a refactor.
    expect(DEFAULT_INVALIDATION_CHANNEL).toBe('ripplecache:invalidations');
    expect(RECORD_KEY_PREFIX).toBe('rc:');
    expect(RECORD_KEY_PATTERN).toBe('rc:*');
  });

  it('encodes the invalidate-all message exactly as version 1 has it on the wire', () => {
    const text = encodeInvalidation({ v: 1, sender: 'flush-cronjob', seq: 1, all: true });
    expect(text).toBe('{"v":1,"sender":"flush-cronjob","seq":1,"all":true}');
    expect(parseInvalidation(text)).toEqual({ v: 1, sender: 'flush-cronjob', seq: 1, all: true });
  });

  it('reads the optional origin of relayed messages, and version-1 messages without it as before', () => {
    const relayed = '{"v":1,"sender":"bridge/a","seq":3,"keys":["k"],"origin":"shop/a"}';
    expect(parseInvalidation(relayed)).toEqual({ v: 1, sender: 'bridge/a', seq: 3, keys: ['k'], origin: 'shop/a' });
    const plain = parseInvalidation('{"v":1,"sender":"s","seq":1,"keys":["k"]}');
    expect(plain).toEqual({ v: 1, sender: 's', seq: 1, keys: ['k'] });
    expect('origin' in plain).toBe(false);
    expect(() => parseInvalidation('{"v":1,"sender":"s","seq":1,"all":true,"origin":""}')).toThrow(/origin/);
    expect(() => parseInvalidation('{"v":1,"sender":"s","seq":1,"all":true,"origin":7}')).toThrow(/origin/);
    // The sender prefix a sidecar recognises its own messages by is unchanged by the extra field.
    expect(encodeInvalidation({ v: 1, sender: 's', seq: 2, all: true, origin: 'ns/a' })).toBe(
      '{"v":1,"sender":"s","seq":2,"all":true,"origin":"ns/a"}',
    );
  });

  it('reads the route of relayed messages (visited, vers) and refuses a malformed one', () => {
    const text = encodeInvalidation({
      v: 1,
      sender: 'bridge/a',
      seq: 1,
      keys: ['k', 'l'],
      vers: [1_700_000_000_000_001, 0],
      origin: 'ns/a',
      visited: ['ns/a', 'ns/b'],
    });
    expect(parseInvalidation(text)).toEqual({
      v: 1,
      sender: 'bridge/a',
      seq: 1,
      keys: ['k', 'l'],
      vers: [1_700_000_000_000_001, 0],
      origin: 'ns/a',
      visited: ['ns/a', 'ns/b'],
    });
    const all = parseInvalidation('{"v":1,"sender":"b","seq":1,"all":true,"origin":"ns/a","visited":["ns/a"]}');
    expect(all).toEqual({ v: 1, sender: 'b', seq: 1, all: true, origin: 'ns/a', visited: ['ns/a'] });
    const bad = (extra: string) => () => parseInvalidation(`{"v":1,"sender":"b","seq":1,"keys":["k"],${extra}}`);
    expect(bad('"vers":[1,2]')).toThrow(/vers/);
    expect(bad('"vers":[-1]')).toThrow(/vers/);
    expect(bad('"vers":["1"]')).toThrow(/vers/);
    expect(bad('"visited":"ns/a"')).toThrow(/visited/);
    expect(bad('"visited":[""]')).toThrow(/visited/);
    expect(bad(`"visited":${JSON.stringify(Array.from({ length: 65 }, (_, i) => `c${i}`))}`)).toThrow(/visited/);
  });
});
