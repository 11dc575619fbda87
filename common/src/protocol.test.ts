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
});
