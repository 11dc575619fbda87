/**
 * Listening on Unix domain sockets (`--listen unix:/path`, `--listen-resp unix:/path`): a stale socket
 * file left by a process that died is removed, a live one (another process listening) or a file that is
 * not a socket is an error; the socket is created with `--socket-mode` permissions (under a umask, so no
 * broader mode is ever visible) and removed again when the server closes (Node unlinks it).
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, type Server } from 'node:net';

/** The socket file exists and something accepts connections on it. */
export class SocketInUseError extends Error {
  override readonly name = 'SocketInUseError';
  readonly code = 'SocketInUse';
}

/** Resolves true when something accepts a connection on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    const done = (result: boolean) => {
      probe.destroy();
      resolve(result);
    };
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
    probe.setTimeout(1000, () => done(true));
  });
}

/**
 * Makes `path` free to listen on: nothing there, or a socket nobody listens on (removed). Throws
 * {@link SocketInUseError} when another process listens there, or when the path is not a socket.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new SocketInUseError(`${path} exists and is not a socket; not replacing it`);
  if (await answers(path)) throw new SocketInUseError(`${path} is in use: another process listens on it`);
  unlinkSync(path);
}

/**
 * Listens on the Unix socket `path` with permissions `mode` (e.g. 0o660). Call {@link clearStaleSocket}
 * first. `listen` is the server's own listen call (fastify's, or a net.Server's).
 */
export async function listenUnix(path: string, mode: number, listen: () => Promise<unknown>): Promise<void> {
  // The socket is created inside listen(), synchronously: the umask keeps it from ever having more bits.
  const previous = process.umask(0o777 & ~mode);
  let listening: Promise<unknown>;
  try {
    listening = listen();
  } finally {
    process.umask(previous);
  }
  await listening;
  chmodSync(path, mode);
}

/** `server.listen({ path })` as a promise. */
export function netListen(server: Server, options: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
