/**
 * Real bridge processes (`node --import tsx sidecar/src/bridge/main.ts`) on free loopback ports. Every
 * process started here is remembered; call `stopAllBridges()` in `afterAll`, and a process-exit hook
 * SIGKILLs anything left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BridgePeerStatus {
  name: string;
  up: boolean;
  repairPending?: string;
  lastError?: string;
  repairs: number;
  relayedKeys: number;
}

export interface BridgeProcess {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  peers(): Promise<{ subscribed: boolean; peers: BridgePeerStatus[] }>;
  /** The sum of every sample of `name` whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** /readyz is 200: subscribed, every peer reachable and repaired. */
  waitReady(timeoutMs?: number): Promise<void>;
  output(): string;
  /** Sends a signal; resolves with the exit code once the process exits (SIGKILL, SIGTERM). */
  signal(sig: NodeJS.Signals): Promise<number | null>;
  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  kill(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export interface BridgeOptions {
  /** Flags after `--listen` (which the harness sets). */
  args: string[];
  env?: Record<string, string>;
  /** Wait for /readyz (default) or only /healthz. */
  wait?: 'readyz' | 'healthz';
  port?: number;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startBridge(options: BridgeOptions): Promise<BridgeProcess> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'sidecar/src/bridge/main.ts', '--listen', `127.0.0.1:${port}`, ...options.args],
    { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) lines.push(line);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const get = async (path: string) => {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, text: await res.text() };
  };
  const bridge: BridgeProcess = {
    port,
    url,
    get pid() {
      return child.pid ?? -1;
    },
    peers: async () => JSON.parse((await get('/v1/peers')).text),
    metric: async (metricName, labels = {}) => {
      const { text } = await get('/metrics');
      const want = Object.entries(labels);
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== metricName) continue;
        const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (want.every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
      }
      return sum;
    },
    waitReady: (timeoutMs = 30_000) =>
      waitFor(
        `bridge on ${port} /readyz`,
        async () => {
          if (child.exitCode !== null)
            throw new Error(`bridge exited with code ${child.exitCode}:\n${lines.join('\n')}`);
          return (await get('/readyz')).status === 200;
        },
        timeoutMs,
        50,
      ),
    output: () => lines.join('\n'),
    signal: async (sig) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(sig);
      return exited;
    },
    kill: (sig) => {
      child.kill(sig);
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
  const ready =
    options.wait === 'healthz'
      ? waitFor(`bridge on ${port} /healthz`, async () => (await get('/healthz')).status === 200, 30_000, 50)
      : bridge.waitReady();
  const died = exited.then((code) => {
    throw new Error(`bridge exited with code ${code} before it was ready:\n${lines.slice(-30).join('\n')}`);
  });
  try {
    await Promise.race([ready, died]);
  } catch (err) {
    await bridge.stop();
    throw err instanceof Error && err.message.includes('exited with code')
      ? err
      : new Error(`bridge did not start:\n${lines.slice(-30).join('\n')}`, { cause: err });
  }
  died.catch(() => {});
  return bridge;
}

/** Stops every bridge this process started (for afterAll). */
export async function stopAllBridges(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }),
  );
  running.clear();
}
