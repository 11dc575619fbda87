/**
 * Real sidecar processes (`node --import tsx sidecar/src/main.ts`) on free loopback ports, with a small
 * HTTP client. Every process started here is remembered; call `stopAllSidecars()` in `afterAll` (it runs
 * even when tests fail), and a process-exit hook SIGKILLs anything left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CacheResponse {
  status: number;
  body: string;
  /** `X-Cache`: L1, L1-STALE or L2 (undefined on errors). */
  tier: string | undefined;
  contentType: string | undefined;
  /** The error code of a JSON error body. */
  code: string | undefined;
  /** Wall time of the request, ms. */
  ms: number;
}

export interface SidecarProcess {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  get(key: string, timeoutMs?: number): Promise<CacheResponse>;
  put(
    key: string,
    value: string | Buffer,
    options?: { ttl?: number; contentType?: string; timeoutMs?: number },
  ): Promise<CacheResponse>;
  del(key: string): Promise<CacheResponse>;
  invalidate(body: unknown): Promise<CacheResponse>;
  readyz(): Promise<{ status: number; body: Record<string, unknown> }>;
  metrics(): Promise<string>;
  /** The value of one sample, e.g. metric('ripplecache_sidecar_l1_drops_total', { reason: 'sequence-gap' }). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** The process's recent output (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends a signal and resolves with the exit code once the process exits. */
  signal(sig: NodeJS.Signals): Promise<number | null>;
  stop(): Promise<void>;
}

export interface SidecarOptions {
  name?: string;
  /** Flags after `--listen` (which the harness sets). */
  args?: string[];
  env?: Record<string, string>;
  /** Wait for /readyz (default) or only /healthz before resolving. */
  wait?: 'readyz' | 'healthz' | 'none';
  /** The source tree to run `sidecar/src/main.ts` from (default this one; benches compare another build). */
  root?: string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('%2F');
}

async function toResponse(res: Response, started: number): Promise<CacheResponse> {
  const body = await res.text();
  let code: string | undefined;
  if (res.headers.get('content-type')?.startsWith('application/json')) {
    try {
      code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
    } catch {
      code = undefined;
    }
  }
  return {
    status: res.status,
    body,
    tier: res.headers.get('x-cache') ?? undefined,
    contentType: res.headers.get('content-type') ?? undefined,
    code,
    ms: performance.now() - started,
  };
}

export async function startSidecar(options: SidecarOptions = {}): Promise<SidecarProcess> {
  const port = await freePort();
  const name = options.name ?? `sidecar-${port}`;
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'sidecar/src/main.ts', '--listen', `127.0.0.1:${port}`, ...(options.args ?? [])],
    {
      cwd: options.root ?? REPO_ROOT,
      env: { ...process.env, RIPPLECACHE_LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
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

  const request = async (
    method: string,
    path: string,
    body?: string | Buffer,
    headers?: Record<string, string>,
    timeoutMs = 10_000,
  ) => {
    const started = performance.now();
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined ? {} : { body }),
      ...(headers ? { headers } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return toResponse(res, started);
  };

  const sidecar: SidecarProcess = {
    name,
    port,
    url,
    get pid() {
      return child.pid ?? -1;
    },
    get: (key, timeoutMs) => request('GET', `/v1/cache/${encodeKey(key)}`, undefined, undefined, timeoutMs),
    put: (key, value, o = {}) =>
      request(
        'PUT',
        `/v1/cache/${encodeKey(key)}${o.ttl !== undefined ? `?ttl=${o.ttl}` : ''}`,
        value,
        { 'content-type': o.contentType ?? 'text/plain' },
        o.timeoutMs,
      ),
    del: (key) => request('DELETE', `/v1/cache/${encodeKey(key)}`),
    invalidate: (body) =>
      request('POST', '/v1/invalidate', JSON.stringify(body), { 'content-type': 'application/json' }),
    readyz: async () => {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    metrics: async () => (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text(),
    metric: async (metricName, labels = {}) => {
      const text = await sidecar.metrics();
      const want = Object.entries(labels);
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== metricName) continue;
        const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (want.every(([k, v]) => have.get(k) === v)) return Number(m[3]);
      }
      return 0;
    },
    // Generous: a sidecar started with tsx on a loaded 2-core machine can take tens of seconds.
    waitReady: (timeoutMs = 60_000) =>
      waitFor(
        `${name} /readyz`,
        async () => {
          if (child.exitCode !== null)
            throw new Error(`${name} exited with code ${child.exitCode}:\n${lines.join('\n')}`);
          return (await sidecar.readyz()).status === 200;
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
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };

  const wait = options.wait ?? 'readyz';
  const ready =
    wait === 'readyz'
      ? sidecar.waitReady()
      : wait === 'healthz'
        ? waitFor(
            `${name} /healthz`,
            async () => (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok,
            20_000,
            50,
          )
        : Promise.resolve();
  // Stop waiting as soon as the process exits.
  const died = exited.then((code) => {
    throw new Error(`${name} exited with code ${code} before it was ready:\n${lines.slice(-30).join('\n')}`);
  });
  try {
    await Promise.race([ready, died]);
  } catch (err) {
    await sidecar.stop();
    throw err instanceof Error && err.message.includes('exited with code')
      ? err
      : new Error(`${name} did not start:\n${lines.slice(-30).join('\n')}`, { cause: err });
  }
  died.catch(() => {});
  return sidecar;
}

/** Stops every sidecar this process started (for afterAll). */
export async function stopAllSidecars(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }),
  );
  running.clear();
}
