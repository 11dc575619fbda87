import { describe, expect, it } from 'vitest';
import { ErrorLogGate, MAX_ERROR_TEXT, errorText, redactSecrets, safeError } from './error-report.js';

describe('redactSecrets', () => {
  it("takes out URLs' credentials and every known password", () => {
    expect(redactSecrets('cannot reach redis://:s3cret@cache:6379/0 nor rediss://u:p@x', [])).toBe(
      'cannot reach redis://***@cache:6379/0 nor rediss://***@x',
    );
    expect(redactSecrets('WRONGPASS s3cret-pw and s3cret', ['s3cret', 's3cret-pw'])).toBe('WRONGPASS *** and ***');
    // Too short to search for without blanking out words.
    expect(redactSecrets('connect ECONNREFUSED', ['co'])).toBe('connect ECONNREFUSED');
  });
});

describe('errorText', () => {
  it("is the message, with a Cluster client's last node error, on one line, without secrets", () => {
    expect(errorText(new Error('connect ECONNREFUSED 127.0.0.1:1'), [])).toBe('connect ECONNREFUSED 127.0.0.1:1');
    const cluster = Object.assign(new Error('Failed to refresh slots cache.'), {
      lastNodeError: new Error('WRONGPASS invalid username-password pair'),
    });
    expect(errorText(cluster, [])).toBe('Failed to refresh slots cache. WRONGPASS invalid username-password pair');
    expect(errorText(new Error('bad\n  pw=hunter22'), ['hunter22'])).toBe('bad pw=***');
    expect(errorText('x'.repeat(2000), [])).toHaveLength(MAX_ERROR_TEXT);
    const d = safeError(Object.assign(new Error('at redis://:hunter22@h'), { lastNodeError: new Error('hunter22') }), [
      'hunter22',
    ]);
    expect(JSON.stringify(d)).not.toContain('hunter22');
    expect(d).toMatchObject({ message: 'at redis://***@h', lastNodeError: '***' });
  });
});

describe('ErrorLogGate', () => {
  it('logs the first error, a changed one, then one a minute with the count of those not logged', () => {
    const g = new ErrorLogGate(60_000);
    expect(g.failing).toBe(false);
    expect(g.check('ECONNREFUSED', 0)).toEqual({ log: true, repeated: 0 });
    expect(g.failing).toBe(true);
    expect(g.check('ECONNREFUSED', 2000)).toEqual({ log: false });
    expect(g.check('ECONNREFUSED', 4000)).toEqual({ log: false });
    expect(g.check('WRONGPASS', 5000)).toEqual({ log: true, repeated: 0 });
    for (let t = 6000; t < 65_000; t += 2000) expect(g.check('WRONGPASS', t).log).toBe(false);
    expect(g.check('WRONGPASS', 65_000)).toEqual({ log: true, repeated: 30 });
    // The connection came back: the next failure is logged at once.
    g.reset();
    expect(g.failing).toBe(false);
    expect(g.check('WRONGPASS', 66_000)).toEqual({ log: true, repeated: 0 });
  });
});
