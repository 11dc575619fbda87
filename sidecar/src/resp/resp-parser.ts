/**
 * The request side of RESP: turns the bytes a Redis client sends into commands (arrays of byte strings).
 * Pure and incremental: feed it chunks as they arrive, split anywhere; it calls back once per complete
 * command, in order. Arguments are views into the chunks fed where they fit in one (no copy; chunks must
 * not be changed afterwards, which Node's sockets never do) and copies where they span chunks. Every buffer it keeps is bounded (see {@link RespLimits}); input it cannot accept
 * throws {@link RespProtocolError} and the parser must not be fed again (the connection is closed).
 *
 * A request is either a multibulk (`*<n>\r\n` then n times `$<len>\r\n<len bytes>\r\n`, what every client
 * library sends) or an inline command (a line of words separated by spaces, what `telnet` and some probes
 * send; `"…"` and `'…'` quote a word with spaces, as redis-server's inline parser does). `*0` and `*-1`
 * are empty requests and are skipped, as redis-server does. Nested arrays and any other RESP type inside a
 * request are protocol errors (requests hold only bulk strings), so nesting depth is not a concern.
 *
 * Why our own: redis-parser (last release 2017) and the decoders inside ioredis 6 and node-redis
 * (`@redis/client`) decode replies, not requests: they have no inline commands, accept any bulk or array
 * length a peer announces (a `$536870912` header makes them wait for, and buffer, 512 MiB), and are not
 * part of those packages' public APIs. A request parser is this small subset of RESP with bounds; its cost
 * is measured against node-redis' decoder in `bench/latency.bench.ts` (README "Benchmarks").
 */

/** Bounds on what one connection may make the parser hold. */
export interface RespLimits {
  /** Longest bulk string (an argument: key or value): the sidecar's `--max-value-bytes`. */
  maxBulkBytes: number;
  /** Most arguments in one command (command name included). */
  maxArrayLength: number;
  /** Longest inline command line, and longest `*`/`$` header line. */
  maxInlineBytes: number;
  /** Most bytes of arguments in one command (sum of its bulk strings). */
  maxCommandBytes: number;
}

/** Longest header line (`*<n>` / `$<len>`) worth reading: a sign and 19 digits. */
const MAX_HEADER_DIGITS = 20;
const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);

/**
 * Input the parser refuses. `tooLarge`: a bulk string longer than the value limit (answered
 * `-VALUE_TOO_LARGE`); otherwise a malformed frame (answered `-ERR Protocol error: …`).
 */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

export type CommandHandler = (args: Buffer[]) => void;

export class RespRequestParser {
  private readonly limits: RespLimits;
  /** The unterminated line so far (header or inline command), or undefined when none. */
  private line: Buffer[] = [];
  private lineLength = 0;
  /** Arguments of the multibulk command being read; undefined between commands. */
  private args: Buffer[] | undefined;
  /** Arguments still to come in the current multibulk command. */
  private remaining = 0;
  private commandBytes = 0;
  /** The bulk string being filled across chunks (its length + 2 for the CRLF), or undefined. */
  private bulk: Buffer | undefined;
  private bulkFilled = 0;
  /** After a bulk string's bytes: how many bytes of its CRLF are still to be checked. */
  private crlfLeft = 0;
  private failed = false;

  constructor(limits: RespLimits) {
    this.limits = limits;
  }

  /** Bytes held for an incomplete command (a partial line, the arguments read so far). */
  get pendingBytes(): number {
    return this.lineLength + this.commandBytes + this.bulkFilled;
  }

  /** The first argument (the command's name) of the multibulk command being read, once it has arrived. */
  get partialCommandName(): Buffer | undefined {
    return this.args?.[0];
  }

  /** True when the parser holds part of a command (the client is in the middle of sending one). */
  get midCommand(): boolean {
    return this.lineLength > 0 || this.args !== undefined || this.crlfLeft > 0;
  }

