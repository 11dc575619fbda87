/** metav1.Condition bookkeeping. Pure: the time is passed in. */
import type { Condition } from '../api/v1alpha1/types.js';

/** A condition to set; `lastTransitionTime` is decided by `setCondition`. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** RFC 3339 with seconds precision (`2026-01-02T03:04:05Z`), as the API server stores metav1.Time. */
export function formatTime(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/**
 * A new list with `cond` set: replaces the condition of the same type in place (or appends it).
 * `lastTransitionTime` is kept when the status is unchanged (a new reason or message is not a
 * transition) and set to `now` when the status changes or the condition is new.
 */
export function setCondition(list: readonly Condition[] | undefined, cond: ConditionInput, now: Date): Condition[] {
  const current = list ?? [];
  const existing = findCondition(current, cond.type);
  const lastTransitionTime =
    existing !== undefined && existing.status === cond.status ? existing.lastTransitionTime : formatTime(now);
  const next: Condition = {
    type: cond.type,
    status: cond.status,
    ...(cond.observedGeneration !== undefined ? { observedGeneration: cond.observedGeneration } : {}),
    lastTransitionTime,
    reason: cond.reason,
    message: cond.message,
  };
  if (existing === undefined) return [...current, next];
  return current.map((c) => (c.type === cond.type ? next : c));
}

/** True when the condition of `type` has status `True`. */
export function isTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === 'True';
}
