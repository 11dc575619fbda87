import { describe, expect, it } from 'vitest';
import { encodeCommand, luaScript } from './prebuilt-script.js';

describe('encodeCommand', () => {
  it('writes a RESP array of bulk strings: text as UTF-8, buffers as they are, numbers in decimal', () => {
    const binary = Buffer.from([0, 13, 10, 255]);
    const bytes = encodeCommand(['evalsha', 'é€', binary, 42, '', Buffer.alloc(0)]);
    const expected = Buffer.concat([
      Buffer.from('*6\r\n$7\r\nevalsha\r\n$5\r\n'),
      Buffer.from('é€', 'utf8'),
      Buffer.from('\r\n$4\r\n'),
      binary,
      Buffer.from('\r\n$2\r\n42\r\n$0\r\n\r\n$0\r\n\r\n'),
    ]);
    expect(bytes.equals(expected)).toBe(true);
  });

  it('sizes the buffer exactly, for lengths of any number of digits', () => {
    const big = Buffer.alloc(12_345, 'x');
    const parts = Array.from({ length: 11 }, (_, i) => 'k'.repeat(i * 3));
    const bytes = encodeCommand([...parts, big]);
    expect(bytes.subarray(0, 5).toString()).toBe('*12\r\n');
    expect(bytes.subarray(bytes.length - 2).toString()).toBe('\r\n');
    const tail = Buffer.concat([Buffer.from('$12345\r\n'), big, Buffer.from('\r\n')]);
    expect(bytes.subarray(bytes.length - tail.length).equals(tail)).toBe(true);
  });
});

describe('luaScript', () => {
  it('carries the SHA-1 that EVALSHA names the script by', () => {
    expect(luaScript('return 1').sha).toBe('e0e1f9fabfc9d4800c877a703b823ac0578ff8db');
  });
});
