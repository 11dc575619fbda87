import { describe, expect, it } from 'vitest';
import { isSubset } from './subset.js';

describe('isSubset', () => {
  it('accepts extra fields filled in by the API server', () => {
    expect(
      isSubset(
        { spec: { ports: [{ port: 6379 }] } },
        { spec: { ports: [{ port: 6379, protocol: 'TCP' }], clusterIP: '10.0.0.1' } },
      ),
    ).toBe(true);
  });
  it('rejects a changed value, a missing field and a different array length', () => {
    expect(isSubset({ data: { a: '1' } }, { data: { a: '2' } })).toBe(false);
    expect(isSubset({ data: { a: '1' } }, { data: {} })).toBe(false);
    expect(isSubset({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
  });
  it('ignores undefined desired fields and treats 1 and "1" alike', () => {
    expect(isSubset({ a: undefined, b: 1 }, { b: '1' })).toBe(true);
  });
});
