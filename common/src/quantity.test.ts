import { describe, expect, it } from 'vitest';
import { QuantityError, parseQuantity, sameQuantity } from './quantity.js';

describe('parseQuantity', () => {
  it.each([
    ['64Mi', 64 * 2 ** 20],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['512Ki', 512 * 1024],
    ['1k', 1000],
    ['1G', 1e9],
    ['1e3', 1000],
    ['.5Ki', 512],
    ['256m', 1], // a quarter of a unit, rounded up as Quantity.Value() does
    ['1048576', 1048576],
    [' 2Mi ', 2 * 2 ** 20],
    [2048, 2048],
  ])('%j is %d', (q, value) => {
    expect(parseQuantity(q)).toBe(value);
  });

  it.each(['512K', '64MB', '1gb', 'Mi', '', '1.2.3', '-1', '1 Mi', '16Ei', '1e31'])('rejects %j', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
  });

  it('rejects negative, infinite and unsafe numbers', () => {
    expect(() => parseQuantity(-1)).toThrow(QuantityError);
    expect(() => parseQuantity(Infinity)).toThrow(QuantityError);
    expect(() => parseQuantity(2 ** 60)).toThrow(/too large/);
  });
});

describe('QuantityError', () => {
  it('says what was wrong', () => {
    const problem = (q: string | number) => {
      try {
        parseQuantity(q);
      } catch (err) {
        return (err as QuantityError).problem;
      }
      return undefined;
    };
    expect(problem('64MB')).toBe('malformed');
    expect(problem(NaN)).toBe('malformed');
    expect(problem('-1Ki')).toBe('negative');
    expect(problem(-1)).toBe('negative');
    expect(problem('16Ei')).toBe('out-of-range');
    expect(problem('1e31')).toBe('out-of-range');
    expect(problem('1Ki')).toBeUndefined();
  });
});

describe('sameQuantity', () => {
  it('compares amounts exactly, whatever the notation', () => {
    expect(sameQuantity('1Gi', '1073741824')).toBe(true);
    expect(sameQuantity('0.5', '500m')).toBe(true);
    expect(sameQuantity('1e3', '1k')).toBe(true);
    expect(sameQuantity(2, '2000m')).toBe(true);
    expect(sameQuantity('500m', '1')).toBe(false);
    expect(sameQuantity('1Gi', '1G')).toBe(false);
    expect(sameQuantity('abc', 'abc')).toBe(false);
  });
});
