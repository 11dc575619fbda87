/**
 * A TCP delay line for `bench/latency.bench.ts`: accepts on LISTEN_HOST:LISTEN_PORT, connects each client to
 * TARGET_HOST:TARGET_PORT, and holds every chunk DELAY_US microseconds (from its arrival) before passing
 * it on, in both directions. The machine has no sch_netem, and timers have millisecond granularity: the
 * wait is Atomics.wait for all but the last 50 µs, then a spin on the high-resolution clock. The event
 * loop is blocked while a chunk is held, which is exact for one request in flight at a time (what the
 * bench sends) and would add queueing under concurrent load.
 *
 *   node --import tsx bench/delay-line.ts LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_US
 */
import { connect, createServer, type Socket } from 'node:net';

const [listenHost = '', listenPort = '', targetHost = '', targetPort = '', delayUs = '0'] = process.argv.slice(2);
const delayNs = BigInt(Math.round(Number(delayUs) * 1000));
const cell = new Int32Array(new SharedArrayBuffer(4));
const SPIN_NS = 50_000;

function holdUntil(due: bigint): void {
  for (;;) {
    const left = Number(due - process.hrtime.bigint());
    if (left <= 0) return;
    if (left > SPIN_NS) Atomics.wait(cell, 0, 0, (left - SPIN_NS) / 1e6);
  }
}

function pipe(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (delayNs > 0n) holdUntil(process.hrtime.bigint() + delayNs);
    to.write(chunk);
  });
  from.on('end', () => to.end());
  from.on('error', () => to.destroy());
  from.on('close', () => to.destroy());
}

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect({ host: targetHost, port: Number(targetPort) });
  upstream.setNoDelay(true);
  pipe(client, upstream);
  pipe(upstream, client);
});
server.listen({ host: listenHost, port: Number(listenPort) }, () => {
  process.stdout.write(`delay-line ${listenHost}:${listenPort} -> ${targetHost}:${targetPort} (${delayUs} us)\n`);
});
process.on('SIGTERM', () => process.exit(0));