  /**
   * Parses `chunk`, calling `onCommand` for every command it completes. Throws RespProtocolError on
   * input it refuses; commands completed earlier in the chunk have been delivered by then.
   */
  feed(chunk: Buffer, onCommand: CommandHandler): void {
    if (this.failed) throw new RespProtocolError('the parser already failed');
    try {
      this.parse(chunk, onCommand);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private parse(chunk: Buffer, onCommand: CommandHandler): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      // The CRLF after a bulk string.
      if (this.crlfLeft > 0) {
        const expected = this.crlfLeft === 2 ? CR : LF;
        if (chunk[i] !== expected) throw new RespProtocolError('expected CRLF after a bulk string');
        i++;
        if (--this.crlfLeft === 0) this.argumentDone(onCommand);
        continue;
      }
      // The bytes of a bulk string that spans chunks.
      if (this.bulk !== undefined) {
        const take = Math.min(this.bulk.length - this.bulkFilled, n - i);
        chunk.copy(this.bulk, this.bulkFilled, i, i + take);
        this.bulkFilled += take;
        i += take;
        if (this.bulkFilled === this.bulk.length) {
          (this.args as Buffer[]).push(this.bulk);
          this.bulk = undefined;
          this.bulkFilled = 0;
          this.crlfLeft = 2;
        }
        continue;
      }
      // A line: a header or an inline command. Read in place (no view) when it is whole in this chunk.
      const nl = chunk.indexOf(LF, i);
      if (nl === -1) {
        this.holdLine(chunk.subarray(i));
        return;
      }
      let src = chunk;
      let start = i;
      let end = nl;
      if (this.lineLength > 0) {
        this.holdLine(chunk.subarray(i, nl));
        src = Buffer.concat(this.line, this.lineLength);
        this.line = [];
        this.lineLength = 0;
        start = 0;
        end = src.length;
      } else if (end - start > this.limits.maxInlineBytes) {
        throw this.lineTooLong();
      }
      i = nl + 1;
      const args = this.args;
      if (args === undefined) {
        if (src[start] === 0x2a /* '*' */) {
          const count = parseHeaderInteger(src, start, end, 'invalid multibulk length');
          if (count <= 0) continue; // `*0`, `*-1`: nothing to do
          if (count > this.limits.maxArrayLength) throw this.tooManyArguments();
          this.args = [];
          this.remaining = count;
          this.commandBytes = 0;
        } else {
          const words = splitInline(src.subarray(start, end));
          if (words.length > this.limits.maxArrayLength) throw this.tooManyArguments();
          if (words.length > 0) onCommand(words);
        }
        continue;
      }
      // Inside a multibulk: a `$<len>` header.
      if (src[start] !== 0x24 /* '$' */) {
        throw new RespProtocolError(`expected '$', got '${printable(src[start])}'`);
      }
      const len = parseHeaderInteger(src, start, end, 'invalid bulk length');
      if (len < 0) throw new RespProtocolError('invalid bulk length');
      if (len > this.limits.maxBulkBytes) {
        throw new RespProtocolError(
          `a bulk string of ${len} bytes is larger than the limit of ${this.limits.maxBulkBytes} bytes`,
          true,
        );
      }
      this.commandBytes += len;
      if (this.commandBytes > this.limits.maxCommandBytes) {
        throw new RespProtocolError(`the command is larger than the limit of ${this.limits.maxCommandBytes} bytes`);
      }
      if (n - i >= len + 2) {
        // The whole string and its CRLF are in this chunk: a view, no copy.
        if (chunk[i + len] !== CR || chunk[i + len + 1] !== LF) {
          throw new RespProtocolError('expected CRLF after a bulk string');
        }
        args.push(chunk.subarray(i, i + len));
        i += len + 2;
        this.argumentDone(onCommand);
      } else if (len === 0) {
        args.push(EMPTY);
        this.crlfLeft = 2;
      } else {
        this.bulk = Buffer.allocUnsafe(len);
        this.bulkFilled = 0;
      }
    }
  }

  private argumentDone(onCommand: CommandHandler): void {
    if (--this.remaining > 0) return;
    const args = this.args as Buffer[];
    this.args = undefined;
    this.commandBytes = 0;
    onCommand(args);
  }

