/**
 * PostgreSQL as the origin: one table (default `cache_entries`, created if absent) with one row per key.
 * The only importer of `pg`.
 *
 *   CREATE TABLE cache_entries (
 *     key          text PRIMARY KEY,
 *     value        bytea,            -- NULL: the key was deleted (a tombstone carrying its version)
 *     content_type text,             -- NULL for tombstones
 *     version      bigint NOT NULL,  -- the version of the write that produced the row (origin.ts)
 *     updated_at   timestamptz NOT NULL DEFAULT now()
 *   )
 *
 * Every write is one `INSERT … ON CONFLICT (key) DO UPDATE … WHERE stored.version < new.version`: it is
 * applied only if newer, so re-applying it is harmless and an older write never replaces a newer one.
 * A batch is the same statement over `unnest(...)` arrays — one round trip and one implicit transaction
 * for up to `flushBatchSize` keys — with the keys sorted so that two flushers lock rows in the same order
 * (no deadlocks). Applications reading the table directly treat rows with `value IS NULL` as absent.
 */
import pg from 'pg';
import { InvalidKeyError } from '../errors.js';
import {
  latestPerKey,
  NO_ORIGIN_EVENTS,
  OriginRejectedError,
  OriginUnavailableError,
  type BatchResult,
  type Origin,
  type OriginEvents,
  type OriginRecord,
  type OriginWrite,
  type WriteOutcome,
} from './origin.js';

const NUL_KEY = 'PostgreSQL text cannot hold the NUL character in a key';

/** Default table name. */
export const DEFAULT_ORIGIN_TABLE = 'cache_entries';

export interface PostgresPoolOptions {
  /** `postgres://user:password@host:port/db?…`; the password is never logged. */
  url: string;
  /** Connections at most. Default 10. */
  max?: number;
  /** Time box of connecting and of each statement, in ms. Default 5000. */
  timeoutMs?: number;
  /** Called for errors of idle connections (the server went away); they are otherwise harmless. */
  onIdleError?: (err: Error) => void;
}

/** A connection pool for the origin. The caller owns it (and ends it, or lets `PostgresOrigin.close` do it). */
export function createPostgresPool(options: PostgresPoolOptions): pg.Pool {
  const timeoutMs = options.timeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'ripplecache-sidecar',
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener Node would crash.
  pool.on('error', (err) => options.onIdleError?.(err));
  return pool;
}

/** A PostgreSQL identifier we accept for the table: `name` or `schema.name`, letters, digits, `_`, `$`. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** Validates a table name (`name` or `schema.name`) and returns it quoted for SQL. Pure. */
export function quoteTableName(table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new OriginRejectedError(
      `"${table}" is not a table name (letters, digits, _ and $, at most 63 characters, optionally schema.name)`,
    );
  }
  return parts.map((p) => `"${p}"`).join('.');
}

/** SQLSTATE classes that are about the data of one write: retrying it unchanged will not help. */
const REJECTING_CLASSES = new Set(['22', '23']);

/**
 * Maps an error of `pg` to the origin errors. Data errors (classes 22, 23) are rejections and their
 * server message (which may quote the data) is not repeated; everything else — refused or dropped
 * connections, timeouts, shutdowns, deadlocks, serialization failures, missing tables — is "unavailable",
 * because retrying later is what the write-back flusher should do with it. Pure.
 */
