/**
 * What status says when `spec.auth.secretRef` cannot be read: the Secret does not exist, or lacks the key. Pure.
 * Names the Secret and the key only, never a value.
 */

/** What the reconcile found missing. */
export interface AuthSecretProblem {
  /** `empty`: the key holds an empty value (Redis would run without a password). */
  missing: 'secret' | 'key' | 'empty';
  namespace: string;
  name: string;
  key: string;
}

/** The Ready / Degraded reason and message (and the Warning event's) for a missing auth Secret or key. */
export function authSecretError(p: AuthSecretProblem): {
  reason: 'AuthSecretMissing' | 'AuthSecretKeyMissing';
  message: string;
} {
  const secret = `Secret ${p.namespace}/${p.name} (spec.auth.secretRef)`;
  if (p.missing === 'empty')
    return {
      reason: 'AuthSecretKeyMissing',
      message:
        `${secret} has an empty key ${JSON.stringify(p.key)}: Redis would run without a password; ` +
        'no child is created or updated until it holds one',
    };
  return p.missing === 'secret'
    ? {
        reason: 'AuthSecretMissing',
        message:
          `${secret} not found: the Redis pods take their password from its key ${JSON.stringify(p.key)}; ` +
          'no child is created or updated until it exists',
      }
    : {
        reason: 'AuthSecretKeyMissing',
        message:
          `${secret} has no key ${JSON.stringify(p.key)}: the Redis pods take their password from it; ` +
          'no child is created or updated until it does',
      };
}
