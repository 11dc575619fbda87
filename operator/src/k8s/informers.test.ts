import { describe, expect, it } from 'vitest';
import { stripForCache } from './informers.js';

describe('stripForCache', () => {
  it('drops managedFields and the last-applied annotation, keeping everything reconcile reads', () => {
    const obj = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'a',
        namespace: 'n',
        labels: { app: 'a' },
        annotations: { keep: 'me', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', controller: true }],
        managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
      },
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    };
    const stripped = stripForCache(obj);
    expect(stripped).toBe(obj);
    expect(stripped).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'a',
        namespace: 'n',
        labels: { app: 'a' },
        annotations: { keep: 'me' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', controller: true }],
      },
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    });
  });

  it('removes an annotations map left empty, and leaves objects without metadata alone', () => {
    const obj = { metadata: { name: 'a', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } } };
    expect(stripForCache(obj)).toEqual({ metadata: { name: 'a' } });
    const status: { kind: string; metadata?: unknown } = { kind: 'Status' };
    expect(stripForCache(status)).toEqual({ kind: 'Status' });
  });
});
