/**
 * Cache keys: 1–1024 bytes of UTF-8 (architecture §3). Pure.
 */
import { InvalidKeyError } from './errors.js';

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** A lone UTF-16 surrogate cannot be encoded as UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Returns the key's length in UTF-8 bytes, or throws {@link InvalidKeyError}. */
export function validateKey(key: string): number {
  if (key.length === 0) throw new InvalidKeyError('the key is empty (keys are 1 to 1024 bytes of UTF-8)');
  // A UTF-16 code unit is at most 3 UTF-8 bytes: skip the exact count for short keys.
  const bytes = key.length * 3 <= MAX_KEY_BYTES ? -1 : Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new InvalidKeyError(`the key is ${bytes} bytes long; keys are at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  }
  if (LONE_SURROGATE.test(key)) throw new InvalidKeyError('the key is not valid UTF-8');
  return bytes === -1 ? Buffer.byteLength(key, 'utf8') : bytes;
}