export function toOriginError(err: unknown, what: string): OriginUnavailableError | OriginRejectedError {
  if (err instanceof OriginRejectedError || err instanceof OriginUnavailableError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (sqlState !== undefined && REJECTING_CLASSES.has(sqlState.slice(0, 2))) {
    return new OriginRejectedError(`${what}: PostgreSQL refused the data (SQLSTATE ${sqlState})`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new OriginUnavailableError(
    `${what}: ${sqlState ? `PostgreSQL answered SQLSTATE ${sqlState}: ` : ''}${message}`,
    { cause: err },
  );
}

export interface PostgresOriginOptions {
  pool: pg.Pool;
  /** Table name, `name` or `schema.name`. Default `cache_entries`. */
  table?: string;
  /** For logs: where the database is (no password). */
  description?: string;
  events?: OriginEvents;
  /** Also end the pool in `close()`. Default true. */
  ownsPool?: boolean;
}

interface Row {
  value: Buffer | null;
  content_type: string | null;
  version: string;
}

export class PostgresOrigin implements Origin {
  readonly kind = 'postgres';
  readonly description: string;
  readonly table: string;
  private readonly pool: pg.Pool;
  private readonly events: OriginEvents;
  private readonly ownsPool: boolean;
  private ready: Promise<void> | undefined;
  private readonly sql: { create: string; check: string; get: string; upsert: string; batch: string };

  constructor(options: PostgresOriginOptions) {
    this.pool = options.pool;
    this.table = options.table ?? DEFAULT_ORIGIN_TABLE;
    const t = quoteTableName(this.table);
    this.events = options.events ?? NO_ORIGIN_EVENTS;
    this.ownsPool = options.ownsPool ?? true;
    this.description = options.description ?? `postgres table ${this.table}`;
    const onConflict = `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, content_type = EXCLUDED.content_type,
        version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
      WHERE t.version < EXCLUDED.version`;
    this.sql = {
      create: `CREATE TABLE IF NOT EXISTS ${t} (
        key text PRIMARY KEY,
        value bytea,
        content_type text,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())`,
      check: `SELECT key, value, content_type, version, updated_at FROM ${t} LIMIT 0`,
      get: `SELECT value, content_type, version FROM ${t} WHERE key = $1`,
      upsert: `INSERT INTO ${t} AS t (key, value, content_type, version, updated_at)
        VALUES ($1, $2, $3, $4, now()) ${onConflict}`,
      batch: `INSERT INTO ${t} AS t (key, value, content_type, version, updated_at)
        SELECT u.key, u.value, u.content_type, u.version, now()
        FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[]) AS u(key, value, content_type, version)
        ${onConflict}
        RETURNING t.key`,
    };
  }

  init(): Promise<void> {
    this.ready ??= this.createTable().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  checkKey(key: string): void {
    if (key.includes('\u0000')) throw new InvalidKeyError(NUL_KEY);
  }

  async get(key: string): Promise<OriginRecord | null> {
    this.refuseKey(key);
    const rows = await this.run('get', (c) => c.query<Row>(this.sql.get, [key]));
    const row = rows.rows[0];
    if (row === undefined || row.value === null) {
      this.events.request('get', 'miss');
      return null;
    }
    this.events.request('get', 'hit');
    return {
      body: row.value,
      contentType: row.content_type ?? 'application/octet-stream',
      version: Number(row.version),
    };
  }

  async put(key: string, body: Buffer, contentType: string, version: number): Promise<WriteOutcome> {
    this.refuseKey(key);
    return this.writeOne('put', [key, body, contentType, version]);
  }

  async delete(key: string, version: number): Promise<WriteOutcome> {
    this.refuseKey(key);
    return this.writeOne('delete', [key, null, null, version]);
  }

  async applyBatch(writes: readonly OriginWrite[]): Promise<BatchResult> {
    if (writes.length === 0) return { applied: 0, superseded: 0 };
    for (const w of writes) this.refuseKey(w.key);
    // One row per key (a statement may not touch a row twice), in key order (same lock order everywhere).
    const rows = latestPerKey(writes).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const keys: string[] = [];
    const values: (Buffer | null)[] = [];
    const types: (string | null)[] = [];
    const versions: string[] = [];
    for (const w of rows) {
      keys.push(w.key);
      values.push(w.op === 'put' ? w.body : null);
      types.push(w.op === 'put' ? w.contentType : null);
      versions.push(String(w.version));
    }
    const result = await this.run('batch', (c) =>
      c.query<{ key: string }>(this.sql.batch, [keys, values, types, versions]),
    );
    const applied = result.rowCount ?? 0;
    this.events.request('batch', 'applied');
    this.events.rowsWritten(applied);
    return { applied, superseded: writes.length - applied, appliedKeys: result.rows.map((r) => r.key) };
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end().catch(() => {});
  }

  private refuseKey(key: string): void {
    if (key.includes('\u0000')) throw new OriginRejectedError(NUL_KEY);
  }

  private async writeOne(op: 'put' | 'delete', params: unknown[]): Promise<WriteOutcome> {
    const result = await this.run(op, (c) => c.query(this.sql.upsert, params));
    const outcome: WriteOutcome = (result.rowCount ?? 0) > 0 ? 'applied' : 'superseded';
    this.events.request(op, outcome);
    if (outcome === 'applied') this.events.rowsWritten(1);
    return outcome;
  }

  /** Runs a query after `init()`, mapping and counting failures. */
  private async run<T>(op: 'get' | 'put' | 'delete' | 'batch', fn: (c: pg.Pool) => Promise<T>): Promise<T> {
    try {
      await this.init();
      return await fn(this.pool);
    } catch (err) {
      const e = toOriginError(err, `${op} on ${this.table}`);
      this.events.request(op, e instanceof OriginRejectedError ? 'rejected' : 'unavailable');
      throw e;
    }
  }

  private async createTable(): Promise<void> {
    try {
      try {
        await this.pool.query(this.sql.create);
      } catch (err) {
        // Two sidecars creating the table at once: one of them loses the race on the catalog.
        const code = (err as { code?: unknown }).code;
        // 23505 unique_violation, 42P07 duplicate_table, 42710 duplicate_object (the row type of the table).
        if (code !== '23505' && code !== '42P07' && code !== '42710') throw err;
      }
      try {
        await this.pool.query(this.sql.check);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === '42703') {
          throw new OriginRejectedError(
            `table ${this.table} exists but lacks the columns key, value, content_type, version, updated_at`,
          );
        }
        throw err;
      }
      this.events.request('init', 'ok');
    } catch (err) {
      const e = toOriginError(err, `prepare table ${this.table}`);
      this.events.request('init', e instanceof OriginRejectedError ? 'rejected' : 'unavailable');
      throw e;
    }
  }
}
