/**
 * `POST /v1/batch` and write-back coalescing over time, with real sidecar processes, a real redis-server
 * and a real PostgreSQL:
 *   - a batch of mixed operations under each write policy: per-key answers, the database and the
 *     single-key API agree, a bad key and a too large value fail alone, and a second sidecar's L1 is
 *     invalidated;
 *   - under write-back the batch's writes are journaled by one script call (one invalidation message);
 *   - `--write-back-coalesce-window-ms`: a hot key written for several seconds is written to PostgreSQL
 *     at most once per window (rows counted by a trigger), ends at its last acknowledged value, and a
 *     sidecar SIGKILLed during a window loses nothing acknowledged (another sidecar claims its entries),
 *     and open windows close early once the journal is half full rather than refuse writes.
 */
import { parseInvalidation } from '../../common/src/invalidation-message.js';
import { describe, expect, it } from 'vitest';
import { useRedisAndPostgres } from '../harness/origin-fixture.js';
import { waitFor } from '../harness/ports.js';
import { startSidecar, type SidecarProcess } from '../harness/sidecar.js';

const env = useRedisAndPostgres();

type Result = {
  status: number;
  key?: string;
  value?: string;
  encoding?: string;
  contentType?: string;
  tier?: string;
  error?: { code: string; message: string };
};

