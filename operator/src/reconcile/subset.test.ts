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

describe('isSubset: quantities as the API server stores them', () => {
  const container = (resources: unknown) => ({ spec: { template: { spec: { containers: [{ resources }] } } } });
  it('takes a canonicalised quantity as equal (1073741824 = 1Gi, 0.5 = 500m, 1e3 = 1k)', () => {
    expect(
      isSubset(
        container({ requests: { cpu: '0.5', memory: '1073741824' }, limits: { memory: '1e3' } }),
        container({ requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1k' } }),
      ),
    ).toBe(true);
    expect(
      isSubset(
        { spec: { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: '1024Mi' } } } }] } },
        { spec: { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: '1Gi' } } } }] } },
      ),
    ).toBe(true);
    expect(isSubset({ emptyDir: { sizeLimit: '0.5Gi' } }, { emptyDir: { sizeLimit: '512Mi' } })).toBe(true);
  });

  it('still sees a changed quantity, without rounding (500m is not 1)', () => {
    expect(isSubset(container({ requests: { cpu: '500m' } }), container({ requests: { cpu: '1' } }))).toBe(false);
    expect(isSubset(container({ limits: { memory: '1Gi' } }), container({ limits: { memory: '1G' } }))).toBe(false);
  });

  it('compares everything else as written (a ConfigMap value that looks like a quantity is text)', () => {
    expect(isSubset({ data: { a: '1k' } }, { data: { a: '1000' } })).toBe(false);
    expect(isSubset({ metadata: { labels: { size: '0.5' } } }, { metadata: { labels: { size: '500m' } } })).toBe(false);
  });
});
