import { createHash } from 'node:crypto';

/** A digest of the password for the restart hash: rotation rolls the Redis pods; the password never leaves. */
export function passwordChecksum(password: string): string {
  return createHash('sha256').update('ripplecache-auth\0').update(password).digest('hex').slice(0, 16);
}
