/**
 * The origins against real servers: PostgreSQL (the harness's server) and an HTTP service implementing
 * the origin contract (a real node:http server on loopback).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../../sidecar/src/errors.js';
import { HttpOrigin, VERSION_HEADER } from '../../sidecar/src/origin/http-origin.js';
import {
  OriginRejectedError,
  OriginUnavailableError,
  type OriginOperation,
  type OriginOutcome,
} from '../../sidecar/src/origin/origin.js';
import { createPostgresPool, PostgresOrigin } from '../../sidecar/src/origin/postgres-origin.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

let server: PostgresServer;
let admin: pg.Pool;

beforeAll(async () => {
  server = await startPostgres();
  admin = new pg.Pool({ connectionString: server.url, max: 2 });
  admin.on('error', () => {});
});

afterAll(async () => {
  await admin?.end();
  await server?.stop();
});

function countingEvents() {
  const counts = new Map<string, number>();
  let rows = 0;
  return {
    events: {
      request: (op: OriginOperation, outcome: OriginOutcome) =>
        counts.set(`${op}/${outcome}`, (counts.get(`${op}/${outcome}`) ?? 0) + 1),
      rowsWritten: (n: number) => {
        rows += n;
      },
    },
    count: (k: string) => counts.get(k) ?? 0,
    rows: () => rows,
  };
}

const origin = (table?: string, events?: ReturnType<typeof countingEvents>['events']) =>
  new PostgresOrigin({
    pool: createPostgresPool({ url: server.url, timeoutMs: 2000, max: 4 }),
    ...(table ? { table } : {}),
    ...(events ? { events } : {}),
  });

describe('PostgresOrigin', () => {
  it('creates the table once even when two sidecars start at the same time', async () => {
    const a = origin();
    const b = origin();
    try {
      await Promise.all([a.init(), b.init()]);
      const cols = await admin.query<{ column_name: string; data_type: string; is_nullable: string }>(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'cache_entries' ORDER BY ordinal_position`,
      );
      expect(cols.rows).toEqual([
        { column_name: 'key', data_type: 'text', is_nullable: 'NO' },
        { column_name: 'value', data_type: 'bytea', is_nullable: 'YES' },
        { column_name: 'content_type', data_type: 'text', is_nullable: 'YES' },
        { column_name: 'version', data_type: 'bigint', is_nullable: 'NO' },
        { column_name: 'updated_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      ]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('stores bytes and content type, and applies a write only when its version is newer', async () => {
    const c = countingEvents();
    const o = origin(undefined, c.events);
    try {
      const body = Buffer.from([0, 1, 2, 255, 254]);
      expect(await o.put('bin/key é', body, 'application/x-thing', 100)).toBe('applied');
      expect(await o.get('bin/key é')).toEqual({ body, contentType: 'application/x-thing', version: 100 });
      // Same version again (a redelivered journal entry) and an older one: both superseded.
      expect(await o.put('bin/key é', Buffer.from('again'), 'text/plain', 100)).toBe('superseded');
      expect(await o.put('bin/key é', Buffer.from('older'), 'text/plain', 99)).toBe('superseded');
      expect((await o.get('bin/key é'))?.body).toEqual(body);
      expect(await o.put('bin/key é', Buffer.from('newer'), 'text/plain', 101)).toBe('applied');
      expect((await o.get('bin/key é'))?.body.toString()).toBe('newer');
      expect(await o.get('absent')).toBeNull();
      expect(c.count('put/applied')).toBe(2);
      expect(c.count('put/superseded')).toBe(2);
      expect(c.count('get/hit')).toBe(3);
      expect(c.count('get/miss')).toBe(1);
      expect(c.rows()).toBe(2);
    } finally {
      await o.close();
    }
  });

  it('deletes by leaving a tombstone that an older write cannot resurrect', async () => {
    const o = origin();
    try {
      await o.put('del-me', Buffer.from('v1'), 'text/plain', 10);
      expect(await o.delete('del-me', 20)).toBe('applied');
      expect(await o.get('del-me')).toBeNull();
      const row = await admin.query('SELECT value, content_type, version FROM cache_entries WHERE key = $1', [
        'del-me',
      ]);
      expect(row.rows).toEqual([{ value: null, content_type: null, version: '20' }]);
      // A late write older than the delete (a claimed journal entry) stays deleted.
      expect(await o.put('del-me', Buffer.from('late'), 'text/plain', 15)).toBe('superseded');
      expect(await o.get('del-me')).toBeNull();
      expect(await o.delete('del-me', 19)).toBe('superseded');
      // A newer write brings it back.
      expect(await o.put('del-me', Buffer.from('v3'), 'text/plain', 30)).toBe('applied');
      expect((await o.get('del-me'))?.body.toString()).toBe('v3');
    } finally {
      await o.close();
    }
  });

  it('applies a batch in one statement, per key only if newer, with duplicates folded', async () => {
    const c = countingEvents();
    const o = origin(undefined, c.events);
    try {
      await o.put('b1', Buffer.from('stored-newer'), 'text/plain', 500);
      const r = await o.applyBatch([
        { op: 'put', key: 'b1', version: 400, body: Buffer.from('older'), contentType: 'text/plain' },
        { op: 'put', key: 'b2', version: 401, body: Buffer.from('two'), contentType: 'text/plain' },
        { op: 'put', key: 'b3', version: 402, body: Buffer.from('three-a'), contentType: 'text/plain' },
        { op: 'put', key: 'b3', version: 403, body: Buffer.from('three-b'), contentType: 'text/plain' },
        { op: 'delete', key: 'b4', version: 404 },
      ]);
      expect({ ...r, appliedKeys: [...(r.appliedKeys ?? [])].sort() }).toEqual({
        applied: 3,
        superseded: 2,
        appliedKeys: ['b2', 'b3', 'b4'],
      });
      expect((await o.get('b1'))?.body.toString()).toBe('stored-newer');
      expect((await o.get('b2'))?.body.toString()).toBe('two');
      expect((await o.get('b3'))?.body.toString()).toBe('three-b');
      expect(await o.get('b4')).toBeNull();
      expect(c.count('batch/applied')).toBe(1);
      // Re-applying the same batch changes nothing (idempotent).
      expect(
        await o.applyBatch([
          { op: 'put', key: 'b2', version: 401, body: Buffer.from('two'), contentType: 'text/plain' },
        ]),
      ).toEqual({ applied: 0, superseded: 1, appliedKeys: [] });
    } finally {
      await o.close();
    }
  });

  it('uses a schema-qualified table name and refuses a table of another shape', async () => {
    await admin.query('CREATE SCHEMA IF NOT EXISTS app');
    const o = origin('app.Entries');
    try {
      await o.put('k', Buffer.from('v'), 'text/plain', 1);
      expect((await admin.query('SELECT count(*)::int AS n FROM app."Entries"')).rows[0]).toEqual({ n: 1 });
    } finally {
      await o.close();
    }
    await admin.query('CREATE TABLE wrong_shape (key text PRIMARY KEY, data bytea)');
    const w = origin('wrong_shape');
    try {
      await expect(w.init()).rejects.toThrow(OriginRejectedError);
      await expect(w.get('k')).rejects.toThrow(/lacks the columns/);
    } finally {
      await w.close();
    }
  });

  it('refuses keys PostgreSQL text cannot hold, before any round trip', async () => {
    const o = origin();
    try {
      expect(() => o.checkKey('a\u0000b')).toThrow(InvalidKeyError);
      await expect(o.put('a\u0000b', Buffer.from('v'), 'text/plain', 1)).rejects.toThrow(OriginRejectedError);
    } finally {
      await o.close();
    }
  });

  it('reports an outage as unavailable and recovers when the server is back', async () => {
    const c = countingEvents();
    const o = origin(undefined, c.events);
    try {
      await o.put('outage', Buffer.from('before'), 'text/plain', 1);
      await server.stopServer();
      try {
        await expect(o.get('outage')).rejects.toThrow(OriginUnavailableError);
        await expect(o.put('outage', Buffer.from('during'), 'text/plain', 2)).rejects.toThrow(OriginUnavailableError);
        expect(c.count('get/unavailable')).toBe(1);
      } finally {
        await server.startServer();
      }
      expect((await o.get('outage'))?.body.toString()).toBe('before');
      expect(await o.put('outage', Buffer.from('after'), 'text/plain', 3)).toBe('applied');
    } finally {
      await o.close();
    }
  });
});

/** A small HTTP origin service implementing the contract, with versions. */
function startHttpService(options: { honourVersions: boolean; auth?: string }) {
  const store = new Map<string, { body: Buffer; type: string; version: number }>();
  const deleted = new Map<string, number>();
  const seen: { method: string; key: string; version: string | undefined; auth: string | undefined }[] = [];
  let failing = 0;
  const srv: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = decodeURIComponent((req.url ?? '').replace(/^\/cache\//, ''));
      const version = req.headers[VERSION_HEADER] as string | undefined;
      seen.push({ method: req.method ?? '', key, version, auth: req.headers.authorization });
      if (options.auth && req.headers.authorization !== options.auth) return void res.writeHead(401).end();
      if (failing > 0) {
        failing--;
        return void res.writeHead(503).end();
      }
      const v = Number(version ?? 0);
      const current = store.get(key)?.version ?? deleted.get(key) ?? 0;
      if (req.method === 'GET') {
        const r = store.get(key);
        if (!r) return void res.writeHead(404).end();
        return void res
          .writeHead(200, {
            'content-type': r.type,
            ...(options.honourVersions ? { [VERSION_HEADER]: String(r.version) } : {}),
          })
          .end(r.body);
      }
      if (options.honourVersions && v <= current) return void res.writeHead(409).end();
      if (req.method === 'PUT') {
        store.set(key, { body: Buffer.concat(chunks), type: req.headers['content-type'] ?? '', version: v });
        deleted.delete(key);
        return void res.writeHead(204).end();
      }
      if (req.method === 'DELETE') {
        const had = store.delete(key);
        deleted.set(key, v);
        return void res.writeHead(had ? 204 : 404).end();
      }
      res.writeHead(405).end();
    });
  });
  return new Promise<{
    url: string;
    store: typeof store;
    seen: typeof seen;
    fail(n: number): void;
    close(): Promise<void>;
  }>((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/cache`,
        store,
        seen,
        fail: (n) => {
          failing = n;
        },
        close: () => new Promise((r) => srv.close(() => r())),
      });
    });
  });
}

describe('HttpOrigin', () => {
  it('speaks the contract: versions on writes, 409 as superseded, 404 as a miss', async () => {
    const svc = await startHttpService({
      honourVersions: true,
      auth: `Basic ${Buffer.from('app:s3cret').toString('base64')}`,
    });
    const o = new HttpOrigin({ url: svc.url.replace('http://', 'http://app:s3cret@'), timeoutMs: 2000 });
    try {
      expect(o.description).not.toContain('s3cret');
      expect(await o.put('a/b', Buffer.from([1, 2, 3]), 'application/octet-stream', 10)).toBe('applied');
      expect(await o.get('a/b')).toEqual({
        body: Buffer.from([1, 2, 3]),
        contentType: 'application/octet-stream',
        version: 10,
      });
      expect(svc.seen[0]).toMatchObject({ method: 'PUT', key: 'a/b', version: '10' });
      expect(await o.put('a/b', Buffer.from('old'), 'text/plain', 9)).toBe('superseded');
      expect(await o.delete('a/b', 11)).toBe('applied');
      expect(await o.get('a/b')).toBeNull();
      expect(await o.delete('never', 12)).toBe('applied');
      const r = await o.applyBatch([
        { op: 'put', key: 'x', version: 20, body: Buffer.from('x'), contentType: 'text/plain' },
        { op: 'put', key: 'y', version: 21, body: Buffer.from('y'), contentType: 'text/plain' },
        { op: 'put', key: 'a/b', version: 5, body: Buffer.from('stale'), contentType: 'text/plain' },
      ]);
      expect({ ...r, appliedKeys: [...(r.appliedKeys ?? [])].sort() }).toEqual({
        applied: 2,
        superseded: 1,
        appliedKeys: ['x', 'y'],
      });
      expect(svc.store.get('a/b')).toBeUndefined();
    } finally {
      await svc.close();
    }
  });

  it('maps 5xx and refused connections to unavailable and other statuses to rejected', async () => {
    const svc = await startHttpService({ honourVersions: false, auth: 'Basic nope' });
    const o = new HttpOrigin({ url: svc.url, timeoutMs: 2000 });
    await expect(o.get('k')).rejects.toThrow(OriginRejectedError); // 401
    await svc.close();
    const open = await startHttpService({ honourVersions: false });
    const o2 = new HttpOrigin({ url: open.url, timeoutMs: 2000 });
    try {
      open.fail(1);
      await expect(o2.put('k', Buffer.from('v'), 'text/plain', 1)).rejects.toThrow(OriginUnavailableError);
      expect(await o2.put('k', Buffer.from('v'), 'text/plain', 1)).toBe('applied');
      expect(await o2.get('k')).toMatchObject({ version: 0 }); // a service that does not echo versions
    } finally {
      await open.close();
    }
    await expect(o2.get('k')).rejects.toThrow(OriginUnavailableError);
  });

  it('counts a batch call once, whether it succeeds or fails (not once per failed write)', async () => {
    const svc = await startHttpService({ honourVersions: true });
    const c = countingEvents();
    const o = new HttpOrigin({ url: svc.url, timeoutMs: 2000, events: c.events });
    const batch = ['p', 'q', 'r'].map((key, i) => ({
      op: 'put' as const,
      key,
      version: 10 + i,
      body: Buffer.from(key),
      contentType: 'text/plain',
    }));
    try {
      svc.fail(3); // every write of the first attempt answers 503
      await expect(o.applyBatch(batch)).rejects.toThrow(OriginUnavailableError);
      expect(c.count('batch/unavailable')).toBe(1);
      expect(await o.applyBatch(batch)).toMatchObject({ applied: 3 });
      expect(c.count('batch/applied')).toBe(1);
      expect(c.count('batch/unavailable')).toBe(1);
      expect(c.rows()).toBe(3);
    } finally {
      await svc.close();
    }
    // Nothing listening: refused connections, still one count for the call.
    await expect(o.applyBatch(batch)).rejects.toThrow(OriginUnavailableError);
    expect(c.count('batch/unavailable')).toBe(2);
  });
});
