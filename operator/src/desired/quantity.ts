/**
 * Byte quantities in the two notations that meet here, which must never be confused:
 * - Kubernetes quantities: `Mi` = 2^20, `M` = 10^6, `m` = 10^-3 (so `256m` is a quarter of a byte);
 *   their parser lives in common/src/quantity.ts (the sidecar's byte flags use it too) and is re-exported.
 * - Redis memory values: `mb` = 2^20, `m` = 10^6, case-insensitive; `CONFIG GET maxmemory` answers bytes.
 */
import { DEFAULTS } from '../api/v1alpha1/types.js';
import type { CacheCluster } from '../api/v1alpha1/types.js';
import { parseQuantity, QuantityError } from '../../../common/src/quantity.js';
import { InvalidSpecError } from './invalid-spec-error.js';

export { parseQuantity, QuantityError } from '../../../common/src/quantity.js';

const REDIS_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1024,
  m: 1000 ** 2,
  mb: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1024 ** 3,
};

/**
 * Bytes in a Redis memory value, as `redis.conf` and `CONFIG SET` accept them: `268435456`, `256mb`
 * (= 256 × 2^20), `256m` (= 256 × 10^6), `1gb`, `64KB` (units are case-insensitive). `CONFIG GET maxmemory`
 * always answers plain bytes, which this accepts too. Throws `QuantityError` for anything else.
 */
export function parseRedisMemory(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new QuantityError(`Redis memory value ${value} is not a whole number of bytes`, 'malformed');
    return value;
  }
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = REDIS_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined)
    throw new QuantityError(`"${value}" is not a Redis memory value (e.g. 268435456, 256mb, 1gb)`, 'malformed');
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes))
    throw new QuantityError(`Redis memory value "${value}" is too large`, 'out-of-range');
  return bytes;
}

/** Bytes of `spec.resources.limits.memory`, or undefined when no memory limit is set. */
export function memoryLimitBytes(cc: CacheCluster): number | undefined {
  const limit = cc.spec.resources?.limits?.['memory'];
  return limit === undefined ? undefined : parseQuantity(limit);
}

/**
 * The `maxmemory` in bytes the spec asks for: `eviction.maxMemory`, or `eviction.maxMemoryPercent` of
 * the memory limit (rounded down), or the default (75 % of the memory limit when set, else 256Mi).
 * Throws `InvalidSpecError` when a percentage is given without a memory limit, when both or a malformed
 * quantity are given, or when maxMemory exceeds the limit (the CRD's CEL rules reject all of these).
 */
export function resolveMaxMemoryBytes(cc: CacheCluster): number {
  const ev = cc.spec.eviction;
  let limit: number | undefined;
  try {
    limit = memoryLimitBytes(cc);
  } catch (err) {
    throw new InvalidSpecError('InvalidMemoryLimit', `resources.limits.memory: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (ev?.maxMemory !== undefined && ev.maxMemoryPercent !== undefined) {
    throw new InvalidSpecError(
      'InvalidEviction',
      'set exactly one of eviction.maxMemory and eviction.maxMemoryPercent',
    );
  }
  if (ev?.maxMemory !== undefined) {
    let bytes: number;
    try {
      bytes = parseQuantity(ev.maxMemory);
    } catch (err) {
      throw new InvalidSpecError('InvalidEviction', `eviction.maxMemory: ${(err as Error).message}`, { cause: err });
    }
    if (limit !== undefined && bytes > limit) {
      throw new InvalidSpecError(
        'InvalidEviction',
        `eviction.maxMemory (${bytes} bytes) exceeds resources.limits.memory (${limit} bytes)`,
      );
    }
    return bytes;
  }
  if (ev?.maxMemoryPercent !== undefined) {
    if (limit === undefined) {
      throw new InvalidSpecError('InvalidEviction', 'eviction.maxMemoryPercent needs resources.limits.memory');
    }
    return Math.floor((limit * ev.maxMemoryPercent) / 100);
  }
  if (limit !== undefined) return Math.floor((limit * DEFAULTS.eviction.maxMemoryPercent) / 100);
  return parseQuantity(DEFAULTS.eviction.maxMemory);
}

const BINARY_SUFFIXES: ReadonlyArray<[string, bigint]> = [
  ['Ei', 1n << 60n],
  ['Pi', 1n << 50n],
  ['Ti', 1n << 40n],
  ['Gi', 1n << 30n],
  ['Mi', 1n << 20n],
  ['Ki', 1n << 10n],
];
const DECIMAL_SUFFIXES: ReadonlyArray<[string, bigint]> = [
  ['E', 10n ** 18n],
  ['P', 10n ** 15n],
  ['T', 10n ** 12n],
  ['G', 10n ** 9n],
  ['M', 10n ** 6n],
  ['k', 10n ** 3n],
];

/**
 * Bytes as the shortest exact Kubernetes quantity: the largest binary suffix that divides it (`256Mi`,
 * `1536Mi`), else the largest decimal one (`500M`), else plain bytes (`1000001`). Exact, so it parses back.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) return String(bytes);
  const b = BigInt(bytes);
  for (const [suffix, unit] of [...BINARY_SUFFIXES, ...DECIMAL_SUFFIXES]) {
    if (b % unit === 0n) return `${b / unit}${suffix}`;
  }
  return String(bytes);
}
