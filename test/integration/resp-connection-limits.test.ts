/**
 * The RESP front's per-connection bounds over real sockets, with the sidecar built in this process (L1-only,
 * so that no Redis is needed) and the front's limits made small: a client stalled in the middle of a
 * command is disconnected while an idle one is kept; a client that pipelines without reading its replies
 * stops being read (the sidecar holds a bounded amount of replies), and gets every reply, in order, once
 * it reads. And, with a real redis-server as L2: the replies of pipelined commands that complete together
 * leave in one socket write, not one each.
 */
import { createConnection, Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../sidecar/src/app.js';
import { SIDECAR_DEFAULTS, type SidecarConfig } from '../../sidecar/src/config-defaults.js';
import { RespServer } from '../../sidecar/src/resp/resp-server.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const apps: FastifyInstance[] = [];
const servers: RespServer[] = [];
const redises: RedisProcess[] = [];
afterAll(async () => {
  for (const s of servers) await s.close(1000);
  for (const a of apps) await a.close();
  for (const r of redises) await r.stop();
});

async function front(options: {
  slowClientMs: number;
  maxPending: number;
  redis?: string;
}): Promise<{ port: number; app: FastifyInstance }> {
  const { redis, ...limits } = options;
  const config: SidecarConfig = {
    ...structuredClone(SIDECAR_DEFAULTS),
    l1: { ...SIDECAR_DEFAULTS.l1, maxBytes: 256 * 1024 * 1024 },
    redis,
  };
  const app = await buildApp({ config, logger: false });
  apps.push(app);
  const server = new RespServer({
    addresses: [{ host: '127.0.0.1', port: 0 }],
    socketMode: 0o600,
    backend: app.ripplecache.respBackend,
    log: app.log,
    ...limits,
  });
  servers.push(server);
  await server.start();
  const address = server.addresses()[0] as { port: number };
  return { port: address.port, app };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

async function metric(app: FastifyInstance, name: string, labels: string): Promise<number> {
  const text = await app.ripplecache.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('RESP connection limits', () => {
  it('disconnects a client stalled mid-command, keeps an idle one', async () => {
    const { port, app } = await front({ slowClientMs: 300, maxPending: 1024 });
    const stalled = await connect(port);
    const idle = await connect(port);
    idle.write('PING\r\n');
    await new Promise((r) => idle.once('data', r));
    stalled.write('*2\r\n$3\r\nGET\r\n$10\r\nabc'); // and nothing more
    await closed(stalled);
    // The idle client, quiet for longer than the stalled one was, still gets answers.
    await new Promise((r) => setTimeout(r, 600));
    expect(idle.destroyed).toBe(false);
    idle.write('PING\r\n');
    const reply = await new Promise<string>((r) => idle.once('data', (d: Buffer) => r(d.toString())));
    expect(reply).toBe('+PONG\r\n');
    idle.destroy();
    expect(
      await metric(app, 'ripplecache_sidecar_resp_connections_closed_on_error_total', 'reason="slow-client"'),
    ).toBe(1);
  });

  it('stops reading a client that does not read its replies, then answers everything in order', async () => {
    const { port, app } = await front({ slowClientMs: 20_000, maxPending: 64 });
    const c = await connect(port);
    const value = 'v'.repeat(16 * 1024);
    c.write(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n${value}\r\n`);
    await new Promise((r) => c.once('data', r));
    c.pause();
    const n = 5000;
    const commands: string[] = [];
    for (let i = 0; i < n; i++)
      commands.push(
        i % 2 ? '*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n' : `*2\r\n$4\r\nECHO\r\n$${String(i).length}\r\n${i}\r\n`,
      );
    c.write(commands.join(''));
    await new Promise((r) => setTimeout(r, 1000));
    // 5,000 replies are about 40 MiB; what was answered fits in the socket buffers.
    const answered =
      (await metric(app, 'ripplecache_sidecar_resp_commands_total', 'command="get",result="ok"')) +
      (await metric(app, 'ripplecache_sidecar_resp_commands_total', 'command="echo",result="ok"'));
    expect(answered).toBeLessThan(n);
    // Now read: every reply arrives, in order.
    let buffered = Buffer.alloc(0);
    let replies = 0;
    let inOrder = true;
    const expectedLengths = (i: number) => (i % 2 ? value.length : String(i).length);
    await new Promise<void>((resolve) => {
      c.on('data', (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        for (;;) {
          const nl = buffered.indexOf('\r\n');
          if (nl === -1) break;
          const len = Number(buffered.subarray(1, nl).toString());
          if (buffered.length < nl + 2 + len + 2) break;
          if (len !== expectedLengths(replies)) inOrder = false;
          buffered = buffered.subarray(nl + 2 + len + 2);
          replies++;
        }
        if (replies === n) resolve();
      });
      c.resume();
    });
    expect(inOrder).toBe(true);
    expect(replies).toBe(n);
    c.destroy();
  });

  it('writes the replies of pipelined commands that complete together in one write', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const { port } = await front({ slowClientMs: 20_000, maxPending: 1024, redis: redis.url });
    const c = await connect(port);
    const received = (count: number) =>
      new Promise<string>((resolve) => {
        let text = '';
        const onData = (d: Buffer) => {
          text += d.toString();
          if (text.split('\r\n').length - 1 >= count) {
            c.off('data', onData);
            resolve(text);
          }
        };
        c.on('data', onData);
      });
    const pipeline = (round: number) =>
      Array.from(
        { length: 16 },
        (_, i) => `*3\r\n$3\r\nSET\r\n$${`k${round}-${i}`.length}\r\nk${round}-${i}\r\n$1\r\nv\r\n`,
      );
    // Warm-up: the first SETs wait for connections; count from the second pipeline on.
    c.write(pipeline(0).join(''));
    await received(16);
    // Each SET goes to Redis (L2, no origin) and completes when Redis answers: asynchronously, but the 16
    // answers come in one reply chunk from Redis, so the 16 SETs complete in one run of callbacks.
    const write = vi.spyOn(Socket.prototype, 'write');
    try {
      const replies = received(16);
      c.write(pipeline(1).join(''));
      expect(await replies).toBe('+OK\r\n'.repeat(16));
      const fromFront = write.mock.contexts.filter((sock) => (sock as Socket).localPort === port).length;
      // One write per reply before the change (16); Redis may answer the pipeline in more than one chunk.
      expect(fromFront).toBeGreaterThanOrEqual(1);
      expect(fromFront).toBeLessThanOrEqual(3);
    } finally {
      write.mockRestore();
    }
    c.destroy();
  });
});
