/**
 * The leadership fence on the operator's only Redis write path (CONFIG SET of the eviction settings and the
 * persistence mode's appendonly / save),
 * against a real redis-server: a refused write sends nothing, a fence that lapses between two writes stops
 * the second, and the refusal reaches the caller (it is not turned into a per-pod "not applied").
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotLeaderError } from '../../operator/src/controller/leadership.js';
import { applyEviction, applyEvictionToPod, type PodEndpoint } from '../../operator/src/redis/live-config.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

let redis: RedisProcess;
let admin: Redis;
let ep: PodEndpoint;
const desired = { maxmemory: 64 * 1024 * 1024, maxmemoryPolicy: 'allkeys-lru' };

async function settings() {
  const mm = (await admin.call('CONFIG', 'GET', 'maxmemory')) as string[];
  const mp = (await admin.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
  return { maxmemory: Number(mm[1]), maxmemoryPolicy: String(mp[1]) };
}

/** CONFIG SET calls the server has executed since the last CONFIG RESETSTAT. */
async function configSetCalls(): Promise<number> {
  const info = String(await admin.call('INFO', 'commandstats'));
  return Number(/^cmdstat_config\|set:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  ep = { pod: 'p-0', host: '127.0.0.1', port: redis.port };
});

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

beforeEach(async () => {
  await admin.call('CONFIG', 'SET', 'appendonly', 'no');
  await admin.call('CONFIG', 'SET', 'save', '');
  await admin.call('CONFIG', 'SET', 'maxmemory', '0');
  await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  await admin.call('CONFIG', 'RESETSTAT');
});

describe('CONFIG SET behind the leadership fence', () => {
  it('writes when the fence allows', async () => {
    const r = await applyEvictionToPod(ep, desired, { beforeWrite: () => undefined });
    expect(r).toMatchObject({ applied: true, changed: true });
    expect(await settings()).toEqual(desired);
    expect(await configSetCalls()).toBe(2);
  });

  it('sends no CONFIG SET when the fence refuses, and rejects with its error', async () => {
    const refuse = () => {
      throw new NotLeaderError('not the leader');
    };
    await expect(applyEvictionToPod(ep, desired, { beforeWrite: refuse })).rejects.toBeInstanceOf(NotLeaderError);
    await expect(applyEviction([ep, ep], desired, { beforeWrite: refuse })).rejects.toBeInstanceOf(NotLeaderError);
    expect(await configSetCalls()).toBe(0);
    expect(await settings()).toEqual({ maxmemory: 0, maxmemoryPolicy: 'noeviction' });
  });

  it('stops at the first write after the fence lapses, even in the middle of one pod', async () => {
    let allowed = 1;
    const lapsing = () => {
      if (allowed-- <= 0) throw new NotLeaderError('renew deadline passed');
    };
    await expect(applyEvictionToPod(ep, desired, { beforeWrite: lapsing })).rejects.toThrow(/renew deadline passed/);
    expect(await configSetCalls()).toBe(1);
    expect(await settings()).toEqual({ maxmemory: desired.maxmemory, maxmemoryPolicy: 'noeviction' });
  });

  it('still reports an unreachable pod as not applied (only the fence throws)', async () => {
    const r = await applyEvictionToPod({ pod: 'gone-0', host: '127.0.0.1', port: 1 }, desired, {
      beforeWrite: () => undefined,
      timeoutMs: 500,
    });
    expect(r).toMatchObject({ pod: 'gone-0', applied: false, changed: false });
  });

  it('applies the persistence mode live (appendonly, save) and verifies it; the fence guards it too', async () => {
    const persistence = async () => ({
      appendonly: ((await admin.call('CONFIG', 'GET', 'appendonly')) as string[])[1],
      save: ((await admin.call('CONFIG', 'GET', 'save')) as string[])[1],
    });
    const aof = { ...desired, persistence: { appendonly: 'yes', save: '' } };
    const refuse = () => {
      throw new NotLeaderError('not the leader');
    };
    // Eviction already as desired: only the persistence setting is left to write, and the fence stops it.
    await applyEvictionToPod(ep, desired, { beforeWrite: () => undefined });
    await admin.call('CONFIG', 'RESETSTAT');
    await expect(applyEvictionToPod(ep, aof, { beforeWrite: refuse })).rejects.toBeInstanceOf(NotLeaderError);
    expect(await configSetCalls()).toBe(0);
    expect(await persistence()).toEqual({ appendonly: 'no', save: '' });

    expect(await applyEvictionToPod(ep, aof, { beforeWrite: () => undefined })).toMatchObject({
      applied: true,
      changed: true,
    });
    expect(await persistence()).toEqual({ appendonly: 'yes', save: '' });
    expect(await configSetCalls()).toBe(1);
    // Already there: nothing is written.
    expect(await applyEvictionToPod(ep, aof, { beforeWrite: () => undefined })).toMatchObject({
      applied: true,
      changed: false,
    });
    expect(await configSetCalls()).toBe(1);

    const rdb = { ...desired, persistence: { appendonly: 'no', save: '3600 1 300 100 60 10000' } };
    expect(await applyEvictionToPod(ep, rdb, { beforeWrite: () => undefined })).toMatchObject({ applied: true });
    expect(await persistence()).toEqual(rdb.persistence);
    expect(await configSetCalls()).toBe(3);
  });
});
