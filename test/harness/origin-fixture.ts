/**
 * For integration test files that run sidecar processes against an origin: one redis-server and one
 * PostgreSQL, started in `beforeAll`; every sidecar, raw Redis client and server stopped in `afterAll`
 * (which runs even when tests fail). Call `useRedisAndPostgres()` once at the top level of the file.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startRedis, type RedisProcess } from './redis.js';
import { stopAllSidecars } from './sidecar.js';

export interface RedisAndPostgres {
  readonly redis: RedisProcess;
  readonly pg: PostgresServer;
  /** A pool on the test database, for looking at (and seeding) the origin's tables. */
  readonly admin: pg.Pool;
  /** A plain Redis client on database `db`, disconnected in `afterAll`. */
  rawClient(db: number): Redis;
  /**
   * A sidecar's arguments over Redis database `db` (channel `<channel>-<db>`) writing `table` under
   * `policy`, as the write tests run it: a 1 s Redis time box, L1 entries capped at 30 s, write-back
   * flushes every 100 ms; then `extra`.
   */
  writerArgs(o: { db: number; channel: string; table: string; policy: string; extra?: string[] }): string[];
}

export function useRedisAndPostgres(): RedisAndPostgres {
  let redis: RedisProcess | undefined;
  let pgServer: PostgresServer | undefined;
  let admin: pg.Pool | undefined;
  const raws: Redis[] = [];
  const started = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`${what} is used before beforeAll started it`);
    return x;
  };

  beforeAll(async () => {
    [redis, pgServer] = await Promise.all([startRedis(), startPostgres()]);
    admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
    admin.on('error', () => {});
  });

  afterAll(async () => {
    await stopAllSidecars();
    for (const c of raws) c.disconnect();
    await admin?.end();
    await Promise.all([redis?.stop(), pgServer?.stop()]);
  });

  return {
    get redis() {
      return started(redis, 'redis-server');
    },
    get pg() {
      return started(pgServer, 'PostgreSQL');
    },
    get admin() {
      return started(admin, 'the admin pool');
    },
    writerArgs({ db, channel, table, policy, extra = [] }) {
      return [
        '--redis',
        `${started(redis, 'redis-server').url}/${db}`,
        '--channel',
        `${channel}-${db}`,
        '--origin',
        started(pgServer, 'PostgreSQL').url,
        '--origin-table',
        table,
        '--write-policy',
        policy,
        '--l1-max-ttl',
        '30',
        '--redis-timeout-ms',
        '1000',
        '--write-back-flush-interval-ms',
        '100',
        ...extra,
      ];
    },
    rawClient(db) {
      const c = new Redis(`${started(redis, 'redis-server').url}/${db}`);
      raws.push(c);
      return c;
    },
  };
}
