import { describe, expect, it } from 'vitest';
import { InvalidTTLError } from './errors.js';
import { MAX_TTL_SECONDS, parseTTL } from './ttl.js';

describe('parseTTL', () => {
  it('reads plain decimal digits from 1 to 10 years', () => {
    expect(parseTTL('1')).toBe(1);
    expect(parseTTL('300')).toBe(300);
    expect(parseTTL(String(MAX_TTL_SECONDS))).toBe(315_360_000);
    // Leading zeros mean nothing (never octal).
    expect(parseTTL('010')).toBe(10);
    expect(parseTTL(`${'0'.repeat(40)}7`)).toBe(7);
  });

  it('no ttl at all is undefined (the default TTL applies)', () => {
    expect(parseTTL(undefined)).toBeUndefined();
  });

  it.each([
    ['1e309'],
    ['Infinity'],
    ['-Infinity'],
    ['NaN'],
    ['0x10'],
    ['0b1'],
    ['0o7'],
    ['1e3'],
    ['1E3'],
    ['+5'],
    ['-5'],
    [' 1'],
    ['1 '],
    ['\t1'],
    ['1\n'],
    ['1.5'],
    ['1.'],
    ['.5'],
    ['1_000'],
    ['1,000'],
    ['١٢'], // Arabic-Indic digits
    ['１'], // fullwidth digit one
    [''],
    ['0'],
    ['000'],
    ['-0'],
    [String(MAX_TTL_SECONDS + 1)],
    ['9'.repeat(400)],
  ])('refuses %j', (raw) => {
    expect(() => parseTTL(raw)).toThrow(InvalidTTLError);
  });

  it('refuses a repeated ttl (the query parser gives an array) and anything not a string', () => {
    for (const raw of [['1', '2'], ['5'], 5, null, {}, true]) expect(() => parseTTL(raw)).toThrow(InvalidTTLError);
  });
});
