/**
 * One client connection of the RESP front: parses its bytes, runs its commands, writes the replies in
 * the order the commands came, and keeps what it holds bounded.
 *
 * Ordering: replies always come in command order (pipelining). Commands run as soon as they arrive,
 * except that a command naming a key waits for the connection's earlier commands on that key: a pipelined
 * `SET k v` then `GET k` reads v, as with redis-server. Commands on different keys may complete in any
 * order, as concurrent HTTP requests do (the write policies batch them). An L1 hit is answered at once,
 * without a promise.
 *
 * Writes: the replies of one received chunk's synchronous commands go out in one write at the chunk's
 * end; replies of commands that complete later go out in one write once the run of promise callbacks
 * that completed them ends (commands acknowledged by one journal append or one Redis reply complete in
 * the same run).
 *
 * Bounds: the parser's (bulk length, arguments, inline length, command size); at most `maxPending`
 * commands in flight (beyond that the socket is not read until half of them are answered) and no reading
 * while the socket's write buffer is full (a client that does not read its replies stops being read).
 * A client that stays in the middle of a command, or does not read its replies, for `slowClientMs` is
 * disconnected; an idle client between commands is not.
 *
 * Refused input (RespProtocolError) is answered with one error reply, after the replies of the commands
 * before it, and the connection is then closed. Nothing a client sends can throw out of this class.
 */
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { describeError, SidecarError } from '../errors.js';
import {
  COMMANDS,
  commandKeys,
  RespCommandError,
  respErrorPrefix,
  unknownCommandMessage,
  type RespBackend,
  type RespSession,
} from './resp-commands.js';
import { writeError, writeValue, type Output, type RespValue } from './resp-encoder.js';
import type { RespMetrics } from './resp-metrics.js';
import { RespProtocolError, RespRequestParser, type RespLimits } from './resp-parser.js';

export interface RespConnectionOptions {
  backend: RespBackend;
  limits: RespLimits;
  metrics: RespMetrics;
  log: FastifyBaseLogger;
  /** Commands in flight at most before the socket is paused. */
  maxPending: number;
  /** A client stalled mid-command or not reading its replies this long is disconnected, ms. */
  slowClientMs: number;
  id: number;
}

/** After the last reply of a closing connection: how long to wait for the client to close first, ms. */
const LINGER_MS = 5000;

interface Slot {
  out: Output | undefined;
}

export class RespConnection {
  readonly session: RespSession;
  private readonly socket: Socket;
  private readonly options: RespConnectionOptions;
  private readonly parser: RespRequestParser;
  /** Replies not yet written, in command order; `out` undefined while the command runs. */
  private readonly queue: Slot[] = [];
  private head = 0;
  /** Replies ready to write, gathered while a chunk is parsed and written at its end. */
  private batch: Output = [];
  private inData = false;
  /** A flush is queued for when the current promise callbacks have run (see {@link fill}). */
  private flushQueued = false;
  private readonly queuedFlush = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  /** Per key: the last in-flight command naming it (its completion). */
  private readonly inflight = new Map<string, Promise<void>>();
  /** No more commands are run (QUIT, refused input, shutdown): the queue is answered, then the socket ends. */
  private ending = false;
  private ended = false;
  private pausedForPending = false;
  private pausedForDrain = false;
  private closedResolve: (() => void) | undefined;
  readonly closed: Promise<void>;

