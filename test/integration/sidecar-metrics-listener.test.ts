/**
 * The sidecar's second listener (`--metrics-listen`) in a real sidecar process in front of a real
 * redis-server: /metrics, /healthz and /readyz on the metrics port (bound to 0.0.0.0, as injected pods run
 * it), from the same registry and readiness as the API port; nothing of the cache API there; closed with
 * the rest on SIGTERM; bad or unusable addresses end the process with exit codes 2 and 1.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';
import { repoRoot } from '../harness/tools.js';

const CHANNEL = 'ripplecache:it-metrics-listener';
let primary: RedisProcess;
let redis: Redis;
let S: SidecarProcess;
let metricsPort: number;
let metricsUrl: string;

beforeAll(async () => {
  primary = await startRedis();
  redis = new Redis(primary.port, '127.0.0.1');
  metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}`;
  S = await startSidecar({
    name: 'S',
    args: [
      '--redis',
      primary.url,
      '--channel',
      CHANNEL,
      '--metrics-listen',
      `0.0.0.0:${metricsPort}`,
      '--cache-cluster',
      'it-metrics',
    ],
  });
}, 60_000);

afterAll(async () => {
  await stopAllSidecars();
  redis?.disconnect();
  await primary?.stop();
});

async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string; json: any; contentType: string | null }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, contentType: res.headers.get('content-type') };
}

/** One sample of the Prometheus text, e.g. sample(text, 'ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' }). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Runs the sidecar to its exit; resolves with the exit code and its output. */
function runToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'sidecar/src/main.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, RIPPLECACHE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the sidecar did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('sidecar metrics listener', () => {
  it('serves /metrics on the second port, from the registry the API port records into', async () => {
    expect((await S.put('m1', 'v1', { ttl: 600 })).status).toBe(204);
    await waitFor('m1 in L1', async () => (await S.get('m1')).tier === 'L1', 5000, 5);
    const r = await call(`${metricsUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(r.text, 'ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(sample(r.text, 'ripplecache_sidecar_redis_up')).toBe(1);
    expect(sample(r.text, 'ripplecache_sidecar_invalidation_subscribed')).toBe(1);
    expect(sample(r.text, 'ripplecache_sidecar_invalidation_gaps_total')).toBe(0);
    expect(r.text).toContain('process_cpu_seconds_total');
    expect(sample(r.text, 'ripplecache_sidecar_requests_total', { operation: 'get', tier: 'l1', outcome: 'hit' })).toBe(
      sample(r.text, 'ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' }),
    );
    // The API port serves the same registry.
    expect(sample(await S.metrics(), 'ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' })).toBe(
      sample(r.text, 'ripplecache_sidecar_requests_total', { tier: 'l1', outcome: 'hit' }),
    );
  });

  it('labels every series with the CacheCluster (--cache-cluster) and exports the build info', async () => {
    const text = (await call(`${metricsUrl}/metrics`)).text;
    const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(50);
    for (const line of samples) expect(line).toMatch(/[{,]cachecluster="it-metrics"[,}]/);
    // The write-back backlog is cluster-wide: with the label, the alerts aggregate it per CacheCluster.
    expect(sample(text, 'ripplecache_sidecar_writeback_pending', { cachecluster: 'it-metrics' })).toBe(0);
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(
      sample(text, 'ripplecache_sidecar_build_info', {
        version,
        node_version: process.versions.node,
        cachecluster: 'it-metrics',
      }),
    ).toBe(1);
    // The standard Node.js names, no prefix.
    expect(sample(text, 'nodejs_heap_size_used_bytes', { cachecluster: 'it-metrics' })).toBeGreaterThan(0);
    expect(text).not.toMatch(/^ripplecache_sidecar_process_/m);
  });

  it("serves /healthz and /readyz with the API port's readiness", async () => {
    expect((await call(`${metricsUrl}/healthz`)).json).toEqual({ status: 'ok' });
    const ready = await call(`${metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready', mode: 'redis', redis: 'up', subscribed: true });
    expect(ready.json).toEqual((await S.readyz()).body);
  });

  it('serves nothing of the cache API: /v1/cache/x is 404 there, and writes change nothing', async () => {
    await S.put('x', 'original', { ttl: 600 });
    const get = await call(`${metricsUrl}/v1/cache/x`);
    expect(get.status).toBe(404);
    expect(get.json).toEqual({ error: { code: 'NotFound', message: 'no route GET /v1/cache/x' } });
    for (const [method, path, body] of [
      ['PUT', '/v1/cache/x', 'changed'],
      ['DELETE', '/v1/cache/x', undefined],
      ['POST', '/v1/invalidate', '{"all":true,"tier":"all"}'],
      ['GET', '/v1/cache/x?consistency=all', undefined],
    ] as const) {
      const r = await call(`${metricsUrl}${path}`, {
        method,
        ...(body ? { body, headers: { 'content-type': method === 'POST' ? 'application/json' : 'text/plain' } } : {}),
      });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json?.error?.code, `${method} ${path}`).toBe('NotFound');
    }
    expect(await redis.hget('rc:x', 'v')).toBe('original');
    expect((await S.get('x')).body).toBe('original');
  });

  it('reports Redis outages on /readyz like the API port (503 not-ready), and recovery', async () => {
    const port = await freePort();
    const s = await startSidecar({
      name: 'outage',
      args: ['--redis', primary.url, '--channel', CHANNEL, '--metrics-listen', `127.0.0.1:${port}`],
    });
    try {
      await primary.kill();
      await waitFor(
        '/readyz on the metrics port to be 503',
        async () => (await call(`http://127.0.0.1:${port}/readyz`)).status === 503,
        15_000,
        100,
      );
      const r = await call(`http://127.0.0.1:${port}/readyz`);
      expect(r.json).toMatchObject({ status: 'not-ready', mode: 'redis', redis: 'down' });
      expect((await s.readyz()).status).toBe(503);
      expect((await call(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await primary.start();
    }
    await waitFor(
      '/readyz on the metrics port to be 200 again',
      async () => (await call(`http://127.0.0.1:${port}/readyz`)).status === 200,
      20_000,
      100,
    );
    await s.stop();
  });

  it('closes on SIGTERM with the API listener, even with an idle keep-alive connection to it', async () => {
    const port = await freePort();
    const s = await startSidecar({
      name: 'term',
      args: ['--redis', primary.url, '--channel', CHANNEL, '--metrics-listen', `0.0.0.0:${port}`],
    });
    expect((await call(`http://127.0.0.1:${port}/metrics`)).status).toBe(200); // leaves a keep-alive connection open
    const started = Date.now();
    expect(await s.signal('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    await expect(fetch(`${s.url}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    expect(s.output()).toContain('Started the metrics and probe listener');
    expect(s.output()).toContain('Stopped');
  });

  it('exits 2 on a bad --metrics-listen, naming the flag', async () => {
    const r = await runToExit(['--metrics-listen', 'nope']);
    expect(r.code).toBe(2);
    expect(r.output).toContain('ripplecache-sidecar: --metrics-listen: "nope" is not HOST:PORT');
    const same = await runToExit(['--listen', '127.0.0.1:7170', '--metrics-listen', '0.0.0.0:7170']);
    expect(same.code).toBe(2);
    expect(same.output).toContain('overlaps --listen 127.0.0.1:7170');
  });

  it('exits 1 when the metrics address cannot be listened on', async () => {
    const taken: Server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runToExit(['--listen', `127.0.0.1:${await freePort()}`, '--metrics-listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.output).toContain('Failed to listen for metrics and probes');
    } finally {
      taken.close();
    }
  });
});
