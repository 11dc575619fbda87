import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../errors.js';
import { BATCH_MAX_OPS, checkBatch, errorResult, isRefused, type CheckedOp } from './batch-ops.js';

const rules = { maxValueBytes: 16, defaultTTLSeconds: 3600 };
const codeOf = (op: CheckedOp | undefined) => (op !== undefined && isRefused(op) ? op.error.code : 'ok');

describe('checkBatch', () => {
  it('reads gets, puts (utf8 and base64, per-key TTL and Content-Type) and deletes, in order', () => {
    const ops = checkBatch(
      {
        ops: [
          { op: 'get', key: 'a' },
          { op: 'put', key: 'b', value: 'hé', contentType: 'text/plain; charset=utf-8', ttl: 5 },
          { op: 'put', key: 'c', value: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' },
          { op: 'delete', key: 'd' },
        ],
      },
      rules,
    );
    expect(ops).toHaveLength(4);
    expect(ops[0]).toEqual({ op: 'get', key: 'a' });
    expect(ops[1]).toMatchObject({
      op: 'put',
      key: 'b',
      ttlSeconds: 5,
      value: { contentType: 'text/plain; charset=utf-8' },
    });
    expect(ops[1] && 'value' in ops[1] && ops[1].value.body.toString()).toBe('hé');
    expect(ops[2]).toMatchObject({ op: 'put', ttlSeconds: 3600, value: { contentType: 'application/octet-stream' } });
    expect(ops[2] && 'value' in ops[2] && [...ops[2].value.body]).toEqual([0, 255]);
    expect(ops[3]).toEqual({ op: 'delete', key: 'd' });
  });

  it('refuses a bad operation alone, with the single-key API codes', () => {
    const ops = checkBatch(
      {
        ops: [
          { op: 'put', key: '', value: 'x' },
          { op: 'get', key: 'k'.repeat(1025) },
          { op: 'put', key: 'big', value: 'x'.repeat(17) },
          { op: 'put', key: 'big64', value: Buffer.alloc(17).toString('base64'), encoding: 'base64' },
          { op: 'put', key: 't', value: 'x', ttl: 0 },
          { op: 'put', key: 't', value: 'x', ttl: 1.5 },
          { op: 'put', key: 't', value: 'x', ttl: '5' },
          { op: 'frob', key: 'x' },
          { op: 'put', key: 'x', value: 'not base64!', encoding: 'base64' },
          { op: 'put', key: 'x', value: 'x', encoding: 'hex' },
          { op: 'put', key: 'x' },
          { op: 'get', key: 'x', value: 'stray' },
          { op: 'put', key: 'x', value: 'x', contentType: 'a\nb' },
          { op: 'get', key: 42 },
          'get',
          { op: 'put', key: 'fine', value: 'x'.repeat(16) },
        ],
      },
      rules,
    );
    expect(ops.map(codeOf)).toEqual([
      'InvalidKey',
      'InvalidKey',
      'ValueTooLarge',
      'ValueTooLarge',
      'InvalidTTL',
      'InvalidTTL',
      'InvalidTTL',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'InvalidRequest',
      'ok',
    ]);
    const tooLarge = ops[2];
    expect(tooLarge && isRefused(tooLarge) && tooLarge.error.message).toBe(
      'the value is 17 bytes; the limit is 16 bytes',
    );
    expect(tooLarge && isRefused(tooLarge) && tooLarge.key).toBe('big');
  });

  it('applies the origin key check (e.g. PostgreSQL: no NUL) to every operation', () => {
    const ops = checkBatch(
      {
        ops: [
          { op: 'delete', key: 'a\u0000b' },
          { op: 'get', key: 'ab' },
        ],
      },
      {
        ...rules,
        originCheckKey: (k) => {
          if (k.includes('\u0000')) throw new InvalidKeyError('no NUL');
        },
      },
    );
    expect(ops.map(codeOf)).toEqual(['InvalidKey', 'ok']);
  });

  it('refuses a malformed body whole (400 InvalidBody) and too many operations (413 BatchTooLarge)', () => {
    for (const body of [null, [], 'x', {}, { ops: {} }, { ops: [] }, { ops: [{ op: 'get', key: 'a' }], more: 1 }]) {
      expect(() => checkBatch(body, rules)).toThrow(expect.objectContaining({ code: 'InvalidBody', statusCode: 400 }));
    }
    const ops = Array.from({ length: BATCH_MAX_OPS + 1 }, (_, i) => ({ op: 'get', key: `k${i}` }));
    expect(() => checkBatch({ ops }, rules)).toThrow(
      expect.objectContaining({
        code: 'BatchTooLarge',
        statusCode: 413,
        message: `the batch has ${BATCH_MAX_OPS + 1} operations; at most ${BATCH_MAX_OPS} are allowed`,
      }),
    );
    expect(checkBatch({ ops: ops.slice(0, BATCH_MAX_OPS) }, rules)).toHaveLength(BATCH_MAX_OPS);
    expect(() => checkBatch({ ops: ops.slice(0, 3) }, { ...rules, maxOps: 2 })).toThrow(/at most 2/);
  });
});

describe('errorResult', () => {
  it('answers a SidecarError with its status and code, anything else as 500 Internal without its message', () => {
    expect(errorResult('k', new InvalidKeyError('bad'))).toEqual({
      status: 400,
      key: 'k',
      error: { code: 'InvalidKey', message: 'bad' },
    });
    expect(errorResult('k', new Error('secret detail'))).toEqual({
      status: 500,
      key: 'k',
      error: { code: 'Internal', message: 'internal error' },
    });
  });
});
