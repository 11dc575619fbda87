import { describe, expect, it } from 'vitest';
import { CacheFullError, RedisCommandError, RedisUnavailableError, StoredRecordInvalidError } from '../errors.js';
import { READONLY_RECONNECT_MS, readOnlyReconnector, reconnectDelay, toSidecarError } from './redis-client.js';

const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

describe('redis-client (pure helpers)', () => {
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

  it('says what the client saw when Redis is not reachable', () => {
    expect(toSidecarError(new Error('connect ECONNREFUSED 127.0.0.1:6379'), 'read').message).toBe(
      'read: Redis is not reachable (connect ECONNREFUSED 127.0.0.1:6379)',
    );
  });

  it('names the last answer when ioredis gave up following Redis Cluster redirections', () => {
    const e = toSidecarError(
      new Error(
        'Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot',
      ),
      'write-back append',
    );
    expect(e).toBeInstanceOf(RedisUnavailableError);
    expect(e.message).toBe('write-back append: Redis Cluster kept redirecting (last answer TRYAGAIN)');
  });

  it('reconnects after 50 ms doubling to 2 s, with up to 50 ms of jitter', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => reconnectDelay(n, 0))).toEqual([
      50, 100, 200, 400, 800, 1600, 2000, 2000, 2000,
    ]);
    expect(reconnectDelay(1, 0.999)).toBe(99);
  });

  it('maps an EXECABORT by its first refused command: READONLY in a MULTI is 503, not 502', () => {
    const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
    const aborted = Object.assign(reply('EXECABORT Transaction discarded because of previous errors.'), {
      previousErrors: [reply("READONLY You can't write against a read only replica.")],
    });
    const e = toSidecarError(aborted, 'write');
    expect(e).toBeInstanceOf(RedisUnavailableError);
    expect(e.message).toBe('write: Redis answered READONLY');
    expect(
      toSidecarError(reply('EXECABORT Transaction discarded because of previous errors.'), 'write'),
    ).toBeInstanceOf(RedisCommandError);
  });

  it('reconnects on READONLY (commands and scripts), at most once a second, and on nothing else', () => {
    let now = 0;
    const reconnect = readOnlyReconnector(() => now);
    const err = (m: string) => new Error(m);
    expect(reconnect(err("READONLY You can't write against a read only replica."))).toBe(true);
    now += READONLY_RECONNECT_MS - 1;
    expect(reconnect(err("READONLY You can't write against a read only replica. script: ab, on @user_script:1."))).toBe(
      false,
    );
    now += 1;
    expect(reconnect(err("READONLY You can't write against a read only replica. script: ab, on @user_script:1."))).toBe(
      true,
    );
    now += 10_000;
    expect(reconnect(err('ERR unknown command'))).toBe(false);
    expect(reconnect(err('LOADING Redis is loading the dataset in memory'))).toBe(false);
  });
});
