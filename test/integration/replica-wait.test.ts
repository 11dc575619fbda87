/**
 * `--durability replicated` with real processes: a redis-server primary and its replica (a second
 * redis-server with --replicaof), PostgreSQL, and sidecar processes under write-through and write-back.
 *   - WAIT success: a 204 comes only once the replica holds the record (read on the replica right after).
 *   - WAIT timeout: the replica frozen (SIGSTOP) → 503 ReplicationTimeout, no 204 for any write of a
 *     group-committed batch; the metric counts the timeout; after SIGCONT writes are acknowledged again.
 *   - durability primary (the default) does not wait: a frozen replica does not stop its 204s.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../harness/sidecar.js';

let primary: RedisProcess;
let replica: RedisProcess;
let pgServer: PostgresServer;
let admin: pg.Pool;
let onPrimary: Redis;
let onReplica: Redis;

beforeAll(async () => {
  [primary, pgServer] = await Promise.all([startRedis(), startPostgres()]);
  replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  admin.on('error', () => {});
  onPrimary = new Redis(primary.url);
  onReplica = new Redis(replica.url);
  await waitFor(
    'the replica linked to the primary',
    async () => String(await onReplica.info('replication')).includes('master_link_status:up'),
    20_000,
    100,
  );
});

afterAll(async () => {
  if (replica?.pid > 0) process.kill(replica.pid, 'SIGCONT');
  await stopAllSidecars();
  onPrimary?.disconnect();
  onReplica?.disconnect();
  await admin?.end();
  await Promise.all([replica?.stop(), primary?.stop(), pgServer?.stop()]);
});

function sidecar(policy: 'write-through' | 'write-back', table: string, extra: string[] = []): Promise<SidecarProcess> {
  return startSidecar({
    args: [
      '--redis',
      primary.url,
      '--channel',
      `ripplecache:it-wait-${table}`,
      '--origin',
      pgServer.url,
      '--origin-table',
      table,
      '--write-policy',
      policy,
      '--write-back-flush-interval-ms',
      '100',
      ...extra,
    ],
  });
}

/** SIGSTOPs the replica for the duration of `fn` (it neither reads the replication stream nor acknowledges). */
async function withReplicaFrozen<T>(fn: () => Promise<T>): Promise<T> {
  process.kill(replica.pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(replica.pid, 'SIGCONT');
  }
}

describe('durability replicated: WAIT for one replica before the 204', () => {
  for (const policy of ['write-through', 'write-back'] as const) {
    it(`${policy}: each 204 comes after the replica holds the record`, async () => {
      const table = `wait_ok_${policy.replace('-', '_')}`;
      const s = await sidecar(policy, table, ['--durability', 'replicated', '--durability-timeout-ms', '5000']);
      for (let i = 0; i < 50; i++) {
        const key = `${policy}-ok-${i % 10}`;
        const r = await s.put(key, `v${i}`);
        expect(r.status, r.body).toBe(204);
        // Read on the replica right after the 204: WAIT answered only once the replica had applied it.
        expect((await onReplica.hget(`rc:${key}`, 'v')) ?? '(none)').toBe(`v${i}`);
      }
      expect(await s.metric('ripplecache_sidecar_replica_waits_total', { outcome: 'acknowledged' })).toBeGreaterThan(0);
      expect(await s.metric('ripplecache_sidecar_replica_waits_total', { outcome: 'timeout' })).toBe(0);
      await s.stop();
    });

    it(`${policy}: a frozen replica → 503 ReplicationTimeout for every write, none acknowledged; then 204 again`, async () => {
      const table = `wait_timeout_${policy.replace('-', '_')}`;
      const s = await sidecar(policy, table, ['--durability', 'replicated', '--durability-timeout-ms', '300']);
      expect((await s.put(`${policy}-t-warm`, 'w')).status).toBe(204);
      const answers = await withReplicaFrozen(() =>
        // Concurrent writes: under write-back they share an append call and its WAIT.
        Promise.all(Array.from({ length: 8 }, (_, i) => s.put(`${policy}-t-${i}`, `frozen-${i}`))),
      );
      for (const r of answers) {
        expect(r.status, r.body).toBe(503);
        expect(r.code).toBe('ReplicationTimeout');
        expect(r.body).toMatch(/0 of 1 replica\(s\) acknowledged the write within 300 ms/);
      }
      expect(await s.metric('ripplecache_sidecar_replica_waits_total', { outcome: 'timeout' })).toBeGreaterThan(0);
      // Thawed: the replica catches up and the next writes are acknowledged.
      await waitFor(
        'a write acknowledged after the thaw',
        async () => (await s.put(`${policy}-t-0`, 'after')).status === 204,
      );
      expect(await onReplica.hget(`rc:${policy}-t-0`, 'v')).toBe('after');
      await s.stop();
    });
  }

  it('durability primary (the default) acknowledges without waiting for the replica', async () => {
    const s = await sidecar('write-through', 'wait_primary');
    const r = await withReplicaFrozen(() => s.put('primary-only', 'x'));
    expect(r.status, r.body).toBe(204);
    expect(await s.metric('ripplecache_sidecar_replica_waits_total', { outcome: 'acknowledged' })).toBe(0);
    await s.stop();
  });
});
