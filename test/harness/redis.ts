import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

/** A real `redis-server` process on a loopback port, standing in for one Redis pod. */
export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** SIGKILLs the process (simulates a crashed pod); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  /** Starts the process again on the same port and data dir; `extraArgs` come after (and so override) the others. */
  start(extraArgs?: string[]): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** Extra `redis-server` arguments, e.g. ['--replicaof', '127.0.0.1', '6379']. */
  args?: string[];
  port?: number;
  password?: string;
}

/** Sends one inline command over a raw socket; used only to probe readiness without a client library. */
async function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('error', () => resolve(false));
    sock.on('connect', () => {
      if (password) sock.write(`AUTH ${password}\r\n`);
      sock.write('PING\r\n');
    });
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('PONG')) {
        sock.destroy();
        resolve(true);
      } else if (buf.includes('-')) {
        sock.destroy();
        resolve(false);
      }
    });
  });
}

/** Starts `redis-server` (from Debian's package) with persistence off on a free loopback port. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisProcess> {
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), `ripplecache-redis-${port}-`));
  let child: ChildProcess | undefined;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    ...(opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : []),
    ...(opts.args ?? []),
  ];

  const launch = async (extraArgs: string[] = []) => {
    const all = [...args, ...extraArgs];
    child = spawn('redis-server', all, { stdio: ['ignore', 'ignore', 'inherit'] });
    const c = child;
    // The password it runs with: the last `--requirepass` (a restart may bring another one, e.g. a rotated Secret's).
    const at = all.lastIndexOf('--requirepass');
    const password = at >= 0 ? all[at + 1] : undefined;
    await waitFor(
      `redis-server on port ${port}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`redis-server exited with code ${c.exitCode}`);
        return ping(port, password);
      },
      15_000,
      50,
    );
  };
  const terminate = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    port,
    url: opts.password
      ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? -1;
    },
    kill: () => terminate('SIGKILL'),
    start: (extraArgs?: string[]) => launch(extraArgs),
    stop: async () => {
      await terminate('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
