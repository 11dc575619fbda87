import { createServer, connect, type Server, type Socket } from 'node:net';

/** One chunk a client sent through the proxy, with the time (Date.now()) it reached the proxy. */
export interface ProxiedChunk {
  /** Connection number (1, 2, ...) in accept order. */
  conn: number;
  at: number;
  data: Buffer;
}

/**
 * A loopback TCP proxy the test controls, to partition one process from a server without touching either:
 * `freeze()` stops forwarding in both directions but closes nothing (established connections hang, as
 * behind a dead link; new connections are accepted and then hang too), `thaw()` resumes. `holdNext()`
 * makes the next connection a silently dead one (accepted, never forwarded, never closed) while all others
 * flow, like one TCP connection lost in a NAT or load balancer; `freezeEstablished()` does that to every
 * connection open now (new ones flow). With
 * `record: true` it keeps every client → server chunk with its arrival time, so a test can tell which
 * commands one client sent and when. `retarget()` sends new connections to another server (a Service whose
 * endpoint moved, e.g. after a failover); established ones stay where they are until they close.
 */
export interface TcpProxy {
  readonly port: number;
  readonly frozen: boolean;
  freeze(): void;
  thaw(): void;
  /** The next accepted connection hangs forever (until `close`); later ones are forwarded. */
  holdNext(): void;
  /** Every connection open now hangs forever (until `close`; `thaw` leaves them dead); new ones are forwarded. */
  freezeEstablished(): void;
  /** New connections go to `target` from now on; established connections are left alone. */
  retarget(target: { host: string; port: number }): void;
  /** Connections held by `holdNext` so far. */
  readonly held: number;
  /** Client connections accepted so far (held ones included). */
  readonly accepted: number;
  /** Client → server chunks so far (only with `record`). */
  sent(): ProxiedChunk[];
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, opts: { record?: boolean } = {}) {
  let frozen = false;
  let current = target;
  let holdNext = false;
  let held = 0;
  let conns = 0;
  const chunks: ProxiedChunk[] = [];
  const sockets = new Set<Socket>();
  /** Sockets `freezeEstablished` killed: `thaw` must not revive them. */
  const dead = new Set<Socket>();
  /** Connections accepted while frozen: they get their upstream on thaw. */
  const pending: Array<() => void> = [];

  const server: Server = createServer((client) => {
    const conn = ++conns;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    if (holdNext) {
      holdNext = false;
      held++;
      return;
    }
    const open = () => {
      const upstream = connect(current.port, current.host);
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.on('data', (d: Buffer) => {
        if (opts.record) chunks.push({ conn, at: Date.now(), data: Buffer.from(d) });
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => client.write(d));
      if (frozen) upstream.pause();
      else client.resume();
    };
    if (frozen) pending.push(open);
    else open();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('tcp proxy: no port');

  const proxy: TcpProxy = {
    port: addr.port,
    get frozen() {
      return frozen;
    },
    freeze() {
      frozen = true;
      // Paused sockets read nothing more: what is in flight stays in the kernel buffers, undelivered.
      for (const s of sockets) s.pause();
    },
    holdNext() {
      holdNext = true;
    },
    freezeEstablished() {
      for (const s of sockets) {
        s.pause();
        dead.add(s);
      }
    },
    retarget(next) {
      current = next;
    },
    get held() {
      return held;
    },
    get accepted() {
      return conns;
    },
    thaw() {
      frozen = false;
      for (const s of sockets) if (!dead.has(s)) s.resume();
      for (const open of pending.splice(0)) open();
    },
    sent: () => chunks.slice(),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
