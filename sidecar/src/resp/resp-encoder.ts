/**
 * The reply side of RESP: RESP2 and RESP3 encodings of the replies the sidecar sends. Pure.
 *
 * Replies are appended to an output list of byte chunks (strings are latin1/ASCII-only protocol text or
 * UTF-8 payloads converted here; values are Buffers passed through without a copy), which the connection
 * writes in one go. A {@link RespValue} describes composite replies (HELLO, COMMAND, CLIENT INFO); the hot
 * path (GET, SET) calls the small functions directly.
 */

export type Protocol = 2 | 3;

/** A reply, as a tree. `null` bulk/array are RESP2 `$-1`/`*-1` and RESP3 `_`. */
export type RespValue =
  | { readonly type: 'simple'; readonly value: string }
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'bulk'; readonly value: Buffer | string | null }
  | { readonly type: 'array'; readonly value: readonly RespValue[] | null }
  /** RESP3 `%`; RESP2: a flat array of keys and values. */
  | { readonly type: 'map'; readonly value: readonly (readonly [RespValue, RespValue])[] }
  /** RESP3 `~`; RESP2: an array. */
  | { readonly type: 'set'; readonly value: readonly RespValue[] }
  /** RESP3 `#t`/`#f`; RESP2: the integer 1 or 0. */
  | { readonly type: 'boolean'; readonly value: boolean }
  /** RESP3 `,`; RESP2: a bulk string. */
  | { readonly type: 'double'; readonly value: number }
  /** RESP3 `_`; RESP2: a null bulk string. */
  | { readonly type: 'null' };

export type Output = (Buffer | string)[];

const CRLF = '\r\n';
const OK = '+OK\r\n';
const NULL2 = '$-1\r\n';
const NULL3 = '_\r\n';

export const simple = (value: string): RespValue => ({ type: 'simple', value: oneLine(value) });
export const integer = (value: number): RespValue => ({ type: 'integer', value });
export const bulk = (value: Buffer | string | null): RespValue => ({ type: 'bulk', value });
export const array = (value: readonly RespValue[] | null): RespValue => ({ type: 'array', value });
export const map = (entries: readonly (readonly [string, RespValue])[]): RespValue => ({
  type: 'map',
  value: entries.map(([k, v]) => [bulk(k), v] as const),
});

/** An error message on one line: CR and LF would end the reply early. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

export function writeOk(out: Output): void {
  out.push(OK);
}

export function writeSimple(out: Output, value: string): void {
  out.push(`+${oneLine(value)}${CRLF}`);
}

/** `-<CODE> <message>`: the code is the first word, which clients expose as the error's prefix. */
export function writeError(out: Output, code: string, message: string): void {
  out.push(`-${code} ${oneLine(message)}${CRLF}`);
}

export function writeInteger(out: Output, value: number): void {
  out.push(`:${value}${CRLF}`);
}

export function writeNull(out: Output, protocol: Protocol): void {
  out.push(protocol === 3 ? NULL3 : NULL2);
}

/** A bulk string; a Buffer is passed through as it is (no copy). */
export function writeBulk(out: Output, value: Buffer | string | null, protocol: Protocol): void {
  if (value === null) {
    writeNull(out, protocol);
    return;
  }
  if (typeof value === 'string') {
    out.push(`$${Buffer.byteLength(value)}${CRLF}`, Buffer.from(value, 'utf8'), CRLF);
    return;
  }
  out.push(`$${value.length}${CRLF}`, value, CRLF);
}

export function writeArrayHeader(out: Output, length: number): void {
  out.push(`*${length}${CRLF}`);
}

/** Any reply tree, in the connection's protocol. */
export function writeValue(out: Output, value: RespValue, protocol: Protocol): void {
  switch (value.type) {
    case 'simple':
      writeSimple(out, value.value);
      return;
    case 'error':
      writeError(out, value.code, value.message);
      return;
    case 'integer':
      writeInteger(out, value.value);
      return;
    case 'bulk':
      writeBulk(out, value.value, protocol);
      return;
    case 'null':
      writeNull(out, protocol);
      return;
    case 'array':
      if (value.value === null) {
        out.push(protocol === 3 ? NULL3 : '*-1\r\n');
        return;
      }
      writeArrayHeader(out, value.value.length);
      for (const item of value.value) writeValue(out, item, protocol);
      return;
    case 'set':
      out.push(`${protocol === 3 ? '~' : '*'}${value.value.length}${CRLF}`);
      for (const item of value.value) writeValue(out, item, protocol);
      return;
    case 'map':
      out.push(protocol === 3 ? `%${value.value.length}${CRLF}` : `*${value.value.length * 2}${CRLF}`);
      for (const [k, v] of value.value) {
        writeValue(out, k, protocol);
        writeValue(out, v, protocol);
      }
      return;
    case 'boolean':
      if (protocol === 3) out.push(value.value ? '#t\r\n' : '#f\r\n');
      else writeInteger(out, value.value ? 1 : 0);
      return;
    case 'double': {
      const text = Number.isNaN(value.value)
        ? 'nan'
        : value.value === Infinity
          ? 'inf'
          : value.value === -Infinity
            ? '-inf'
            : String(value.value);
      if (protocol === 3) out.push(`,${text}${CRLF}`);
      else writeBulk(out, text, protocol);
      return;
    }
  }
}

/** The output as one Buffer (tests, and small replies). */
export function toBuffer(out: Output): Buffer {
  return Buffer.concat(out.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c)));
}
