import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from './errors.js';
import { MAX_KEY_BYTES, validateKey } from './key.js';

describe('validateKey', () => {
  it('accepts 1..1024 bytes of UTF-8 and returns the byte length', () => {
    expect(validateKey('a')).toBe(1);
    expect(validateKey('é')).toBe(2);
    expect(validateKey('x'.repeat(MAX_KEY_BYTES))).toBe(1024);
    expect(validateKey('€'.repeat(341))).toBe(1023);
  });

  it.each([
    ['empty', ''],
    ['1025 bytes', 'x'.repeat(1025)],
    ['1026 bytes of 3-byte characters', '€'.repeat(342)],
    ['a lone surrogate', 'a\uD800b'],
  ])('rejects %s', (_n, key) => {
    expect(() => validateKey(key)).toThrow(InvalidKeyError);
  });
});
