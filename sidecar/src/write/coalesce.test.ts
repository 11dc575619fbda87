import { describe, expect, it } from 'vitest';
import { coalesce, flushRetryDelay } from './coalesce.js';
import type { JournalEntry } from './journal-entry.js';

const put = (id: string, key: string, version: number, body: string, ttlMs = 0): JournalEntry => ({
  id,
  key,
  op: 'put',
  version,
  body: Buffer.from(body),
  contentType: 'text/plain',
  ttlMs,
});
const del = (id: string, key: string, version: number): JournalEntry => ({ id, key, op: 'delete', version, ttlMs: 0 });

describe('coalesce', () => {
  it('keeps the last write of each key in journal order and counts the others', () => {
    const { writes, coalesced } = coalesce([
      put('1-0', 'a', 10, 'a1'),
      put('1-1', 'b', 11, 'b1'),
      put('1-2', 'a', 12, 'a2'),
      del('1-3', 'b', 13),
      put('1-4', 'a', 14, 'a3', 5000),
    ]);
    expect(coalesced).toBe(3);
    expect(writes).toHaveLength(2);
    const a = writes.find((w) => w.key === 'a');
    expect(a).toMatchObject({ op: 'put', version: 14, ttlMs: 5000, ids: ['1-0', '1-2', '1-4'] });
    expect(a?.op === 'put' ? a.body.toString() : undefined).toBe('a3');
    expect(writes.find((w) => w.key === 'b')).toMatchObject({ op: 'delete', version: 13, ids: ['1-1', '1-3'] });
  });

  it('prefers the higher version when a claimed older entry comes after a newer one', () => {
    const { writes } = coalesce([put('5-0', 'k', 50, 'new'), put('2-0', 'k', 20, 'old')]);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ version: 50, ids: ['5-0', '2-0'] });
  });

  it('is deterministic and handles an empty batch', () => {
    expect(coalesce([])).toEqual({ writes: [], coalesced: 0 });
    const batch = [put('1-0', 'x', 1, 'v'), del('1-1', 'y', 2)];
    expect(coalesce(batch)).toEqual(coalesce(batch));
  });
});

describe('flushRetryDelay', () => {
  it('doubles from 100 ms to a 5 s cap, plus jitter below 100 ms', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => flushRetryDelay(n, 0))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000,
    ]);
    expect(flushRetryDelay(1, 0.999)).toBe(199);
    expect(flushRetryDelay(0, 0)).toBe(100);
  });
});
