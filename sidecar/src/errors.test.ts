import { describe, expect, it } from 'vitest';
import { describeError, ERROR_CODES, RedisUnavailableError, SidecarError } from './errors.js';

describe('errors', () => {
  it('every error class carries its stable code and HTTP status', () => {
    const e = new RedisUnavailableError('down');
    expect(e).toBeInstanceOf(SidecarError);
    expect(e.code).toBe('RedisUnavailable');
    expect(e.statusCode).toBe(503);
    expect(ERROR_CODES.ValueTooLarge).toBe(413);
  });

  it('describeError never includes the arguments ioredis attaches to its errors', () => {
    const reply = Object.assign(new Error('OOM command not allowed'), {
      name: 'ReplyError',
      command: { name: 'hset', args: ['rc:k', 'v', 'SECRET-VALUE'] },
    });
    const wrapped = new RedisUnavailableError('write failed', { cause: reply });
    const text = JSON.stringify(describeError(wrapped));
    expect(text).not.toContain('SECRET-VALUE');
    expect(text).toContain('ReplyError: OOM command not allowed');
    expect(text).toContain('RedisUnavailable');
  });
});
