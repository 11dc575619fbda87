import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The lowest port the kernel hands out to outgoing connections and `listen(0)`
 * (`net.ipv4.ip_local_port_range`). Ports below it are never taken implicitly, so a port picked there
 * can only be lost to another process that asked for it by number.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const PICK_LOW = 10_000;
const PICK_HIGH = ephemeralLow() - 1;

async function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago. It is picked at random below the kernel's
 * ephemeral range: a port the OS picked with `listen(0)` could be handed, a moment later, to any outgoing
 * connection on the machine (a Redis client, the API server's watch), which made `EADDRINUSE` races when
 * several test files ran at once. Below that range only another explicit bind can take it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW + 1));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free TCP port found on 127.0.0.1 in ${PICK_LOW}-${PICK_HIGH} after 50 attempts`);
}

/**
 * A free port whose Redis Cluster bus port (the port + 10000, Redis' default offset, which the operator's pods
 * use) is free too.
 */
export async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port + 10_000 <= 65_535 && (await bindable(port + 10_000))) return port;
  }
  throw new Error('no free TCP port with a free cluster bus port (+10000) found on 127.0.0.1 after 50 attempts');
}

/** Polls `check` until it resolves true or `timeoutMs` passes; throws with `what` on timeout. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
}
