/**
 * The scheduled flush's script (what the CronJob's pod runs) against a real redis-server: every cache
 * record with a TTL deleted (batch by batch, server-side), the write-back journal and records still
 * waiting for the database kept, then the invalidate-all message received by a real subscriber.
 * The script is run by /bin/sh with redis-cli from Debian's redis-tools, as in the Redis image.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_PORT } from '../../operator/src/api/v1alpha1/constants.js';
import { DEFAULT_INVALIDATION_CHANNEL } from '../../common/src/protocol.js';
import { flushScript } from '../../operator/src/desired/flush-cron-job.js';
import { serviceHost } from '../../operator/src/desired/names.js';
import { cacheCluster, withAuth, withEviction, withFlush, withGeneration, withUid } from '../fixtures/cache-cluster.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis({ password: 's3cret-flush' });
});
afterAll(async () => {
  await redis?.stop();
});

const cc = cacheCluster(
  'sessions',
  withUid('u1'),
  withGeneration(1),
  withEviction({ policy: 'allkeys-lru', maxMemory: '64Mi' }),
  withFlush({ schedule: '0 2 * * *' }),
  withAuth({ name: 'sessions-auth', key: 'password' }),
);

describe('scheduled flush script', () => {
  it('deletes every cache record, keeps the write-back journal and unflushed records, and publishes invalidate-all', async () => {
    const client = new Redis(redis.url);
    const sub = new Redis(redis.url);
    try {
      const pipeline = client.pipeline();
      for (let i = 0; i < 3000; i++)
        pipeline.hset(`rc:k${i}`, 'v', `value ${i}`, 'ct', 'text/plain').pexpire(`rc:k${i}`, 600_000);
      pipeline.hset('rc:pending write-back', 'v', 'acknowledged, not yet in the database', 'ver', '7'); // no TTL yet
      pipeline.xadd('ripplecache:write-back', '*', 'k', 'pending write-back', 'ver', '7');
      pipeline.set('unrelated', 'kept');
      await pipeline.exec();
      const received: string[] = [];
      sub.on('message', (_ch: string, msg: string) => received.push(msg));
      await sub.subscribe(DEFAULT_INVALIDATION_CHANNEL);
      // The pod reaches the client Service by DNS; here that name maps to the local process.
      const script = flushScript(cc).replaceAll(`'${serviceHost(cc)}' -p ${REDIS_PORT}`, `127.0.0.1 -p ${redis.port}`);
      expect(script).toContain(`-p ${redis.port}`);
      const { stdout } = await promisify(execFile)('sh', ['-c', script], {
        env: { ...process.env, REDISCLI_AUTH: 's3cret-flush' },
      });
      expect(stdout).toMatch(/3000 cache records deleted; invalidation published to 1 subscribers/);
      expect(await client.keys('rc:k*')).toEqual([]);
      expect(await client.hget('rc:pending write-back', 'v')).toBe('acknowledged, not yet in the database');
      expect(await client.xlen('ripplecache:write-back')).toBe(1);
      expect(await client.get('unrelated')).toBe('kept');
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toHaveLength(1);
      expect(JSON.parse(received[0]!)).toMatchObject({ v: 1, all: true, seq: 1 });
    } finally {
      client.disconnect();
      sub.disconnect();
    }
  });

  it('fails (so the Job fails and is retried) when Redis refuses', async () => {
    const script = flushScript(cc).replaceAll(`'${serviceHost(cc)}' -p ${REDIS_PORT}`, `127.0.0.1 -p ${redis.port}`);
    await expect(
      promisify(execFile)('sh', ['-c', script], { env: { ...process.env, REDISCLI_AUTH: 'wrong' } }),
    ).rejects.toThrow();
  });
});
