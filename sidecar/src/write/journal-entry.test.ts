import { describe, expect, it } from 'vitest';
import { parseJournalEntry, parseStreamEntries, streamIdMs } from './journal-entry.js';

const b = (s: string) => Buffer.from(s);
const fields = (...kv: string[]) => kv.map(b);

describe('parseJournalEntry', () => {
  it('parses a put with binary body and a delete', () => {
    const body = Buffer.from([0, 255, 10]);
    expect(
      parseJournalEntry('1-0', [
        b('k'),
        b('a/b'),
        b('op'),
        b('put'),
        b('ver'),
        b('1700000000000123'),
        b('v'),
        body,
        b('ct'),
        b('x/y'),
        b('ttl'),
        b('60000'),
      ]),
    ).toEqual({ id: '1-0', key: 'a/b', op: 'put', version: 1700000000000123, body, contentType: 'x/y', ttlMs: 60000 });
    expect(parseJournalEntry('2-0', fields('k', 'a', 'op', 'delete', 'ver', '7', 'ttl', '0'))).toEqual({
      id: '2-0',
      key: 'a',
      op: 'delete',
      version: 7,
      ttlMs: 0,
    });
  });

  it('parses fields written in another order or with extra fields (another writer of the stream)', () => {
    expect(
      parseJournalEntry('3-0', fields('ttl', '5', 'ver', '9', 'ct', 't/p', 'v', 'x', 'op', 'put', 'k', 'z')),
    ).toEqual({ id: '3-0', key: 'z', op: 'put', version: 9, body: b('x'), contentType: 't/p', ttlMs: 5 });
    expect(parseJournalEntry('3-1', fields('k', 'a', 'op', 'delete', 'ver', '7', 'by', 'me'))).toEqual({
      id: '3-1',
      key: 'a',
      op: 'delete',
      version: 7,
      ttlMs: 0,
    });
  });

  it('rejects entries that are not journal entries', () => {
    expect(parseJournalEntry('1-0', null)).toBeUndefined();
    expect(parseJournalEntry('1-0', fields('k', 'a', 'op', 'put', 'ver', '7'))).toBeUndefined(); // no body
    expect(parseJournalEntry('1-0', fields('k', 'a', 'op', 'merge', 'ver', '7', 'ttl', '0'))).toBeUndefined();
    expect(parseJournalEntry('1-0', fields('k', 'a', 'op', 'delete', 'ver', 'x', 'ttl', '0'))).toBeUndefined();
    expect(parseJournalEntry('1-0', fields('k', '', 'op', 'delete', 'ver', '3', 'ttl', '0'))).toBeUndefined();
    expect(parseJournalEntry('1-0', fields('hello', 'world'))).toBeUndefined();
  });
});

describe('parseStreamEntries', () => {
  it('splits readable entries from unreadable ids', () => {
    const read = parseStreamEntries([
      [b('1-0'), fields('k', 'a', 'op', 'delete', 'ver', '3', 'ttl', '0')],
      [b('1-1'), null],
      [b('1-2'), fields('junk', 'x')],
    ]);
    expect(read.entries.map((e) => e.id)).toEqual(['1-0']);
    expect(read.unreadable).toEqual(['1-1', '1-2']);
    expect(parseStreamEntries(null)).toEqual({ entries: [], unreadable: [] });
  });

  it('reads the time part of a stream id', () => {
    expect(streamIdMs('1700000000123-4')).toBe(1700000000123);
  });
});
