/** The operator's probe and metrics server (node:http) on a real loopback port. */
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProbeServer, type ProbeServer } from '../../operator/src/server.js';
import { freePort } from '../harness/ports.js';

let server: ProbeServer;
let base: string;
let ready = false;

beforeAll(async () => {
  const registry = new Registry();
  new Counter({ name: 'probe_test_total', help: 'a test counter', registers: [registry] }).inc(3);
  server = buildProbeServer({ registry, logger: pino({ level: 'silent' }), ready: () => ready });
  const port = await freePort();
  await server.listen({ host: '127.0.0.1', port });
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await server?.close();
});

describe('probe server', () => {
  it('answers /healthz always and /readyz only once ready', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ error: { code: 'NotReady' } });
    ready = true;
    const isReady = await fetch(`${base}/readyz?verbose`);
    expect(isReady.status).toBe(200);
    expect(await isReady.json()).toEqual({ status: 'ready' });
  });

  it('serves the registry in the Prometheus text format', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toMatch(/^probe_test_total 3$/m);
  });

  it('answers unknown paths with 404 and other methods with 405, as JSON', async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NotFound' } });
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });
});
