/**
 * The metrics and probe listener (`--metrics-listen`) through fastify's inject(): /metrics, /healthz and
 * /readyz from the sidecar's own registry and readiness, and nothing of the cache API.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { SIDECAR_DEFAULTS, type SidecarConfig } from './config-defaults.js';
import { buildMetricsApp } from './metrics-app.js';

let app: FastifyInstance;
let metricsApp: FastifyInstance;

beforeEach(async () => {
  const config: SidecarConfig = {
    ...(structuredClone(SIDECAR_DEFAULTS) as SidecarConfig),
    metricsListen: { host: '0.0.0.0', port: 7071 },
  };
  app = await buildApp({ config, logger: false, clock: () => 1_000_000, senderId: 'test' });
  await app.ready();
  metricsApp = await buildMetricsApp(app);
  await metricsApp.ready();
});
afterEach(async () => {
  await metricsApp.close();
  await app.close();
});

describe('metrics and probe listener', () => {
  it('serves /metrics from the same registry as the API listener', async () => {
    await app.inject({ method: 'PUT', url: '/v1/cache/k', payload: 'v', headers: { 'content-type': 'text/plain' } });
    await app.inject({ method: 'GET', url: '/v1/cache/k' });
    const r = await metricsApp.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toMatch(/^ripplecache_sidecar_requests_total\{operation="get",tier="l1",outcome="hit"\} 1$/m);
    expect(r.body).toMatch(/^ripplecache_sidecar_l1_entries 1$/m);
    expect(r.body).toContain('ripplecache_sidecar_invalidation_gaps_total');
    expect(r.body).toContain('ripplecache_sidecar_writeback_pending');
    expect(r.body).toBe((await app.inject({ method: 'GET', url: '/metrics' })).body);
  });

  it('serves /healthz and /readyz with the readiness of the API listener, HEAD too', async () => {
    expect((await metricsApp.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await metricsApp.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', mode: 'l1-only', redis: 'disabled', subscribed: false });
    expect(ready.json()).toEqual((await app.inject({ method: 'GET', url: '/readyz' })).json());
    expect((await metricsApp.inject({ method: 'HEAD', url: '/readyz' })).statusCode).toBe(200);
  });

  it('reports shutting-down once the sidecar begins to shut down', async () => {
    app.ripplecache.beginShutdown();
    const r = await metricsApp.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ status: 'shutting-down' });
    expect((await metricsApp.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it.each([
    ['GET', '/v1/cache/x'],
    ['PUT', '/v1/cache/x'],
    ['DELETE', '/v1/cache/x'],
    ['GET', '/v1/cache/x?consistency=all'],
    ['POST', '/v1/invalidate'],
    ['GET', '/'],
  ] as const)('answers %s %s with a 404 JSON error and touches no cache', async (method, url) => {
    await app.inject({ method: 'PUT', url: '/v1/cache/x', payload: 'kept', headers: { 'content-type': 'text/plain' } });
    const r = await metricsApp.inject({
      method,
      url,
      ...(method === 'PUT' || method === 'POST'
        ? {
            payload: method === 'POST' ? '{"all":true}' : 'changed',
            headers: { 'content-type': method === 'POST' ? 'application/json' : 'text/plain' },
          }
        : {}),
    });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: { code: 'NotFound', message: expect.stringMatching(/^no route /) } });
    expect((await app.inject({ method: 'GET', url: '/v1/cache/x' })).body).toBe('kept');
  });

  it('answers POST /metrics with 405 and Allow: GET, HEAD', async () => {
    const r = await metricsApp.inject({ method: 'POST', url: '/metrics', payload: '{}' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
    expect(r.json().error.code).toBe('MethodNotAllowed');
  });
});
