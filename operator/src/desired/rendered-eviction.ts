/**
 * Which eviction settings the rendered redis.conf carries. Pure. The ConfigMap is what a restarted pod
 * starts with, so it carries new settings only once every pod runs them live (verified by CONFIG GET).
 */
import { REDIS_CONF_KEY } from '../api/v1alpha1/constants.js';
import type { EvictionSettings } from './eviction.js';

/** Parses `maxmemory` / `maxmemory-policy` out of a rendered redis.conf (a ConfigMap as observed). */
export function renderedEviction(configMap: { [k: string]: unknown } | undefined): EvictionSettings | undefined {
  const conf = (configMap?.['data'] as Record<string, string> | undefined)?.[REDIS_CONF_KEY];
  if (!conf) return undefined;
  const mm = /^maxmemory (\d+)$/m.exec(conf);
  const mp = /^maxmemory-policy (\S+)$/m.exec(conf);
  if (!mm || !mp) return undefined;
  return { maxmemory: Number(mm[1]), maxmemoryPolicy: mp[1] as EvictionSettings['maxmemoryPolicy'] };
}

/** Both defined and equal. */
export function sameEviction(a: EvictionSettings | undefined, b: EvictionSettings | undefined): boolean {
  return a !== undefined && b !== undefined && a.maxmemory === b.maxmemory && a.maxmemoryPolicy === b.maxmemoryPolicy;
}

export interface EvictionToRenderInput {
  /** What the spec asks for. */
  desired: EvictionSettings;
  /** What the current ConfigMap carries (`renderedEviction`), if it exists and carries any. */
  rendered: EvictionSettings | undefined;
  configMapExists: boolean;
  statefulSetExists: boolean;
  /** Every pod runs `desired` (at least one pod answered, none failed). */
  allApplied: boolean;
}

/**
 * The eviction settings to render into redis.conf: the desired ones for a new cluster or once every pod
 * runs them; until then what is rendered now (the desired ones if nothing parseable is).
 */
export function evictionToRender(input: EvictionToRenderInput): EvictionSettings {
  const { desired, rendered, configMapExists, statefulSetExists, allApplied } = input;
  return !configMapExists || !statefulSetExists || allApplied ? desired : (rendered ?? desired);
}
