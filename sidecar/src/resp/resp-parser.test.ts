import { describe, expect, it } from 'vitest';
import { prng } from '../../../test/fixtures/prng.js';
import { RespProtocolError, RespRequestParser, splitInline, type RespLimits } from './resp-parser.js';

const LIMITS: RespLimits = { maxBulkBytes: 1024, maxArrayLength: 16, maxInlineBytes: 256, maxCommandBytes: 4096 };

function encode(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Feeds `chunks` and returns the commands as strings (latin1 keeps every byte). */
function parse(chunks: Buffer[], limits: RespLimits = LIMITS): string[][] {
  const parser = new RespRequestParser(limits);
  const commands: string[][] = [];
  for (const c of chunks) parser.feed(c, (args) => commands.push(args.map((a) => a.toString('latin1'))));
  return commands;
}

function parseError(input: Buffer | string, limits: RespLimits = LIMITS): RespProtocolError {
  try {
    parse([Buffer.from(input)], limits);
  } catch (err) {
    expect(err).toBeInstanceOf(RespProtocolError);
    return err as RespProtocolError;
  }
  throw new Error('no error');
}

const BINARY = Buffer.from([0, 13, 10, 255, 36, 42, 13, 10, 0x80]);

/** A pipeline mixing multibulk (with binary and empty values) and inline commands. */
const STREAM = Buffer.concat([
  encode(['SET', 'k', BINARY]),
  Buffer.from('PING\r\n'),
  encode(['GET', 'k']),
  encode(['SET', '', '']),
  Buffer.from('*0\r\n'),
  Buffer.from("  echo   \"a b\\x41\\n\"  'c\\'d'\n"),
  encode(['MGET', 'a', 'b', 'c']),
]);
const EXPECTED = [
  ['SET', 'k', BINARY.toString('latin1')],
  ['PING'],
  ['GET', 'k'],
  ['SET', '', ''],
  ['echo', 'a bA\n', "c'd"],
  ['MGET', 'a', 'b', 'c'],
];

describe('RespRequestParser', () => {
  it('parses multibulk and inline commands, binary and empty strings, and skips *0', () => {
    expect(parse([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same commands however the stream is split in two, at every byte boundary', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      expect(parse([STREAM.subarray(0, i), STREAM.subarray(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
  });

  it('gives the same commands fed one byte at a time and in random chunks (seeded)', () => {
    expect(parse([...STREAM].map((b) => Buffer.from([b])))).toEqual(EXPECTED);
    const random = prng(16);
    for (let round = 0; round < 200; round++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < STREAM.length;) {
        const n = 1 + Math.floor(random() * 12);
        chunks.push(STREAM.subarray(i, i + n));
        i += n;
      }
      expect(parse(chunks)).toEqual(EXPECTED);
    }
  });

  it('delivers a command as soon as its last byte arrives, and reports a command in progress', () => {
    const parser = new RespRequestParser(LIMITS);
    const got: string[][] = [];
    const frame = encode(['GET', 'key']);
    parser.feed(frame.subarray(0, frame.length - 1), (a) => got.push(a.map(String)));
    expect(got).toEqual([]);
    expect(parser.midCommand).toBe(true);
    parser.feed(frame.subarray(frame.length - 1), (a) => got.push(a.map(String)));
    expect(got).toEqual([['GET', 'key']]);
    expect(parser.midCommand).toBe(false);
    expect(parser.pendingBytes).toBe(0);
  });

  it.each([
    ['a bulk header that is not $', '*1\r\n:5\r\n', /expected '\$', got ':'/],
    ['a nested array', '*2\r\n*1\r\n$1\r\na\r\n', /expected '\$', got '\*'/],
    ['a negative bulk length', '*1\r\n$-1\r\n', /invalid bulk length/],
    ['a bulk length with letters', '*1\r\n$1x\r\n', /invalid bulk length/],
    ['a multibulk length with letters', '*x\r\n', /invalid multibulk length/],
    ['a header without CR', '*1\n', /invalid multibulk length/],
    ['a bulk string not followed by CRLF', '*1\r\n$1\r\nab\r\n', /expected CRLF/],
    ['too many arguments', '*17\r\n', /more than 16 arguments/],
    ['an unbalanced quote', 'GET "abc\r\n', /unbalanced quotes/],
    ['a quote glued to a word', 'GET "a"b\r\n', /unbalanced quotes/],
  ])('refuses %s', (_what, input, message) => {
    const err = parseError(input);
    expect(err.message).toMatch(message);
    expect(err.tooLarge).toBe(false);
  });

  it('refuses a bulk string over the value limit from its header, as too large, before any byte of it', () => {
    const err = parseError('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n');
    expect(err.tooLarge).toBe(true);
    expect(err.message).toMatch(/1025 bytes is larger than the limit of 1024/);
    expect(parseError('*1\r\n$99999999999999999999\r\n').message).toMatch(/invalid bulk length/);
  });

  it('bounds inline lines and header lines, also when they arrive in pieces', () => {
    expect(parseError(`GET ${'a'.repeat(300)}\r\n`).message).toMatch(/longer than 256 bytes/);
    const parser = new RespRequestParser(LIMITS);
    parser.feed(Buffer.from('a'.repeat(200)), () => {});
    expect(() => parser.feed(Buffer.from('a'.repeat(100)), () => {})).toThrow(/longer than 256 bytes/);
    // Once failed, the parser refuses everything.
    expect(() => parser.feed(Buffer.from('PING\r\n'), () => {})).toThrow(RespProtocolError);
  });

  it('bounds the bytes of one command', () => {
    const limits = { ...LIMITS, maxCommandBytes: 2000 };
    const input = encode(['MSET', 'a', 'x'.repeat(1000), 'b', 'x'.repeat(1000)]);
    expect(() => parse([input], limits)).toThrow(/larger than the limit of 2000 bytes/);
  });

  it('delivers the commands before the refused input', () => {
    const parser = new RespRequestParser(LIMITS);
    const got: string[] = [];
    expect(() =>
      parser.feed(Buffer.concat([encode(['PING']), Buffer.from('*1\r\n$-5\r\n')]), (a) => got.push(String(a[0]))),
    ).toThrow(/invalid bulk length/);
    expect(got).toEqual(['PING']);
  });

  it('never throws anything but RespProtocolError on random bytes, and holds at most its bounds (seeded)', () => {
    const random = prng(1602);
    const pieces = [
      '*',
      '$',
      '\r\n',
      '\n',
      '-1',
      '3',
      '0',
      '99999999',
      'GET',
      ' ',
      '"',
      "'",
      '\\x4',
      '*2\r\n',
      '$3\r\n',
    ];
    for (let round = 0; round < 2000; round++) {
      const parser = new RespRequestParser(LIMITS);
      const parts: string[] = [];
      const n = 1 + Math.floor(random() * 30);
      for (let i = 0; i < n; i++) {
        parts.push(
          random() < 0.7
            ? (pieces[Math.floor(random() * pieces.length)] as string)
            : String.fromCharCode(Math.floor(random() * 256)),
        );
      }
      try {
        parser.feed(Buffer.from(parts.join(''), 'latin1'), () => {});
      } catch (err) {
        expect(err).toBeInstanceOf(RespProtocolError);
      }
      expect(parser.pendingBytes).toBeLessThanOrEqual(LIMITS.maxCommandBytes + LIMITS.maxInlineBytes);
    }
  });
});

describe('splitInline', () => {
  it('splits on spaces and tabs and reads both kinds of quotes', () => {
    expect(splitInline(Buffer.from('SET  k\t"v \\"1\\""\r')).map(String)).toEqual(['SET', 'k', 'v "1"']);
    expect(splitInline(Buffer.from("'it\\'s'")).map(String)).toEqual(["it's"]);
    expect(splitInline(Buffer.from(' \t\r'))).toEqual([]);
    expect(() => splitInline(Buffer.from("'it''s'"))).toThrow(RespProtocolError);
  });
});
