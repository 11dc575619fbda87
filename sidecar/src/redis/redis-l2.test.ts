import { describe, expect, it } from 'vitest';
import { CacheFullError, RedisCommandError, RedisUnavailableError, StoredRecordInvalidError } from '../errors.js';
import { reconnectDelay, toSidecarError } from './redis-client.js';
import { parseReplicas } from './redis-l2.js';

const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

describe('redis adapters (pure helpers)', () => {
  it('parses the replicas of INFO replication', () => {
    const info = [
      '# Replication',
      'role:master',
      'connected_slaves:2',
      'slave0:ip=10.0.0.5,port=6379,state=online,offset=100,lag=0',
      'slave1:ip=sessions-2.sessions-headless,port=6380,state=wait_bgsave,offset=0,lag=1',
      'master_replid:abc',
    ].join('\r\n');
    expect(parseReplicas(info)).toEqual([
      { host: '10.0.0.5', port: 6379 },
      { host: 'sessions-2.sessions-headless', port: 6380 },
    ]);
    expect(parseReplicas('role:master\r\nconnected_slaves:0\r\n')).toEqual([]);
  });

  it.each([
    [new Error('Command timed out'), RedisUnavailableError],
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), RedisUnavailableError],
    [new Error('connect ECONNREFUSED 127.0.0.1:6379'), RedisUnavailableError],
    [replyError('LOADING Redis is loading the dataset in memory'), RedisUnavailableError],
    [replyError("READONLY You can't write against a read only replica."), RedisUnavailableError],
    [replyError("OOM command not allowed when used memory > 'maxmemory'."), CacheFullError],
    [replyError('WRONGTYPE Operation against a key holding the wrong kind of value'), StoredRecordInvalidError],
    [replyError('ERR something else'), RedisCommandError],
  ])('maps %s', (err, kind) => {
    expect(toSidecarError(err, 'read')).toBeInstanceOf(kind);
  });

  it('reconnects after 50 ms doubling to 2 s, with up to 50 ms of jitter', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => reconnectDelay(n, 0))).toEqual([
      50, 100, 200, 400, 800, 1600, 2000, 2000, 2000,
    ]);
    expect(reconnectDelay(1, 0.999)).toBe(99);
  });
});
