import { describe, expect, it } from 'vitest';
// node-redis' own reply decoder: an independent reading of what the encoder writes.
import { Decoder } from '@redis/client/dist/lib/RESP/decoder.js';
import {
  array,
  bulk,
  integer,
  map,
  simple,
  toBuffer,
  writeBulk,
  writeError,
  writeValue,
  type Output,
  type Protocol,
  type RespValue,
} from './resp-encoder.js';

function encode(value: RespValue, protocol: Protocol): string {
  const out: Output = [];
  writeValue(out, value, protocol);
  return toBuffer(out).toString('latin1');
}

function decode(bytes: Buffer): unknown[] {
  const replies: unknown[] = [];
  const decoder = new Decoder({
    onReply: (r: unknown) => replies.push(r),
    onErrorReply: (e: Error) => replies.push(e),
    onPush: () => {},
    getTypeMapping: () => ({}),
  });
  decoder.write(bytes);
  return replies;
}

describe('RESP encoder', () => {
  it.each<[string, RespValue, string, string]>([
    ['simple string', simple('OK'), '+OK\r\n', '+OK\r\n'],
    ['integer', integer(-42), ':-42\r\n', ':-42\r\n'],
    ['bulk string (UTF-8 length in bytes)', bulk('é'), '$2\r\n\xc3\xa9\r\n', '$2\r\n\xc3\xa9\r\n'],
    ['null bulk', bulk(null), '$-1\r\n', '_\r\n'],
    ['null', { type: 'null' }, '$-1\r\n', '_\r\n'],
    ['null array', array(null), '*-1\r\n', '_\r\n'],
    ['array', array([integer(1), bulk('a')]), '*2\r\n:1\r\n$1\r\na\r\n', '*2\r\n:1\r\n$1\r\na\r\n'],
    ['map', map([['proto', integer(3)]]), '*2\r\n$5\r\nproto\r\n:3\r\n', '%1\r\n$5\r\nproto\r\n:3\r\n'],
    ['set', { type: 'set', value: [simple('fast')] }, '*1\r\n+fast\r\n', '~1\r\n+fast\r\n'],
    ['boolean', { type: 'boolean', value: true }, ':1\r\n', '#t\r\n'],
    ['double', { type: 'double', value: 1.5 }, '$3\r\n1.5\r\n', ',1.5\r\n'],
    ['infinite double', { type: 'double', value: -Infinity }, '$4\r\n-inf\r\n', ',-inf\r\n'],
    [
      'error',
      { type: 'error', code: 'INVALID_KEY', message: 'bad\r\nkey' },
      '-INVALID_KEY bad key\r\n',
      '-INVALID_KEY bad key\r\n',
    ],
  ])('encodes a %s in RESP2 and RESP3', (_what, value, resp2, resp3) => {
    expect(encode(value, 2)).toBe(resp2);
    expect(encode(value, 3)).toBe(resp3);
  });

  it('passes a value Buffer through without copying it', () => {
    const body = Buffer.from([0, 255, 13, 10]);
    const out: Output = [];
    writeBulk(out, body, 2);
    expect(out[1]).toBe(body);
    expect(toBuffer(out)).toEqual(Buffer.concat([Buffer.from('$4\r\n'), body, Buffer.from('\r\n')]));
  });

  it("writes replies node-redis' decoder reads back, in both protocols", () => {
    const hello = map([
      ['server', bulk('redis')],
      ['proto', integer(3)],
      ['modules', array([])],
    ]);
    const out: Output = [];
    writeValue(out, hello, 3);
    writeValue(out, { type: 'set', value: [simple('a'), simple('b')] }, 3);
    writeValue(out, { type: 'boolean', value: false }, 3);
    writeValue(out, { type: 'null' }, 3);
    writeError(out, 'VALUE_TOO_LARGE', 'too big');
    const replies = decode(toBuffer(out));
    expect(replies.slice(0, 4)).toEqual([{ server: 'redis', proto: 3, modules: [] }, ['a', 'b'], false, null]);
    expect(replies[4]).toBeInstanceOf(Error);
    expect((replies[4] as Error).message).toBe('VALUE_TOO_LARGE too big');

    const out2: Output = [];
    writeValue(out2, hello, 2);
    expect(decode(toBuffer(out2))).toEqual([['server', 'redis', 'proto', 3, 'modules', []]]);
  });
});