  private holdLine(part: Buffer): void {
    this.lineLength += part.length;
    if (this.lineLength > this.limits.maxInlineBytes) throw this.lineTooLong();
    // A copy: the chunk it comes from may be large and is otherwise released.
    if (part.length > 0) this.line.push(Buffer.from(part));
  }

  private lineTooLong(): RespProtocolError {
    return new RespProtocolError(
      this.args === undefined
        ? `an inline command or header is longer than ${this.limits.maxInlineBytes} bytes`
        : `a bulk length header is longer than ${this.limits.maxInlineBytes} bytes`,
    );
  }

  private tooManyArguments(): RespProtocolError {
    return new RespProtocolError(`a command has more than ${this.limits.maxArrayLength} arguments`);
  }
}

/**
 * Parses the header line `src[start..end)` (`*<n>\r` or `$<n>\r`, the `\n` at `end` excluded): an optional
 * `-` and decimal digits after the type byte, then CR.
 */
function parseHeaderInteger(src: Buffer, start: number, end: number, problem: string): number {
  const last = end - 1;
  if (last - start < 2 || src[last] !== CR || last - start - 1 > MAX_HEADER_DIGITS)
    throw new RespProtocolError(problem);
  let i = start + 1;
  let negative = false;
  if (src[i] === 0x2d /* '-' */) {
    negative = true;
    i++;
    if (i === last) throw new RespProtocolError(problem);
  }
  let value = 0;
  for (; i < last; i++) {
    const d = (src[i] as number) - 0x30;
    if (d < 0 || d > 9) throw new RespProtocolError(problem);
    value = value * 10 + d;
  }
  if (!Number.isSafeInteger(value)) throw new RespProtocolError(problem);
  return negative ? -value : value;
}

function printable(byte: number | undefined): string {
  if (byte === undefined) return '';
  return byte >= 0x20 && byte < 0x7f && byte !== 0x27
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, '0')}`;
}

const SPACE = new Set([0x20, 0x09, 0x0d, 0x0b, 0x0c]);

/**
 * Splits an inline command into words: separated by spaces or tabs; `"…"` (with `\\`, `\"`, `\n`, `\r`,
 * `\t`, `\xHH` escapes) and `'…'` (with `\'`) quote a word, as redis-server's `sdssplitargs`. An
 * unbalanced quote is a protocol error.
 */
export function splitInline(line: Buffer): Buffer[] {
  const words: Buffer[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && SPACE.has(line[i] as number)) i++;
    if (i >= n) break;
    const quote = line[i];
    if (quote === 0x22 || quote === 0x27) {
      const bytes: number[] = [];
      i++;
      let closed = false;
      while (i < n) {
        const c = line[i] as number;
        if (c === 0x5c /* '\' */ && i + 1 < n) {
          const next = line[i + 1] as number;
          if (quote === 0x22) {
            const hex = next === 0x78 && i + 3 < n ? line.subarray(i + 2, i + 4).toString('latin1') : '';
            if (/^[0-9a-fA-F]{2}$/.test(hex)) {
              bytes.push(parseInt(hex, 16));
              i += 4;
              continue;
            }
            bytes.push(
              next === 0x6e
                ? LF
                : next === 0x72
                  ? CR
                  : next === 0x74
                    ? 9
                    : next === 0x62
                      ? 8
                      : next === 0x61
                        ? 7
                        : next,
            );
            i += 2;
            continue;
          }
          if (next === 0x27) {
            bytes.push(0x27);
            i += 2;
            continue;
          }
        }
        if (c === quote) {
          closed = true;
          i++;
          break;
        }
        bytes.push(c);
        i++;
      }
      // The closing quote must end the word.
      if (!closed || (i < n && !SPACE.has(line[i] as number))) {
        throw new RespProtocolError('unbalanced quotes in request');
      }
      words.push(Buffer.from(bytes));
      continue;
    }
    const start = i;
    while (i < n && !SPACE.has(line[i] as number)) i++;
    words.push(Buffer.from(line.subarray(start, i)));
  }
  return words;
}
