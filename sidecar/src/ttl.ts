/**
 * The `ttl` query parameter of a PUT: plain decimal digits naming 1 to 315360000 seconds (10 years). Pure.
 *
 * Nothing else is a TTL: no sign (`+5`, `-1`), no spaces (`%201`, `+5` decodes to ` 5`), no exponent
 * (`1e3`, `1e309`), no hexadecimal (`0x10`), no fraction (`1.5`), not `Infinity`, not empty, and not given
 * twice (`ttl=1&ttl=2`). Leading zeros are allowed and mean nothing (`010` is ten seconds, never octal).
 */
import { InvalidTTLError } from './errors.js';

/** Longest TTL a write may ask for: 10 years. */
export const MAX_TTL_SECONDS = 10 * 365 * 86_400;

/** The rule, as error messages state it. */
export const TTL_RULE = `ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, in decimal digits only`;

const DIGITS = /^[0-9]+$/;

/**
 * Returns the TTL in seconds, `undefined` when the query names none, or throws {@link InvalidTTLError}.
 * `raw` is what the query-string parser produced: a string, or an array when `ttl` was repeated.
 */
export function parseTTL(raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !DIGITS.test(raw)) throw new InvalidTTLError(TTL_RULE);
  // Digits only, so Number() reads them in decimal; a huge one becomes a huge number or Infinity.
  const seconds = Number(raw);
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new InvalidTTLError(TTL_RULE);
  return seconds;
}