async function batch(s: SidecarProcess, ops: unknown[]): Promise<{ status: number; results: Result[] }> {
  const res = await fetch(`${s.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ops }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { results: Result[] };
  return { status: res.status, results: body.results };
}

function sidecarArgs(db: number, table: string, policy: string, extra: string[] = []): string[] {
  return [
    '--redis',
    `${env.redis.url}/${db}`,
    '--channel',
    `ripplecache:it-batch-${db}`,
    '--origin',
    env.pg.url,
    '--origin-table',
    table,
    '--write-policy',
    policy,
    '--max-value-bytes',
    '1024',
    '--redis-timeout-ms',
    '2000',
    ...extra,
  ];
}

/** The table the sidecars would create, made beforehand with a trigger counting the rows written. */
async function countedTable(table: string): Promise<() => Promise<{ rows: number; statements: number }>> {
  const admin = env.admin;
  await admin.query(`CREATE TABLE ${table} (
    key text PRIMARY KEY, value bytea, content_type text, version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now())`);
  await admin.query(`CREATE TABLE ${table}_writes (kind text PRIMARY KEY, n bigint NOT NULL)`);
  await admin.query(`INSERT INTO ${table}_writes VALUES ('row', 0), ('statement', 0)`);
  await admin.query(`CREATE FUNCTION ${table}_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE ${table}_writes SET n = n + 1 WHERE kind = lower(TG_LEVEL);
      RETURN NULL;
    END $$`);
  await admin.query(`CREATE TRIGGER ${table}_rows AFTER INSERT OR UPDATE ON ${table}
    FOR EACH ROW EXECUTE FUNCTION ${table}_count()`);
  await admin.query(`CREATE TRIGGER ${table}_statements AFTER INSERT ON ${table}
    FOR EACH STATEMENT EXECUTE FUNCTION ${table}_count()`);
  return async () => {
    const r = await admin.query<{ kind: string; n: string }>(`SELECT kind, n FROM ${table}_writes`);
    const n = (kind: string) => Number(r.rows.find((x) => x.kind === kind)?.n ?? 0);
    return { rows: n('row'), statements: n('statement') };
  };
}

async function dbValue(table: string, key: string): Promise<string | null | undefined> {
  const r = await env.admin.query<{ value: Buffer | null }>(`SELECT value FROM ${table} WHERE key = $1`, [key]);
  return r.rows.length === 0 ? undefined : (r.rows[0]?.value?.toString() ?? null);
}

describe('POST /v1/batch against an origin', () => {
  const policies = ['write-through', 'write-back', 'write-around'] as const;
  it.each(policies.map((p, i) => [p, i + 1] as const))(
    '%s: mixed operations answered per key; the database, Redis and a second sidecar agree',
    async (policy, db) => {
      const table = `batch_${policy.replace('-', '_')}`;
      const args = sidecarArgs(db, table, policy, ['--write-back-flush-interval-ms', '100']);
      const [A, B] = await Promise.all([
        startSidecar({ name: `A-${policy}`, args }),
        startSidecar({ name: `B-${policy}`, args }),
      ]);
      // B holds `shared` and `gone` in its L1 before the batch.
      expect((await A.put('shared', 'before')).status).toBe(204);
      expect((await A.put('gone', 'soon')).status).toBe(204);
      for (const key of ['shared', 'gone']) {
        await waitFor(`B serving ${key} from L1`, async () => (await B.get(key)).tier === 'L1', 10_000, 50);
      }

      const ops = [
        { op: 'put', key: 'shared', value: 'after', contentType: 'text/plain', ttl: 120 },
        { op: 'put', key: 'bin', value: Buffer.from([0, 1, 255]).toString('base64'), encoding: 'base64' },
        { op: 'put', key: 'nul\u0000key', value: 'x' },
        { op: 'put', key: 'big', value: 'x'.repeat(1025) },
        { op: 'delete', key: 'gone' },
        { op: 'get', key: 'shared' },
        { op: 'get', key: 'absent' },
        ...Array.from({ length: 20 }, (_, i) => ({ op: 'put', key: `many-${i}`, value: `v${i}`, ttl: 60 + i })),
      ];
      const { status, results } = await batch(A, ops);
      expect(status).toBe(200);
      expect(results).toHaveLength(ops.length);
      expect(results.slice(0, 7)).toEqual([
        { status: 204, key: 'shared' },
        { status: 204, key: 'bin' },
        {
          status: 400,
          key: 'nul\u0000key',
          error: { code: 'InvalidKey', message: 'PostgreSQL text cannot hold the NUL character in a key' },
        },
        {
          status: 413,
          key: 'big',
          error: { code: 'ValueTooLarge', message: 'the value is 1025 bytes; the limit is 1024 bytes' },
        },
        { status: 204, key: 'gone' },
        expect.objectContaining({ status: 200, key: 'shared', value: 'after', contentType: 'text/plain' }),
        { status: 404, key: 'absent', error: { code: 'NotFound', message: 'no tier holds this key' } },
      ]);
      for (const r of results.slice(7)) expect(r.status).toBe(204);

      // The second sidecar was invalidated: it never answers the old values again.
      await waitFor('B reading the batch', async () => (await B.get('shared')).body === 'after', 10_000, 50);
      // (Under write-back a Redis tombstone reads as a miss and the read goes through to the database,
      // which holds the deleted value until the delete is flushed — the same for a single-key DELETE; so
      // the deleted key is checked once the database has the tombstone.)
      await waitFor(
        'the tombstone of gone in the database',
        async () => (await dbValue(table, 'gone')) === null,
        15_000,
        100,
      );
      expect((await B.get('gone')).status).toBe(404);
      const bin = await fetch(`${B.url}/v1/cache/bin`);
      expect([...Buffer.from(await bin.arrayBuffer())]).toEqual([0, 1, 255]);
      // The single-key API and a batch read on B agree.
      const read = await batch(B, [
        { op: 'get', key: 'many-7' },
        { op: 'get', key: 'big' },
      ]);
      expect(read.results[0]).toMatchObject({ status: 200, value: 'v7' });
      expect(read.results[1]).toMatchObject({ status: 404 });
      // Per-key TTL in Redis (write-back pins records without a TTL until flushed, then gives them theirs;
      // write-around leaves no value in Redis).
      if (policy !== 'write-around') {
        const raw = env.rawClient(db);
        await waitFor(
          'the TTL of many-19 (79 s) in Redis',
          async () => {
            const t = await raw.pttl('rc:many-19');
            return t > 70_000 && t <= 79_000;
          },
          15_000,
          100,
        );
      }

      // The database holds every accepted write, and none of the refused ones.
      await waitFor(
        'the database holding the batch',
        async () =>
          (await dbValue(table, 'shared')) === 'after' &&
          (await dbValue(table, 'many-19')) === 'v19' &&
          (await dbValue(table, 'gone')) === null,
        15_000,
        100,
      );
      expect(await dbValue(table, 'gone')).toBeNull(); // a tombstone
      expect(await dbValue(table, 'big')).toBeUndefined();
      const count = await env.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE key LIKE 'many-%'`);
      expect(Number(count.rows[0]?.n)).toBe(20);
      await Promise.all([A.stop(), B.stop()]);
    },
  );

  it.each([
    ['write-through', 7],
    ['write-around', 8],
  ] as const)('%s: the first write of each key of a batch goes to PostgreSQL in one statement', async (policy, db) => {
    const table = `batch_group_${policy.replace('-', '_')}`;
    const counts = await countedTable(table);
    const A = await startSidecar({ name: `A-group-${policy}`, args: sidecarArgs(db, table, policy) });
    const ops = [
      ...Array.from({ length: 30 }, (_, i) => ({ op: 'put', key: `p-${i}`, value: `v${i}` })),
      ...Array.from({ length: 5 }, (_, i) => ({ op: 'delete', key: `d-${i}` })),
      { op: 'put', key: 'p-0', value: 'again' },
      { op: 'put', key: 'bad\u0000key', value: 'x' },
    ];
    const { results } = await batch(A, ops);
    expect(results.slice(0, 36).every((r) => r.status === 204)).toBe(true);
    expect(results[36]).toMatchObject({ status: 400, error: { code: 'InvalidKey' } });
    // 35 rows in one statement (30 values, 5 tombstones), then the second put of p-0 alone, after it.
    expect(await counts()).toEqual({ rows: 36, statements: 2 });
    expect(await dbValue(table, 'p-0')).toBe('again');
    expect(await dbValue(table, 'd-4')).toBeNull();
    expect((await A.get('p-0')).body).toBe('again');
    expect((await A.get('p-29')).body).toBe('v29');
    await A.stop();
  });

  it('write-back: the writes of one batch are journaled by one script call (one invalidation message)', async () => {
    const db = 4;
    const args = sidecarArgs(db, 'batch_group', 'write-back', ['--write-back-flush-interval-ms', '100']);
    const A = await startSidecar({ name: 'A-group', args });
    const sub = env.rawClient(db);
    const messages: string[][] = [];
    sub.on('message', (_c: string, m: string) => {
      const msg = parseInvalidation(m);
      if ('keys' in msg) messages.push(msg.keys);
    });
    await sub.subscribe(`ripplecache:it-batch-${db}`);
    const keys = Array.from({ length: 100 }, (_, i) => `g-${i}`);
    const { results } = await batch(
      A,
      keys.map((key) => ({ op: 'put', key, value: key })),
    );
    expect(results.every((r) => r.status === 204)).toBe(true);
    await waitFor('the invalidation of the batch', async () => messages.some((m) => m.includes('g-0')), 5000, 20);
    // Let any later message arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const naming = messages.filter((m) => m.some((k) => k.startsWith('g-')));
    expect(naming).toHaveLength(1);
    expect([...(naming[0] ?? [])].sort()).toEqual([...keys].sort());
    await A.stop();
  });
});

