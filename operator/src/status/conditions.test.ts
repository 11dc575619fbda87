import { describe, expect, it } from 'vitest';
import type { Condition } from '../api/v1alpha1/types.js';
import { findCondition, formatTime, isTrue, setCondition } from './conditions.js';

const t0 = new Date('2026-01-02T03:04:05.678Z');
const t1 = new Date('2026-01-02T04:00:00.000Z');

describe('formatTime', () => {
  it('writes RFC 3339 with seconds precision, as metav1.Time', () => {
    expect(formatTime(t0)).toBe('2026-01-02T03:04:05Z');
  });
});

describe('setCondition', () => {
  it('appends a new condition with now as its transition time', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '0 of 1' },
      t0,
    );
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'False',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        reason: 'PodsNotReady',
        message: '0 of 1',
      },
    ]);
  });

  it('keeps the transition time when only reason or message change', () => {
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '0 of 3' }, t0);
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'RollingOut', message: '1 of 3', observedGeneration: 2 },
      t1,
    );
    expect(b[0]).toEqual({
      type: 'Ready',
      status: 'False',
      observedGeneration: 2,
      lastTransitionTime: '2026-01-02T03:04:05Z',
      reason: 'RollingOut',
      message: '1 of 3',
    });
  });

  it('sets a new transition time when the status changes', () => {
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'PodsNotReady', message: '' }, t0);
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'ClusterReady', message: '' }, t1);
    expect(b[0]?.lastTransitionTime).toBe('2026-01-02T04:00:00Z');
  });

  it('replaces in place, leaves other conditions alone, and does not mutate its input', () => {
    const list: Condition[] = [
      { type: 'Ready', status: 'True', lastTransitionTime: 'x', reason: 'A', message: '' },
      { type: 'Degraded', status: 'False', lastTransitionTime: 'y', reason: 'B', message: '' },
    ];
    const copy = structuredClone(list);
    const next = setCondition(list, { type: 'Ready', status: 'False', reason: 'C', message: 'm' }, t1);
    expect(list).toEqual(copy);
    expect(next.map((c) => c.type)).toEqual(['Ready', 'Degraded']);
    expect(next[1]).toBe(list[1]);
    expect(findCondition(next, 'Ready')?.reason).toBe('C');
    expect(isTrue(next, 'Ready')).toBe(false);
    expect(isTrue(list, 'Ready')).toBe(true);
  });
});
