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
    rawClient(db) {
      const c = new Redis(`${started(redis, 'redis-server').url}/${db}`);
      raws.push(c);
      return c;
    },
  };
}