  constructor(socket: Socket, options: RespConnectionOptions) {
    this.socket = socket;
    this.options = options;
    this.parser = new RespRequestParser(options.limits);
    this.session = {
      id: options.id,
      protocol: 2,
      name: '',
      libName: '',
      libVersion: '',
      authenticated: options.backend.password === undefined,
      remote: socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : 'unix',
      createdAt: Date.now(),
      closeAfterReply: false,
    };
    this.closed = new Promise((resolve) => {
      this.closedResolve = resolve;
    });
    options.metrics.connectionOpened();
    socket.setNoDelay(true);
    socket.setTimeout(options.slowClientMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.onTimeout());
    socket.on('drain', () => {
      if (this.pausedForDrain) {
        this.pausedForDrain = false;
        this.maybeResume();
      }
    });
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE')
        options.log.debug({ connection: this.session.id, error: err.message }, 'RESP connection error');
    });
    socket.on('end', () => {
      // The client finished sending: answer what it sent, then close.
      this.endWhenAnswered();
    });
    socket.on('close', () => {
      options.metrics.connectionClosed();
      this.ended = true;
      this.closedResolve?.();
    });
  }

  /** Stops taking commands; the connection ends once the commands it has are answered (shutdown). */
  endWhenAnswered(): void {
    this.ending = true;
    this.flushIfIdle();
  }

  /** Closes the connection now (shutdown timed out). */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.options.metrics.bytesReceived(chunk.length);
    if (this.ending) return;
    this.inData = true;
    try {
      this.parser.feed(chunk, (args) => this.dispatch(args));
    } catch (err) {
      this.refuse(err);
    } finally {
      this.inData = false;
    }
    this.flush();
  }

  /** Input the parser refused: one error reply after the earlier replies, then close. */
  private refuse(err: unknown): void {
    const protocolError = err instanceof RespProtocolError;
    const tooLarge = protocolError && err.tooLarge;
    const message = err instanceof Error ? err.message : String(err);
    this.options.metrics.closedOnError(tooLarge ? 'too-large' : 'malformed');
    // Labelled with the command it was reading when its name is known (e.g. a SET whose value is too large).
    const name = this.parser.partialCommandName?.toString('latin1').toLowerCase();
    this.options.metrics.command(
      name !== undefined && COMMANDS.has(name) ? name : 'unknown',
      tooLarge ? 'VALUE_TOO_LARGE' : 'ERR',
    );
    this.options.log.debug(
      { connection: this.session.id, reason: message },
      'Closing a RESP connection after input it could not accept',
    );
    const out: Output = [];
    if (tooLarge) writeError(out, 'VALUE_TOO_LARGE', message);
    else writeError(out, 'ERR', `Protocol error: ${message}`);
    this.reply(out);
    this.ending = true;
  }

  private dispatch(args: Buffer[]): void {
    if (this.ending) return;
    const name = (args[0] as Buffer).toString('latin1').toLowerCase();
    const spec = COMMANDS.get(name);
    const label = spec === undefined ? 'unknown' : name;
    let early: { prefix: string; message: string } | undefined;
    if (spec === undefined) early = { prefix: 'ERR', message: unknownCommandMessage(args) };
    else if (!this.session.authenticated && spec.noAuth !== true)
      early = { prefix: 'NOAUTH', message: 'Authentication required.' };
    else if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity)
      early = { prefix: 'ERR', message: `wrong number of arguments for '${name}' command` };
    if (early !== undefined || spec === undefined) {
      const out: Output = [];
      const e = early ?? { prefix: 'ERR', message: 'unknown command' };
      writeError(out, e.prefix, e.message);
      this.options.metrics.command(label, e.prefix);
      this.reply(out);
      return;
    }

    const keys = commandKeys(spec, args).map((k) => k.toString('latin1'));
    let waitFor: Promise<void>[] | undefined;
    for (const k of keys) {
      const prior = this.inflight.get(k);
      if (prior !== undefined) (waitFor ??= []).push(prior);
    }
    const run = (): RespValue | Promise<RespValue> => spec.run(this.options.backend, this.session, args);
    let result: RespValue | Promise<RespValue>;
    if (waitFor === undefined) {
      try {
        result = run();
      } catch (err) {
        this.reply(this.errorReply(label, err));
        return;
      }
      if (!(result instanceof Promise)) {
        this.options.metrics.command(label, 'ok');
        const out: Output = [];
        writeValue(out, result, this.session.protocol);
        this.reply(out);
        if (this.session.closeAfterReply) this.ending = true;
        return;
      }
    } else {
      result = Promise.all(waitFor).then(run);
    }

    // Asynchronous: a slot keeps the reply's place; later commands on the same keys wait for this one.
    const slot: Slot = { out: undefined };
    this.queue.push(slot);
    const done = result.then(
      (value) => {
        this.options.metrics.command(label, 'ok');
        const out: Output = [];
        writeValue(out, value, this.session.protocol);
        this.fill(slot, out);
      },
      (err: unknown) => this.fill(slot, this.errorReply(label, err)),
    );
    for (const k of keys) this.inflight.set(k, done);
    void done.then(() => {
      for (const k of keys) if (this.inflight.get(k) === done) this.inflight.delete(k);
    });
    if (this.queue.length - this.head >= this.options.maxPending && !this.pausedForPending) {
      this.pausedForPending = true;
      this.socket.pause();
    }
  }

  private errorReply(label: string, err: unknown): Output {
    const out: Output = [];
    if (err instanceof SidecarError) {
      const prefix = respErrorPrefix(err.code);
      if (err.statusCode >= 500)
        this.options.log.warn(
          { connection: this.session.id, command: label, error: describeError(err) },
          'Failed to serve a RESP command',
        );
      writeError(out, prefix, err.message);
      this.options.metrics.command(label, prefix);
    } else if (err instanceof RespCommandError) {
      writeError(out, err.prefix, err.message);
      this.options.metrics.command(label, err.prefix);
    } else {
      this.options.log.error(
        { connection: this.session.id, command: label, error: describeError(err) },
        'Failed to handle a RESP command',
      );
      writeError(out, 'INTERNAL', 'internal error');
      this.options.metrics.command(label, 'INTERNAL');
    }
    return out;
  }

  /** A reply in command order: written now if nothing before it is pending, else queued. */
  private reply(out: Output): void {
    if (this.queue.length === this.head) {
      for (const c of out) this.batch.push(c);
    } else {
      this.queue.push({ out });
    }
  }

  private fill(slot: Slot, out: Output): void {
    slot.out = out;
    while (this.head < this.queue.length) {
      const s = this.queue[this.head] as Slot;
      if (s.out === undefined) break;
      for (const c of s.out) this.batch.push(c);
      this.head++;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    // Commands that complete together (a pipeline's SETs acknowledged by one journal append resolve in one
    // run of promise callbacks) are written together: the flush waits for that run to end. A write per
    // reply cost a send syscall each, 14 % of the sidecar's CPU under pipelined write-back SETs.
    if (!this.inData && !this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.queuedFlush);
    }
    if (this.pausedForPending && this.queue.length - this.head <= this.options.maxPending / 2) {
      this.pausedForPending = false;
      this.maybeResume();
    }
  }

  private maybeResume(): void {
    if (!this.pausedForPending && !this.pausedForDrain && !this.ending) this.socket.resume();
  }

  /** Writes the gathered replies in one write; ends the socket when ending and nothing is left. */
  private flush(): void {
    const batch = this.batch;
    if (batch.length > 0 && !this.ended) {
      this.batch = [];
      let bytes = 0;
      let writable: boolean;
      if (batch.length === 1) {
        const c = batch[0] as Buffer | string;
        bytes = typeof c === 'string' ? Buffer.byteLength(c) : c.length;
        writable = this.socket.write(c);
      } else {
        const buffers = batch.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
        for (const b of buffers) bytes += b.length;
        writable = this.socket.write(Buffer.concat(buffers, bytes));
      }
      this.options.metrics.bytesSent(bytes);
      if (!writable && !this.pausedForDrain) {
        this.pausedForDrain = true;
        this.socket.pause();
      }
    }
    this.flushIfIdle();
  }

  private flushIfIdle(): void {
    if (!this.ending || this.ended || this.queue.length !== this.head || this.batch.length > 0) return;
    this.ended = true;
    this.socket.end();
    const linger = setTimeout(() => this.socket.destroy(), LINGER_MS);
    linger.unref();
    this.socket.once('close', () => clearTimeout(linger));
  }

  private onTimeout(): void {
    const midCommand = this.parser.midCommand;
    const notReading = this.socket.writableLength > 0;
    if (!midCommand && !notReading) return; // idle between commands: fine
    this.options.metrics.closedOnError('slow-client');
    this.options.log.info(
      { connection: this.session.id, midCommand, unsentBytes: this.socket.writableLength },
      'Closing a RESP connection whose client stalled',
    );
    this.socket.destroy();
  }
}
