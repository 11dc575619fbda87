/**
 * Write-back durability with real sidecar processes, a real redis-server and a real PostgreSQL:
 *   - 10,000 acknowledged writes over 1,000 keys, then SIGKILL of the sidecar: another sidecar finishes
 *     the work (claims what the dead one held) and every key ends with its last acknowledged value;
 *   - PostgreSQL stopped for 30 seconds under load: nothing acknowledged is lost;
 *   - SIGTERM drains the journal.
 * Keys are partitioned among the load workers so that each key's writes are sequential and "the last
 * acknowledged value" of a key is well defined.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { useRedisAndPostgres } from '../harness/origin-fixture.js';
import { startSidecar, type SidecarProcess } from '../harness/sidecar.js';

const JOURNAL = 'ripplecache:write-back';
const env = useRedisAndPostgres();

function setup(db: number, extra: string[] = []) {
  const table = `wb_durability_${db}`;
  const args = [
    '--redis',
    `${env.redis.url}/${db}`,
    '--channel',
    `ripplecache:it-wbd-${db}`,
    '--origin',
    env.pg.url,
    '--origin-table',
    table,
    '--write-policy',
    'write-back',
    '--redis-timeout-ms',
    '2000',
    ...extra,
  ];
  const raw = env.rawClient(db);
  const dbValues = async () => {
    const r = await env.admin.query<{ key: string; value: Buffer | null }>(`SELECT key, value FROM ${table}`);
    return new Map(r.rows.map((x) => [x.key, x.value?.toString() ?? null]));
  };
  /** Resolves once every key holds its last acknowledged value in PostgreSQL. */
  const converged = (last: Map<string, string>, timeoutMs: number) =>
    waitFor(
      'every key at its last acknowledged value',
      async () => {
        const db = await dbValues();
        return [...last].every(([k, v]) => db.get(k) === v);
      },
      timeoutMs,
      200,
    );
  return { table, args, raw, dbValues, converged };
}

/**
 * Runs `workers` loops; worker w owns the keys k ≡ w (mod workers) and writes them in turn. Bounded by
 * `total` writes and by `untilMs`. Returns the last acknowledged value per key and the refusals.
 */
