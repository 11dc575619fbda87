/**
 * A primary that hung, was failed over and came back as a replica, reached through a Service whose
 * established connections stay on the old pod (real redis-servers, a TCP proxy standing in for the client
 * Service, a sidecar process). Before: the sidecar kept its connection to the demoted node and every write
 * failed `502 RedisError` (READONLY inside its MULTI surfaced as EXECABORT) until the sidecar restarted,
 * while /readyz said ready. Now the READONLY answer is a 503 and makes the sidecar reconnect, through the
 * same address, to the current primary.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars } from '../harness/sidecar.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';

let oldPrimary: RedisProcess;
let newPrimary: RedisProcess;
let service: TcpProxy;
const clients: Redis[] = [];
const client = (r: RedisProcess) => {
  const c = new Redis(r.url, { maxRetriesPerRequest: 0 });
  c.on('error', () => {});
  clients.push(c);
  return c;
};

beforeAll(async () => {
  [oldPrimary, newPrimary] = await Promise.all([startRedis(), startRedis()]);
  service = await startTcpProxy({ host: '127.0.0.1', port: oldPrimary.port });
});

afterAll(async () => {
  await stopAllSidecars();
  for (const c of clients) c.disconnect();
  await service?.close();
  await Promise.all([oldPrimary?.stop(), newPrimary?.stop()]);
});

describe('a sidecar whose primary was demoted behind the same address', () => {
  it('answers 503 for the write that met READONLY, then writes to the current primary', async () => {
    const s = await startSidecar({
      name: 'demoted',
      args: ['--redis', `redis://127.0.0.1:${service.port}`, '--channel', 'ripplecache:it-demoted'],
    });
    expect((await s.put('k', 'one')).status).toBe(204);
    expect(await client(oldPrimary).hget('rc:k', 'v')).toBe('one');

    // The failover: the other node is the primary now, the old one follows it, the Service points at the
    // new one — and the sidecar's established connections stay where they were.
    await client(oldPrimary).call('REPLICAOF', '127.0.0.1', String(newPrimary.port));
    service.retarget({ host: '127.0.0.1', port: newPrimary.port });

    const first = await s.put('k', 'two');
    expect(first.status, first.body).toBe(503);
    expect(first.code).toBe('RedisUnavailable');
    // Reconnected through the same address (the command connection and the subscriber's own).
    let last = first;
    await waitFor(
      'a write acknowledged again',
      async () => {
        last = await s.put('k', 'three');
        return last.status === 204;
      },
      10_000,
      100,
    );
    expect(last.status, s.output()).toBe(204);
    expect(await client(newPrimary).hget('rc:k', 'v')).toBe('three');
    expect((await s.get('k')).body).toBe('three');
    expect((await s.readyz()).status).toBe(200);
  }, 60_000);
});
