import { describe, expect, it } from 'vitest';
import { coalesce } from './coalesce.js';
import { CoalesceWindow } from './coalesce-window.js';
import type { JournalEntry } from './journal-entry.js';

const put = (id: string, key: string, version: number, body: string): JournalEntry => ({
  id,
  key,
  op: 'put',
  version,
  body: Buffer.from(body),
  contentType: 'text/plain',
  ttlMs: 0,
});
const del = (id: string, key: string, version: number): JournalEntry => ({ id, key, op: 'delete', version, ttlMs: 0 });

describe('CoalesceWindow', () => {
  it('holds one entry per key until its window closes; superseded entries are handed back at once', () => {
    const w = new CoalesceWindow(1000);
    w.add([put('1-0', 'hot', 1, 'v1')], 0);
    expect(w.takeSuperseded()).toEqual([]);
    for (let i = 1; i < 100; i++) w.add([put(`1-${i}`, 'hot', i + 1, `v${i + 1}`)], i * 9);
    // 99 entries replaced by a later one of their key: acknowledged now, never written.
    expect(w.takeSuperseded()).toEqual(Array.from({ length: 99 }, (_, i) => `1-${i}`));
    expect(w.takeSuperseded()).toEqual([]);
    expect(w.size).toBe(1);
    expect(w.heldIds()).toEqual(['1-99']);
    expect(w.hasDue(999)).toBe(false);
    expect(w.take(999, 10)).toEqual([]);
    expect(w.hasDue(1000)).toBe(true);
    const due = w.take(1000, 10);
    // One database write, carrying the last value.
    expect(due).toHaveLength(1);
    const { writes } = coalesce(due);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ key: 'hot', op: 'put', version: 100 });
    expect(writes[0]?.op === 'put' && writes[0].body.toString()).toBe('v100');
    expect(w.size).toBe(0);
    expect(w.hasDue(5000)).toBe(false);
  });

  it('under backlog pressure every open window is due, oldest first; without it, only closed ones', () => {
    const w = new CoalesceWindow(10_000);
    w.add([put('1-0', 'a', 1, 'a'), put('1-1', 'b', 2, 'b')], 0);
    w.add([put('1-2', 'a', 3, 'a2'), put('1-3', 'c', 4, 'c')], 50);
    expect(w.hasDue(100)).toBe(false);
    w.setPressure(true);
    expect(w.pressure).toBe(true);
    expect(w.hasDue(100)).toBe(true);
    expect(w.takeSuperseded()).toEqual(['1-0']);
    expect(w.take(100, 1).map((e) => e.id)).toEqual(['1-2']);
    w.setPressure(false);
    expect(w.hasDue(100)).toBe(false);
    expect(w.take(100, 10)).toEqual([]);
    expect(w.take(10_050, 10).map((e) => e.id)).toEqual(['1-1', '1-3']);
    expect(w.size).toBe(0);
  });

  it('opens a new window for the next write after one closed', () => {
    const w = new CoalesceWindow(100);
    w.add([put('1-0', 'k', 1, 'a')], 0);
    expect(w.take(100, 10).map((e) => e.id)).toEqual(['1-0']);
    w.add([put('1-1', 'k', 2, 'b')], 150);
    expect(w.nextDueAt()).toBe(250);
    expect(w.take(249, 10)).toEqual([]);
    expect(w.take(250, 10).map((e) => e.id)).toEqual(['1-1']);
  });

  it('gives keys in the order their windows opened, at most maxKeys per take', () => {
    const w = new CoalesceWindow(100);
    w.add([put('1-0', 'a', 1, 'a'), put('1-1', 'b', 2, 'b')], 0);
    w.add([put('1-2', 'c', 3, 'c'), put('1-3', 'a', 4, 'a2')], 50);
    expect(w.take(120, 10).map((e) => e.id)).toEqual(['1-3', '1-1']);
    expect(w.takeSuperseded()).toEqual(['1-0']);
    expect(w.take(149, 10)).toEqual([]);
    expect(w.take(150, 1).map((e) => e.id)).toEqual(['1-2']);
  });

  it('keeps the highest version when an older entry arrives late (a claimed one), and deletes too', () => {
    const w = new CoalesceWindow(10);
    w.add([put('2-0', 'k', 20, 'new')], 0);
    w.add([put('1-0', 'k', 10, 'old')], 1);
    w.add([del('3-0', 'd', 30), put('3-1', 'd', 29, 'x')], 2);
    // The late older entries are superseded on arrival.
    expect(w.takeSuperseded()).toEqual(['1-0', '3-1']);
    const { writes } = coalesce(w.take(20, 10));
    expect(writes.find((x) => x.key === 'k')).toMatchObject({ op: 'put', version: 20 });
    expect(writes.find((x) => x.key === 'd')).toMatchObject({ op: 'delete', version: 30 });
  });

  it('ignores an id it already holds (read again after a reconnect)', () => {
    const w = new CoalesceWindow(10);
    w.add([put('1-0', 'k', 1, 'a')], 0);
    w.add([put('1-0', 'k', 1, 'a')], 5);
    expect(w.size).toBe(1);
    expect(w.heldIds()).toEqual(['1-0']);
    expect(w.take(10, 10)).toHaveLength(1);
  });

  it('gives everything when asked to (a stop), whatever the windows', () => {
    const w = new CoalesceWindow(60_000);
    w.add([put('1-0', 'a', 1, 'a'), put('1-1', 'b', 2, 'b')], 0);
    expect(w.take(1, 10)).toEqual([]);
    expect(w.take(1, 10, true).map((e) => e.id)).toEqual(['1-0', '1-1']);
  });

  it('closes windows early past its entry or byte bound', () => {
    const byCount = new CoalesceWindow(60_000, 2);
    // Two writes of one key hold one entry.
    byCount.add([put('1-0', 'a', 1, 'a'), put('1-1', 'a', 2, 'b'), put('1-2', 'b', 3, 'c')], 0);
    expect(byCount.size).toBe(2);
    expect(byCount.hasDue(1)).toBe(false);
    byCount.add([put('1-3', 'c', 4, 'd')], 1);
    expect(byCount.hasDue(1)).toBe(true);
    expect(byCount.take(1, 1).map((e) => e.id)).toEqual(['1-1']);
    expect(byCount.hasDue(1)).toBe(false);

    const byBytes = new CoalesceWindow(60_000, 1000, 10);
    byBytes.add([put('1-0', 'a', 1, 'x'.repeat(20))], 0);
    expect(byBytes.hasDue(0)).toBe(true);
  });

  it('refuses a window that is not positive', () => {
    expect(() => new CoalesceWindow(0)).toThrow(RangeError);
  });
});