async function writeLoad(opts: {
  sidecars: SidecarProcess[];
  keys: number;
  workers: number;
  total: number;
  untilMs: number;
  tag: string;
  pauseMs?: number;
  last?: Map<string, string>;
}) {
  const last = opts.last ?? new Map<string, string>();
  let sent = 0;
  let acknowledged = 0;
  const refused = new Map<string, number>();
  const worker = async (w: number) => {
    const own = Array.from({ length: Math.ceil(opts.keys / opts.workers) }, (_, j) => w + j * opts.workers).filter(
      (k) => k < opts.keys,
    );
    for (let j = 0; sent < opts.total && Date.now() < opts.untilMs; j++) {
      sent++;
      const key = `key-${own[j % own.length]}`;
      const value = `${opts.tag}-${w}-${j}`;
      const s = opts.sidecars[j % opts.sidecars.length] as SidecarProcess;
      const r = await s.put(key, value);
      if (r.status === 204) {
        last.set(key, value);
        acknowledged++;
      } else {
        refused.set(r.code ?? String(r.status), (refused.get(r.code ?? String(r.status)) ?? 0) + 1);
      }
      if (opts.pauseMs) await new Promise((resolve) => setTimeout(resolve, opts.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
  return { last, acknowledged, refused };
}

describe('write-back durability', () => {
  it('10,000 acknowledged writes over 1,000 keys, then SIGKILL: another sidecar finishes the work', async () => {
    const { args, raw, converged, dbValues } = setup(1, [
      '--write-back-flush-interval-ms',
      '200',
      '--write-back-claim-timeout-ms',
      '3000',
    ]);
    const [W1, W2] = await Promise.all([startSidecar({ name: 'W1', args }), startSidecar({ name: 'W2', args })]);
    if (!W1 || !W2) throw new Error('no sidecars');
    // 9,000 writes with the database up: both sidecars flush (they share the journal).
    const first = await writeLoad({
      sidecars: [W1],
      keys: 1000,
      workers: 20,
      total: 9000,
      untilMs: Date.now() + 90_000,
      tag: 'a',
    });
    expect(first.acknowledged).toBe(9000);
    // The last 1,000 with the database down, so that W1 is caught holding a batch it cannot write.
    await env.pg.stopServer();
    let pgUp = false;
    try {
      const second = await writeLoad({
        sidecars: [W1],
        keys: 1000,
        workers: 20,
        total: 1000,
        untilMs: Date.now() + 60_000,
        tag: 'b',
        last: first.last,
      });
      expect(second.acknowledged).toBe(1000);
      await waitFor(
        'W1 failing to flush',
        async () => (await W1.metric('ripplecache_sidecar_writeback_failures_total', { kind: 'origin' })) > 0,
        10_000,
        50,
      );
      const [count, , , consumers] = (await raw.xpending(JOURNAL, 'flushers')) as [
        number,
        string,
        string,
        [string, string][],
      ];
      expect(count).toBeGreaterThan(0);
      expect(consumers.length).toBeGreaterThanOrEqual(1);
      expect(await W1.signal('SIGKILL')).toBeNull();
      await env.pg.startServer();
      pgUp = true;
    } finally {
      if (!pgUp) await env.pg.startServer();
    }
    await converged(first.last, 90_000);
    await waitFor(
      'the journal empty and nothing pending',
      async () => (await raw.xlen(JOURNAL)) === 0 && (await raw.xpending(JOURNAL, 'flushers'))[0] === 0,
      30_000,
      100,
    );
    expect(W2.output()).toContain('Claimed write-back entries left pending by another sidecar');
    const db = await dbValues();
    expect([...first.last.keys()].filter((k) => db.get(k) !== first.last.get(k))).toEqual([]);
    expect(first.last.size).toBe(1000);
  }, 240_000);

  it('PostgreSQL stopped for 30 seconds under load: after it returns nothing is lost', async () => {
    const { args, raw, converged } = setup(2, ['--write-back-flush-interval-ms', '250']);
    const [A, B] = await Promise.all([startSidecar({ name: 'out-A', args }), startSidecar({ name: 'out-B', args })]);
    if (!A || !B) throw new Error('no sidecars');
    const started = Date.now();
    const loadDone = writeLoad({
      sidecars: [A, B],
      keys: 500,
      workers: 8,
      total: 80_000,
      untilMs: started + 38_000,
      tag: 'o',
      pauseMs: 4,
    });
    await new Promise((r) => setTimeout(r, 3000));
    await env.pg.stopServer();
    let oldest = 0;
    try {
      const downUntil = Date.now() + 30_000;
      while (Date.now() < downUntil) {
        oldest = Math.max(oldest, await A.metric('ripplecache_sidecar_writeback_oldest_pending_seconds'));
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      await env.pg.startServer();
    }
    const { last, acknowledged, refused } = await loadDone;
    expect(Object.fromEntries(refused)).toEqual({});
    expect(acknowledged).toBeGreaterThan(5000);
    expect(oldest).toBeGreaterThan(20);
    const failures =
      (await A.metric('ripplecache_sidecar_writeback_failures_total', { kind: 'origin' })) +
      (await B.metric('ripplecache_sidecar_writeback_failures_total', { kind: 'origin' }));
    expect(failures).toBeGreaterThan(0);
    await converged(last, 120_000);
    await waitFor('the journal empty', async () => (await raw.xlen(JOURNAL)) === 0, 30_000, 100);
    await waitFor(
      'the backlog metric back to 0',
      async () => (await A.metric('ripplecache_sidecar_writeback_pending')) === 0,
      10_000,
      100,
    );
  }, 240_000);

  it('SIGTERM drains the journal before the process exits', async () => {
    const { args, raw, converged } = setup(3, [
      '--write-back-flush-interval-ms',
      '3600000',
      '--write-back-flush-batch-size',
      '1000000',
    ]);
    const D = await startSidecar({ name: 'drain', args });
    const { last, acknowledged } = await writeLoad({
      sidecars: [D],
      keys: 300,
      workers: 10,
      total: 2000,
      untilMs: Date.now() + 60_000,
      tag: 'd',
    });
    expect(acknowledged).toBe(2000);
    expect(await raw.xlen(JOURNAL)).toBe(2000);
    expect(await D.signal('SIGTERM')).toBe(0);
    expect(await raw.xlen(JOURNAL)).toBe(0);
    await converged(last, 1000);
  }, 120_000);
});
