/**
 * The RESP front (`--listen-resp`): Redis-protocol listeners on TCP addresses and Unix sockets, sharing
 * one command backend with the HTTP routes. `start()` listens, `close()` stops accepting, lets every
 * connection answer the commands it already sent, then closes them (destroying any left after `graceMs`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { ListenAddress } from '../config-defaults.js';
import { formatListen } from '../config-values.js';
import { clearStaleSocket, listenUnix, netListen } from '../unix-socket.js';
import { COMMANDS, type RespBackend } from './resp-commands.js';
import { RespConnection } from './resp-connection.js';
import { createRespMetrics, type RespMetrics } from './resp-metrics.js';
import type { RespLimits } from './resp-parser.js';

/** Most arguments in one command: 1 Mi, as MGET/DEL/MSET of many keys need. */
export const RESP_MAX_ARGUMENTS = 1024 * 1024;
/** Longest inline command line or header: 64 KiB, as redis-server. */
export const RESP_MAX_INLINE_BYTES = 64 * 1024;
/** Bytes of arguments in one command beyond one largest value. */
export const RESP_COMMAND_SLACK_BYTES = 16 * 1024 * 1024;
/** Commands in flight per connection before it stops being read. */
export const RESP_MAX_PENDING = 1024;
/** A client stalled mid-command, or not reading its replies, this long is disconnected, ms. */
export const RESP_SLOW_CLIENT_MS = 30_000;

export interface RespServerOptions {
  addresses: readonly ListenAddress[];
  /** Permissions of the Unix sockets (`--socket-mode`). */
  socketMode: number;
  backend: RespBackend;
  log: FastifyBaseLogger;
  /** Overrides of the bounds (tests). */
  limits?: Partial<RespLimits>;
  maxPending?: number;
  slowClientMs?: number;
}

/** The parser bounds for a sidecar whose largest value is `maxValueBytes`. */
export function respLimits(maxValueBytes: number): RespLimits {
  return {
    maxBulkBytes: maxValueBytes,
    maxArrayLength: RESP_MAX_ARGUMENTS,
    maxInlineBytes: RESP_MAX_INLINE_BYTES,
    maxCommandBytes: maxValueBytes + RESP_COMMAND_SLACK_BYTES,
  };
}

export class RespServer {
  readonly metrics: RespMetrics;
  private readonly options: RespServerOptions;
  private readonly limits: RespLimits;
  private readonly servers: Server[] = [];
  private readonly connections = new Set<RespConnection>();
  private nextId = 1;
  private closing = false;

  constructor(options: RespServerOptions) {
    this.options = options;
    this.limits = { ...respLimits(options.backend.maxValueBytes), ...options.limits };
    this.metrics = createRespMetrics(options.backend.metrics.registry, COMMANDS.keys());
  }

  /** Listens on every address; on failure closes what was opened and throws. */
  async start(): Promise<void> {
    try {
      for (const address of this.options.addresses) {
        const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
        this.servers.push(server);
        if ('path' in address) {
          await clearStaleSocket(address.path);
          await listenUnix(address.path, this.options.socketMode, () => netListen(server, address));
        } else {
          await netListen(server, address);
        }
        this.options.log.info({ listenResp: this.describe(server, address) }, 'Started the RESP front');
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  /** Where each listener listens (a TCP port 0 resolved), in the order of `addresses`. */
  addresses(): ListenAddress[] {
    return this.servers.map((s, i) => {
      const a = s.address();
      if (a !== null && typeof a === 'object') return { host: a.address, port: a.port };
      return this.options.addresses[i] as ListenAddress;
    });
  }

  private describe(server: Server, fallback: ListenAddress): string {
    const a = server.address();
    return a !== null && typeof a === 'object'
      ? formatListen({ host: a.address, port: a.port })
      : formatListen(fallback);
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const connection = new RespConnection(socket, {
      backend: this.options.backend,
      limits: this.limits,
      metrics: this.metrics,
      log: this.options.log,
      maxPending: this.options.maxPending ?? RESP_MAX_PENDING,
      slowClientMs: this.options.slowClientMs ?? RESP_SLOW_CLIENT_MS,
      id: this.nextId++,
    });
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  /**
   * Stops listening (Unix socket files are removed), lets connections answer what they sent, then ends
   * them; any still open after `graceMs` is destroyed.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const stopped = Promise.all(
      this.servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))),
    );
    for (const c of this.connections) c.endWhenAnswered();
    const all = Promise.all([...this.connections].map((c) => c.closed));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([all, timedOut]);
    clearTimeout(timer);
    for (const c of this.connections) c.destroy();
    await stopped;
  }
}
