/**
 * Writes the database superseded (the application wrote the row itself with a larger version), through
 * real sidecar processes on a real redis-server and a real PostgreSQL: Redis must not be left holding
 * anything older than the database, and no sidecar may keep answering the older value (README "Write
 * policies → Versions: never older than the database"). Also: a write-back sidecar that stops cleanly
 * after draining the journal leaves no consumer behind in the journal's group.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { useRedisAndPostgres } from '../harness/origin-fixture.js';
import { startSidecar, type SidecarProcess } from '../harness/sidecar.js';

const env = useRedisAndPostgres();

/** A version larger than any the sidecars hand out (microseconds of the clock) for centuries. */
const APP_VERSION = '9000000000000000';

type Policy = 'write-through' | 'write-back' | 'write-around';

async function group(policy: Policy, db: number, names: string[]) {
  const table = `sup_${policy.replace('-', '_')}_${db}`;
  const args = env.writerArgs({ db, channel: 'ripplecache:it-sup', table, policy });
  const sidecars = await Promise.all(names.map((name) => startSidecar({ name, args })));
  const raw = env.rawClient(db);
  const record = async (key: string) => {
    const h = await raw.hgetall(`rc:${key}`);
    if (Object.keys(h).length === 0) return undefined;
    return { value: h.v, version: Number(h.ver ?? 0), deleted: h.del, pttl: await raw.pttl(`rc:${key}`) };
  };
  const row = async (key: string) => {
    const r = await env.admin.query<{ value: Buffer | null; version: string }>(
      `SELECT value, version FROM ${table} WHERE key = $1`,
      [key],
    );
    const x = r.rows[0];
    return x && { value: x.value?.toString() ?? null, version: x.version };
  };
  /** The application writes the row itself, with a version larger than the sidecars'. */
  const appWrite = async (key: string, value: string) => {
    await env.admin.query(
      `INSERT INTO ${table} (key, value, content_type, version) VALUES ($1, $2, 'text/plain', ${APP_VERSION})
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
         version = excluded.version`,
      [key, Buffer.from(value)],
    );
  };
  return { sidecars, table, raw, record, row, appWrite };
}

