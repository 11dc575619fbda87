import { describe, expect, it } from 'vitest';
import { parseHttpOriginUrl, keyUrl, parseVersionHeader } from './http-origin.js';
import { isRetryable, latestPerKey, OriginRejectedError, OriginUnavailableError, type OriginWrite } from './origin.js';
import { quoteTableName, toOriginError } from './postgres-origin.js';

describe('latestPerKey', () => {
  it('keeps the highest version per key', () => {
    const writes: OriginWrite[] = [
      { op: 'put', key: 'a', version: 3, body: Buffer.from('3'), contentType: 't' },
      { op: 'delete', key: 'a', version: 5 },
      { op: 'put', key: 'a', version: 4, body: Buffer.from('4'), contentType: 't' },
      { op: 'delete', key: 'b', version: 1 },
    ];
    expect(latestPerKey(writes)).toEqual([
      { op: 'delete', key: 'a', version: 5 },
      { op: 'delete', key: 'b', version: 1 },
    ]);
  });
});

describe('quoteTableName', () => {
  it('quotes table and schema.table names', () => {
    expect(quoteTableName('cache_entries')).toBe('"cache_entries"');
    expect(quoteTableName('app.Cache$1')).toBe('"app"."Cache$1"');
  });

  it.each(['', 'a.b.c', '1abc', 'a b', 'x";drop table y;--', 'a'.repeat(64), 'a.'])('rejects %j', (name) => {
    expect(() => quoteTableName(name)).toThrow(OriginRejectedError);
  });
});

describe('toOriginError', () => {
  it('treats data errors as rejections without repeating the server message', () => {
    const e = toOriginError(Object.assign(new Error('invalid byte sequence: secret-value'), { code: '22021' }), 'put');
    expect(e).toBeInstanceOf(OriginRejectedError);
    expect(e.message).not.toContain('secret-value');
    expect(isRetryable(e)).toBe(false);
    expect(toOriginError(Object.assign(new Error('dup'), { code: '23505' }), 'put')).toBeInstanceOf(
      OriginRejectedError,
    );
  });

  it('treats connection errors, shutdowns, deadlocks and timeouts as unavailable', () => {
    for (const code of ['ECONNREFUSED', '57P01', '40P01', '08006', '53300', '42P01', undefined]) {
      const e = toOriginError(Object.assign(new Error('x'), { code }), 'batch');
      expect(e, String(code)).toBeInstanceOf(OriginUnavailableError);
      expect(isRetryable(e)).toBe(true);
    }
    expect(toOriginError(new Error('Query read timeout'), 'get')).toBeInstanceOf(OriginUnavailableError);
  });
});

describe('HTTP origin URLs', () => {
  it('moves credentials into a Basic authorization and never into the description', () => {
    const p = parseHttpOriginUrl('http://user:p%40ss@127.0.0.1:8080/cache/?x=1#h');
    expect(p.base).toBe('http://127.0.0.1:8080/cache');
    expect(p.authorization).toBe(`Basic ${Buffer.from('user:p@ss').toString('base64')}`);
    expect(p.description).not.toContain('p@ss');
    expect(parseHttpOriginUrl('https://origin.example').authorization).toBeUndefined();
    expect(() => parseHttpOriginUrl('ftp://x')).toThrow(OriginRejectedError);
  });

  it('encodes a key as one path segment', () => {
    expect(keyUrl('http://h/c', 'a/b c?é')).toBe('http://h/c/a%2Fb%20c%3F%C3%A9');
  });

  it('parses the version header', () => {
    expect(parseVersionHeader('1700000000000123')).toBe(1700000000000123);
    expect(parseVersionHeader(null)).toBe(0);
    expect(parseVersionHeader('-1')).toBe(0);
    expect(parseVersionHeader('99999999999999999')).toBe(0);
  });
});
