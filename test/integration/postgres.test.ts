import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

describe('PostgreSQL harness', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  it('serves the ripplecache database over TCP with password authentication', async () => {
    const [row] = await query<{ db: string; usr: string; version: string }>(
      "SELECT current_database() AS db, current_user AS usr, current_setting('server_version') AS version",
    );
    expect(row).toMatchObject({ db: 'ripplecache', usr: 'ripplecache' });
    expect(Number(row?.version.split('.')[0])).toBeGreaterThanOrEqual(15);
    expect(server.url).toBe(`postgres://ripplecache:ripplecache-test@127.0.0.1:${server.port}/ripplecache`);
  });

  it('rejects a wrong password', async () => {
    const client = new pg.Client({ connectionString: server.url.replace(':ripplecache-test@', ':wrong@') });
    await expect(client.connect()).rejects.toThrow(/password authentication failed/);
    await client.end().catch(() => undefined);
  });

  it('stopServer/startServer keep the data and the port, and clients see the outage', async () => {
    await query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await query('INSERT INTO items VALUES ($1, $2)', [1, 'kept']);

    const held = new pg.Client({ connectionString: server.url });
    held.on('error', () => undefined); // the server terminates this connection on stop
    await held.connect();

    await server.stopServer();
    await expect(held.query('SELECT 1')).rejects.toThrow();
    await held.end().catch(() => undefined);
    const refused = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 2_000 });
    await expect(refused.connect()).rejects.toThrow(/ECONNREFUSED/);
    await refused.end().catch(() => undefined);

    await server.startServer();
    expect(await query('SELECT name FROM items WHERE id = 1')).toEqual([{ name: 'kept' }]);
  });

  it('stop() removes the data directory', async () => {
    const other = await startPostgres();
    expect(existsSync(other.dir)).toBe(true);
    await other.stop();
    expect(existsSync(other.dir)).toBe(false);
  });
});
