/**
 * Kubernetes quantities (`256Mi`, `1G`, `1.5Gi`, `1e9`, or a plain number), as the CRD's `Quantity`
 * fields and the sidecar's byte flags (`--l1-max-bytes`, `--max-value-bytes`) both accept them. Suffixes
 * are case-sensitive: `Ki`/`Mi`/`Gi`/`Ti`/`Pi`/`Ei` are powers of 1024, `k`/`M`/`G`/`T`/`P`/`E` powers of
 * 1000, and `m`/`u`/`n` are milli/micro/nano (so `256m` is a quarter of a byte, rounded up). Pure.
 */

/** Why a quantity was refused: not a quantity at all, below zero, or beyond what a number holds exactly. */
export type QuantityProblem = 'malformed' | 'negative' | 'out-of-range';

export class QuantityError extends Error {
  override readonly name = 'QuantityError';
  readonly code = 'InvalidQuantity';
  constructor(
    message: string,
    readonly problem: QuantityProblem,
  ) {
    super(message);
  }
}

const BINARY: Record<string, bigint> = { Ki: 1n, Mi: 2n, Gi: 3n, Ti: 4n, Pi: 5n, Ei: 6n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const QUANTITY_RE = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?[0-9]+))?$/;

/**
 * The value of a Kubernetes quantity (`256Mi`, `1G`, `500M`, `1.5Gi`, `1e9`, or a number), rounded up to
 * a whole unit as Kubernetes' `Quantity.Value()` does. Exact (no floating-point error). Throws
 * `QuantityError` for malformed or negative values, or values beyond 2^53.
 */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q) || q < 0)
      throw new QuantityError(`quantity ${q} is not a non-negative number`, q < 0 ? 'negative' : 'malformed');
    const bytes = Math.ceil(q);
    if (!Number.isSafeInteger(bytes)) throw new QuantityError(`quantity ${q} is too large`, 'out-of-range');
    return bytes;
  }
  const m = QUANTITY_RE.exec(q.trim());
  if (!m) throw new QuantityError(`"${q}" is not a Kubernetes quantity (e.g. 256Mi, 1G, 268435456)`, 'malformed');
  const [, sign, number = '', binary, decimal, exponent] = m;
  const [whole = '', frac = ''] = number.split('.');
  let num = BigInt((whole || '0') + frac);
  let den = 10n ** BigInt(frac.length);
  if (binary !== undefined) {
    num *= 1024n ** (BINARY[binary] ?? 0n);
  } else {
    const exp = exponent !== undefined ? Number(exponent) : (DECIMAL[decimal ?? ''] ?? 0);
    if (Math.abs(exp) > 30) throw new QuantityError(`quantity "${q}" is out of range`, 'out-of-range');
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  const bytes = (num + den - 1n) / den; // round up
  if (sign === '-' && num !== 0n) throw new QuantityError(`quantity "${q}" is negative`, 'negative');
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new QuantityError(`quantity "${q}" is too large`, 'out-of-range');
  return Number(bytes);
}

/**
 * Do two quantities denote the same amount, exactly (`1Gi` and `1073741824`, `0.5` and `500m`, `1e3` and
 * `1k`)? Unlike `parseQuantity` nothing is rounded (`500m` is not `1`). False when either is not a quantity.
 * The API server rewrites the quantities it stores in canonical form; this compares them as it does.
 */
export function sameQuantity(a: string | number, b: string | number): boolean {
  const x = exactQuantity(a);
  const y = exactQuantity(b);
  return x !== undefined && y !== undefined && x.num * y.den === y.num * x.den;
}

/** A quantity as an exact fraction num/den (den > 0), or undefined when it is not one. */
function exactQuantity(q: string | number): { num: bigint; den: bigint } | undefined {
  const text = typeof q === 'number' ? (Number.isFinite(q) ? String(q) : '') : q.trim();
  const m = QUANTITY_RE.exec(text);
  if (!m) return undefined;
  const [, sign, number = '', binary, decimal, exponent] = m;
  const [whole = '', frac = ''] = number.split('.');
  let num = BigInt((whole || '0') + frac);
  let den = 10n ** BigInt(frac.length);
  if (binary !== undefined) num *= 1024n ** (BINARY[binary] ?? 0n);
  else {
    const exp = exponent !== undefined ? Number(exponent) : (DECIMAL[decimal ?? ''] ?? 0);
    if (Math.abs(exp) > 30) return undefined;
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  return { num: sign === '-' ? -num : num, den };
}