async function batch(s: SidecarProcess, ops: unknown[]): Promise<number[]> {
  const res = await fetch(`${s.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ops }),
    signal: AbortSignal.timeout(20_000),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { results: { status: number }[] };
  return body.results.map((r) => r.status);
}

/** Every sidecar answers the application's row (from the database, then its tiers). */
async function allSee(sidecars: SidecarProcess[], key: string, value: string) {
  for (const s of sidecars) {
    await waitFor(`${s.name} answering ${value} for ${key}`, async () => (await s.get(key)).body === value, 5000, 20);
  }
}

describe('a write the database superseded', () => {
  it('write-through PUT and DELETE: Redis keeps nothing older than the row; every sidecar reads the row', async () => {
    const { sidecars, record, row, appWrite } = await group('write-through', 1, ['sup-wt-A', 'sup-wt-B']);
    const [A, B] = sidecars as [SidecarProcess, SidecarProcess];

    expect((await A.put('AP6', 'old')).status).toBe(204);
    // B holds the old value in its L1.
    expect((await B.get('AP6')).body).toBe('old');
    await waitFor('B caching AP6 in L1', async () => (await B.get('AP6')).tier === 'L1', 5000, 20);
    await appWrite('AP6', 'app6');

    expect((await A.put('AP6', 'sc6')).status).toBe(204);
    expect(await row('AP6')).toEqual({ value: 'app6', version: APP_VERSION });
    // Redis holds no value older than the row: it reads through.
    expect((await record('AP6'))?.value).toBeUndefined();
    expect(await A.get('AP6')).toMatchObject({ status: 200, body: 'app6' });
    await allSee([A, B], 'AP6', 'app6');
    expect(await record('AP6')).toMatchObject({ value: 'app6', version: Number(APP_VERSION) });

    // DELETE superseded.
    expect((await A.put('AP7', 'old7')).status).toBe(204);
    expect((await B.get('AP7')).body).toBe('old7');
    await appWrite('AP7', 'app7');
    expect((await A.del('AP7')).status).toBe(204);
    expect(await row('AP7')).toEqual({ value: 'app7', version: APP_VERSION });
    await allSee([A, B], 'AP7', 'app7');

    // POST /v1/batch.
    expect((await A.put('AP8', 'old8')).status).toBe(204);
    expect((await B.get('AP8')).body).toBe('old8');
    await appWrite('AP8', 'app8');
    expect(
      await batch(A, [
        { op: 'put', key: 'AP8', value: 'sc8' },
        { op: 'put', key: 'AP9', value: 'v9' },
      ]),
    ).toEqual([204, 204]);
    expect((await record('AP8'))?.value).toBeUndefined();
    await allSee([A, B], 'AP8', 'app8');
    await allSee([A, B], 'AP9', 'v9');
  });

  it('write-back PUT, DELETE and batch: after the flush Redis keeps nothing older than the row', async () => {
    const { sidecars, record, row, appWrite } = await group('write-back', 2, ['sup-wb-A', 'sup-wb-B']);
    const [A, B] = sidecars as [SidecarProcess, SidecarProcess];
    // The flusher creates the table with its first batch.
    expect((await A.put('warm-up', 'w')).status).toBe(204);
    await waitFor('the table', async () => (await row('warm-up').catch(() => undefined)) !== undefined, 5000, 50);

    await appWrite('AP2', 'app');
    expect((await A.put('AP2', 'sc')).status).toBe(204);
    await appWrite('AP3', 'app3');
    expect((await A.del('AP3')).status).toBe(204);
    await appWrite('AP4', 'app4');
    expect(await batch(A, [{ op: 'put', key: 'AP4', value: 'sc4' }])).toEqual([204]);
    // Both read the journaled values before the flush (the flushing sidecar's own L1 must drop them too).
    expect((await A.get('AP2')).body).toBe('sc');
    expect((await B.get('AP2')).body).toBe('sc');

    await waitFor(
      'the flush',
      async () => {
        const r = await record('AP2');
        return r !== undefined && r.value === undefined;
      },
      5000,
      50,
    );
    expect(await row('AP2')).toEqual({ value: 'app', version: APP_VERSION });
    expect(await row('AP3')).toEqual({ value: 'app3', version: APP_VERSION });
    expect(await row('AP4')).toEqual({ value: 'app4', version: APP_VERSION });
    for (const key of ['AP2', 'AP3', 'AP4']) {
      const r = await record(key);
      // An invalidation (the next read goes to the database), with a TTL, not the flushed write.
      if (r !== undefined) {
        expect(r.value).toBeUndefined();
        expect(r.deleted).toBeUndefined();
        expect(r.pttl).toBeGreaterThan(0);
      }
    }
    await allSee([A, B], 'AP2', 'app');
    await allSee([A, B], 'AP3', 'app3');
    await allSee([A, B], 'AP4', 'app4');
    expect(await record('AP2')).toMatchObject({ value: 'app', version: Number(APP_VERSION) });
  });

  it('a newer write in Redis is left alone when an older one is superseded', async () => {
    const { sidecars, record, appWrite } = await group('write-through', 3, ['sup-wt-C']);
    const [A] = sidecars as [SidecarProcess];
    expect((await A.put('K', 'v1')).status).toBe(204);
    const v1 = (await record('K'))?.version ?? 0;
    // A record newer than anything the next write will take (a concurrent newer write, say).
    await env.rawClient(3).hset('rc:K', 'v', 'newer', 'ct', 'text/plain', 'ver', String(Number(APP_VERSION) + 1));
    await appWrite('K', 'app');
    expect((await A.put('K', 'sc')).status).toBe(204);
    expect(await record('K')).toMatchObject({ value: 'newer', version: Number(APP_VERSION) + 1 });
    expect(v1).toBeGreaterThan(0);
  });
});

describe('write-back consumers', () => {
  it('a sidecar stopped cleanly after draining removes its consumer; the others stay', async () => {
    const { sidecars, raw } = await group('write-back', 4, ['cons-A', 'cons-B']);
    const [A, B] = sidecars as [SidecarProcess, SidecarProcess];
    expect((await A.put('c1', 'x')).status).toBe(204);
    expect((await B.put('c2', 'y')).status).toBe(204);
    const consumers = async () =>
      ((await raw.xinfo('CONSUMERS', 'ripplecache:write-back', 'flushers')) as unknown[][]).map((c) => String(c[1]));
    await waitFor('both consumers', async () => (await consumers()).length === 2, 5000, 50);
    expect(await A.signal('SIGTERM')).toBe(0);
    expect(await consumers()).toHaveLength(1);
    expect(await B.signal('SIGTERM')).toBe(0);
    expect(await consumers()).toEqual([]);
    expect(await raw.xlen('ripplecache:write-back')).toBe(0);
  });
});
