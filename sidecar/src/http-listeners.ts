/**
 * The HTTP API on every `--listen` address: the first TCP address is fastify's own listener; every other
 * address (more TCP addresses, Unix sockets) is a plain `net.Server` handing its connections to the same
 * HTTP server, so that every listener serves the same routes with the same timeouts and limits. Unix
 * sockets get `--socket-mode` and replace a stale socket file (unix-socket.ts).
 */
import { createServer, type Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from './config-defaults.js';
import { formatListen } from './config-values.js';
import { clearStaleSocket, listenUnix, netListen } from './unix-socket.js';

export interface HttpListeners {
  /** Where each address listens (a TCP port 0 resolved), in the order given. */
  readonly addresses: ListenAddress[];
  /** Stops the extra listeners (Unix socket files are removed); fastify's own closes with `app.close()`. */
  close(): Promise<void>;
}

export async function listenHttp(
  app: FastifyInstance,
  addresses: readonly ListenAddress[],
  socketMode: number,
): Promise<HttpListeners> {
  const extra: Server[] = [];
  const bound: ListenAddress[] = [];
  const close = () =>
    Promise.all(
      extra.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))),
    ).then(() => undefined);
  const primary = addresses.findIndex((a) => !('path' in a));
  try {
    if (primary >= 0) {
      const a = addresses[primary] as { host: string; port: number };
      await app.listen({ host: a.host, port: a.port });
    } else {
      await app.ready();
    }
    for (const [i, address] of addresses.entries()) {
      if (i === primary) {
        const a = app.server.address();
        bound.push(a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : address);
        continue;
      }
      const server = createServer((socket) => app.server.emit('connection', socket));
      extra.push(server);
      if ('path' in address) {
        await clearStaleSocket(address.path);
        await listenUnix(address.path, socketMode, () => netListen(server, address));
        bound.push(address);
      } else {
        await netListen(server, address);
        const a = server.address();
        bound.push(a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : address);
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  app.log.info({ listen: bound.map(formatListen) }, 'Started the HTTP API');
  return { addresses: bound, close };
}