describe('write-back coalescing over time (--write-back-coalesce-window-ms)', () => {
  it('a hot key written for seconds is written to PostgreSQL at most once per window, ending at its last value', async () => {
    const db = 5;
    const table = 'coalesce_hot';
    const counts = await countedTable(table);
    const windowMs = 1500;
    const args = sidecarArgs(db, table, 'write-back', [
      '--write-back-flush-interval-ms',
      '100',
      '--write-back-coalesce-window-ms',
      String(windowMs),
      '--write-back-claim-timeout-ms',
      '10000',
    ]);
    const A = await startSidecar({ name: 'A-window', args });
    const raw = env.rawClient(db);
    const started = Date.now();
    let last = '';
    let writes = 0;
    let journalMax = 0;
    // About 4 seconds of writes to one key (bounded in count too).
    while (Date.now() - started < 4000 && writes < 2000) {
      last = `v${writes}`;
      const r = await A.put('hot', last);
      expect(r.status).toBe(204);
      writes++;
      if (writes % 20 === 0) journalMax = Math.max(journalMax, await raw.xlen('ripplecache:write-back'));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const spanMs = Date.now() - started;
    // A superseded entry is acknowledged and deleted as soon as the flusher reads the one superseding it: the
    // journal holds the window's one entry plus what was written since the last read (100 ms), not every
    // write of the window (it held hundreds before).
    console.log(`coalescing: the journal held at most ${journalMax} entries`);
    expect(journalMax).toBeLessThan(100);
    await waitFor(
      'the last acknowledged value in PostgreSQL',
      async () => (await dbValue(table, 'hot')) === last,
      20_000,
      100,
    );
    const { rows, statements } = await counts();
    // Windows are back to back: a key's window opens when the flusher first reads one of its entries.
    const windows = Math.floor(spanMs / windowMs) + 2;
    console.log(
      `coalescing: ${writes} writes over ${spanMs} ms, window ${windowMs} ms → ${rows} rows, ${statements} statements`,
    );
    expect(writes).toBeGreaterThan(50);
    expect(rows).toBeGreaterThanOrEqual(1);
    expect(rows).toBeLessThanOrEqual(windows);
    expect(statements).toBe(rows);
    await A.stop();
  });

  it('a sidecar SIGKILLed during a window loses nothing acknowledged: another one writes it', async () => {
    const db = 6;
    const table = 'coalesce_kill';
    const counts = await countedTable(table);
    const args = sidecarArgs(db, table, 'write-back', [
      '--write-back-flush-interval-ms',
      '100',
      '--write-back-coalesce-window-ms',
      '4000',
      '--write-back-claim-timeout-ms',
      '9000',
    ]);
    const [A, B] = await Promise.all([startSidecar({ name: 'A-kill', args }), startSidecar({ name: 'B-kill', args })]);
    const last = new Map<string, string>();
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) {
      const key = i % 2 === 0 ? 'hot' : `cold-${i}`;
      const value = `a${i}`;
      expect((await A.put(key, value)).status).toBe(204);
      last.set(key, value);
    }
    const { results } = await batch(A, [
      { op: 'put', key: 'hot', value: 'final' },
      { op: 'put', key: 'batch-key', value: 'b' },
    ]);
    expect(results.map((r) => r.status)).toEqual([204, 204]);
    last.set('hot', 'final');
    last.set('batch-key', 'b');
    const elapsed = Date.now() - t0;
    await A.signal('SIGKILL');
    // The writes took less than the window: A was holding them when it died.
    expect(elapsed).toBeLessThan(4000);
    expect(await dbValue(table, 'hot')).toBeUndefined();
    expect((await counts()).rows).toBe(0);
    // B claims A's pending entries after the claim timeout and writes each key's last value.
    await waitFor(
      'every acknowledged value in PostgreSQL',
      async () => {
        for (const [k, v] of last) if ((await dbValue(table, k)) !== v) return false;
        return true;
      },
      45_000,
      250,
    );
    const raw = env.rawClient(db);
    await waitFor('the journal empty', async () => (await raw.xlen('ripplecache:write-back')) === 0, 20_000, 200);
    await B.stop();
  });

  it('open windows never fill the journal: past half of maxPending they close early instead of refusing writes', async () => {
    const db = 7;
    const table = 'coalesce_pressure';
    const counts = await countedTable(table);
    const windowMs = 12_000;
    const maxPending = 400;
    const args = sidecarArgs(db, table, 'write-back', [
      '--write-back-flush-interval-ms',
      '100',
      '--write-back-flush-batch-size',
      '50',
      '--write-back-max-pending',
      String(maxPending),
      '--write-back-coalesce-window-ms',
      String(windowMs),
    ]);
    const A = await startSidecar({ name: 'A-pressure', args });
    const last = new Map<string, string>();
    let refused = 0;
    const t0 = Date.now();
    // 1,000 acknowledged writes over 300 keys: 2.5 × maxPending. Without early closing nothing would leave
    // the journal before the first window closes (12 s), so the writes past 400 could not be acknowledged
    // before then. A refused write (503 WriteBackBacklogFull) is retried, as a client honouring Retry-After.
    for (let i = 0; i < 1000 && Date.now() - t0 < 60_000; i++) {
      const key = `k-${(i * 7) % 300}`;
      const value = `v${i}`;
      for (;;) {
        const r = await A.put(key, value);
        if (r.status === 204) break;
        expect(r.status).toBe(503);
        refused++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      last.set(key, value);
    }
    const elapsed = Date.now() - t0;
    console.log(`window pressure: 1,000 writes acknowledged in ${elapsed} ms, ${refused} refusals retried`);
    expect(last.size).toBe(300);
    expect(elapsed).toBeLessThan(windowMs);
    // What the pressure did not write early, the windows write when they close.
    await waitFor(
      'every acknowledged value in PostgreSQL',
      async () => {
        for (const [k, v] of last) if ((await dbValue(table, k)) !== v) return false;
        return true;
      },
      windowMs + 20_000,
      250,
    );
    const { rows } = await counts();
    expect(rows).toBeGreaterThanOrEqual(300);
    expect(rows).toBeLessThanOrEqual(1000);
    await A.stop();
  });
});
