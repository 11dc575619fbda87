import { describe, expect, it } from 'vitest';
import { authSecretError } from './auth-secret-error.js';

describe('authSecretError', () => {
  const where = { namespace: 'shop', name: 'sessions-auth', key: 'password' };

  it('names the Secret and the key for each problem, never a value', () => {
    expect(authSecretError({ missing: 'secret', ...where }).reason).toBe('AuthSecretMissing');
    expect(authSecretError({ missing: 'key', ...where }).reason).toBe('AuthSecretKeyMissing');
    expect(authSecretError({ missing: 'empty', ...where })).toEqual({
      reason: 'AuthSecretKeyMissing',
      message:
        'Secret shop/sessions-auth (spec.auth.secretRef) has an empty key "password": Redis would run without ' +
        'a password; no child is created or updated until it holds one',
    });
  });
});
