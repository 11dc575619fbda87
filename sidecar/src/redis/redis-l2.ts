/**
 * L2: the records in Redis. The only ioredis user of the data path (with the subscriber).
 *
 * Storage format (v1), documented in docs/sidecar.md because the write-policy issue builds on it:
 * one Redis hash per key, named `rc:<key>`, with fields
 *   - `v`:  the value bytes, exactly as PUT,
 *   - `ct`: the Content-Type given at write time,
 * and the TTL on the hash itself (PEXPIRE; none when the TTL is 0). Other fields (a per-key version) may
 * be added by later issues; readers ignore fields they do not know. A write is one MULTI: HSET v ct,
 * PEXPIRE or PERSIST, PUBLISH of the invalidation; a read is one MULTI: HMGET v ct, PTTL.
 *
 * On Redis Cluster the record key carries its bucket's hash tag (`rc:{tag}<key>`, key-layout.ts); a write's
 * MULTI touches one key, so one slot, and its PUBLISH reaches every node's subscribers over the cluster
 * bus. A multi-key delete is one MULTI per bucket, then one PUBLISH; `deleteAll` scans every primary; a
 * `consistency=all` read asks every copy of the key's shard: its primary and each replica (READONLY).
 */
import type { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError, StoredRecordInvalidError } from '../errors.js';
import { isL2Deleted, type CacheValue, type L2Deleted, type L2Record, type L2Store } from '../tiers/tiered-cache.js';
import { RECORD_KEY_PATTERN } from '../../../common/src/protocol.js';
import { groupByBucket } from '../write/bucket-batching.js';
import { publishInBucket } from './bucket-publish.js';
import { keySlot, SINGLE_LAYOUT, type KeyLayout } from '../write/key-layout.js';
import {
  callRedis,
  createRedisClient,
  isCluster,
  nodeName,
  toSidecarError,
  whenReady,
  type RedisClient,
} from './redis-client.js';

export const FIELD_VALUE = 'v';
export const FIELD_CONTENT_TYPE = 'ct';
/** Fields of versioned records (redis/versioned-records.ts): the version, and a DELETE's tombstone mark. */
const FIELD_VERSION = 'ver';
const FIELD_DELETED = 'del';

/** One node's answer in a `consistency=all` read. */
export interface NodeRead {
  node: string;
  role: 'primary' | 'replica';
  /** `value`: the node holds the key; `missing`: it does not; `error`: it could not be read. */
  status: 'value' | 'missing' | 'error';
  record?: L2Record;
  error?: { code: string; message: string };
}

export interface RedisL2Options {
  primary: RedisClient;
  /** Record keys. Default the single layout (`rc:<key>`); bucketed on Redis Cluster. */
  layout?: KeyLayout;
  channel: string;
  /** Explicit replica URLs; when empty, replicas are discovered with INFO replication on the primary. */
  replicaUrls: readonly string[];
  password: string | undefined;
  timeoutMs: number;
  /** Called once for every failed Redis call (metrics). */
  onError: (err: unknown) => void;
}

export class RedisL2 implements L2Store {
  private readonly primary: RedisClient;
  private readonly layout: KeyLayout;
  private readonly channel: string;
  private readonly timeoutMs: number;
  private readonly password: string | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly explicitReplicas: boolean;
  /** Replica connections by URL (explicit ones from the start, discovered ones on first use). */
  private readonly replicas = new Map<string, Redis>();

  constructor(options: RedisL2Options) {
    this.primary = options.primary;
    this.layout = options.layout ?? SINGLE_LAYOUT;
    this.channel = options.channel;
    this.timeoutMs = options.timeoutMs;
    this.password = options.password;
    this.onError = options.onError;
    this.explicitReplicas = options.replicaUrls.length > 0;
    for (const url of options.replicaUrls) this.replicaClient(url);
  }

  get available(): boolean {
    return this.primary.status === 'ready';
  }

  async get(key: string): Promise<L2Record | L2Deleted | null> {
    return this.readFrom(this.primary, key);
  }

  async set(key: string, value: CacheValue, ttlSeconds: number, invalidation: string): Promise<void> {
    const rk = this.layout.recordKey(key);
    const tx = this.primary.multi().hset(rk, FIELD_VALUE, value.body, FIELD_CONTENT_TYPE, value.contentType);
    if (ttlSeconds > 0) tx.pexpire(rk, ttlSeconds * 1000);
    else tx.persist(rk);
    tx.publish(this.channel, invalidation);
    await this.exec(tx, 'write');
  }

  async delete(keys: readonly string[], invalidation: string): Promise<number> {
    if (this.layout.buckets.length > 1 && keys.length > 0) {
      // Redis Cluster: a DEL per bucket (one slot each), all in the air, then the invalidation.
      const groups = groupByBucket(keys, (k) => this.layout.bucketOf(k).index);
      const counts = await Promise.all(
        [...groups.values()].map(async (g) =>
          Number(
            await callRedis(
              'delete',
              () => this.primary.del(...g.items.map((k) => this.layout.recordKey(k))),
              this.onError,
            ),
          ),
        ),
      );
      await this.publish(invalidation, keys);
      return counts.reduce((a, b) => a + b, 0);
    }
    const tx = this.primary.multi();
    if (keys.length > 0) tx.del(...keys.map((k) => this.layout.recordKey(k)));
    tx.publish(this.channel, invalidation);
    const results = await this.exec(tx, 'delete');
    return keys.length > 0 ? Number(results[0]) : 0;
  }

  async deleteAll(invalidation: string): Promise<number> {
    let deleted = 0;
    try {
      const nodes = isCluster(this.primary) ? this.primary.nodes('master') : [this.primary];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', RECORD_KEY_PATTERN, 'COUNT', 1000);
          cursor = next;
          if (keys.length === 0) continue;
          if (isCluster(this.primary)) {
            // UNLINK of several keys must stay in one slot.
            const bySlot = groupByBucket(keys, (k) => keySlot(k));
            for (const g of bySlot.values()) deleted += await node.unlink(...g.items);
          } else {
            deleted += await node.unlink(...keys);
          }
        } while (cursor !== '0');
      }
      await publishInBucket(this.primary, this.layout, this.channel, invalidation, []);
    } catch (err) {
      this.onError(err);
      throw toSidecarError(err, 'delete all');
    }
    return deleted;
  }

  /** On Redis Cluster from the primary of the keys' bucket (bucket-publish.ts). */
  async publish(invalidation: string, keys: readonly string[] = []): Promise<void> {
    try {
      await publishInBucket(this.primary, this.layout, this.channel, invalidation, keys);
    } catch (err) {
      this.onError(err);
      throw toSidecarError(err, 'publish invalidation');
    }
  }

  /** Reads the key from the primary and every replica (of its shard, on Redis Cluster), each time-boxed. */
  async readAllNodes(key: string): Promise<NodeRead[]> {
    let nodes: { client: RedisClient | undefined; name: string; role: 'primary' | 'replica' }[];
    if (isCluster(this.primary)) {
      const copies = await this.shardCopies(this.primary, keySlot(this.layout.recordKey(key)));
      nodes = copies.map((name, i) => ({
        client: this.replicaClient(this.nodeUrl(name), true),
        name,
        role: i === 0 ? ('primary' as const) : ('replica' as const),
      }));
      if (nodes.length === 0) {
        nodes = [{ client: undefined, name: 'cluster', role: 'primary' }];
      }
    } else {
      const replicas = await this.currentReplicas();
      nodes = [
        { client: this.primary, name: nodeName(this.primary), role: 'primary' },
        ...replicas.map((r) => ({ ...r, role: 'replica' as const })),
      ];
    }
    return Promise.all(
      nodes.map(async ({ client, name, role }): Promise<NodeRead> => {
        try {
          if (client === undefined) throw new RedisUnavailableError(`${name}: no connection`);
          await whenReady(client, this.timeoutMs);
          const record = await this.readFrom(client, key);
          return record === null || isL2Deleted(record)
            ? { node: name, role, status: 'missing' }
            : { node: name, role, status: 'value', record };
        } catch (err) {
          const e = toSidecarError(err, `read from ${name}`);
          return { node: name, role, status: 'error', error: { code: e.code, message: e.message } };
        }
      }),
    );
  }

  /** Closes every connection this object opened (not the primary, which the caller owns). */
  async close(): Promise<void> {
    await Promise.all([...this.replicas.values()].map((c) => c.quit().catch(() => c.disconnect())));
    this.replicas.clear();
  }

  private async readFrom(client: RedisClient, key: string): Promise<L2Record | L2Deleted | null> {
    const rk = this.layout.recordKey(key);
    const results = await this.exec(
      client.multi().hmgetBuffer(rk, FIELD_VALUE, FIELD_CONTENT_TYPE, FIELD_DELETED, FIELD_VERSION).pttl(rk),
      'read',
    );
    const fields = results[0] as (Buffer | null)[] | undefined;
    const pttl = Number(results[1]);
    const body = fields?.[0] ?? null;
    const contentType = fields?.[1] ?? null;
    if (body === null && contentType === null) {
      // A tombstone, or nothing. A DELETE's tombstone is marked with the delete's version.
      const deleted = fields?.[2] ?? null;
      if (deleted === null) return null;
      return { deleted: Number(deleted.toString()), version: Number(fields?.[3]?.toString() ?? 0) };
    }
    if (body === null || contentType === null) {
      throw new StoredRecordInvalidError(`the record for this key lacks the ${body === null ? 'v' : 'ct'} field`);
    }
    return { body, contentType: contentType.toString('utf8'), pttlMs: pttl };
  }

  /** Runs a MULTI; any failure (of EXEC or of one command) becomes a SidecarError. */
  private async exec(tx: ReturnType<RedisClient['multi']>, what: string): Promise<unknown[]> {
    const replies = await callRedis(what, () => tx.exec(), this.onError);
    if (replies === null) {
      const err = new RedisUnavailableError(`${what}: the transaction was aborted`);
      this.onError(err);
      throw err;
    }
    const failed = replies.find(([err]) => err !== null);
    if (failed) {
      this.onError(failed[0]);
      throw toSidecarError(failed[0], what);
    }
    return replies.map(([, r]) => r);
  }

  private async currentReplicas(): Promise<{ client: Redis | undefined; name: string }[]> {
    if (this.explicitReplicas || isCluster(this.primary)) {
      return [...this.replicas.values()].map((client) => ({ client, name: nodeName(client) }));
    }
    let info: string;
    try {
      info = await this.primary.info('replication');
    } catch (err) {
      this.onError(err);
      return [];
    }
    const found = parseReplicas(info);
    const base = new URL(this.primaryUrl());
    const out: { client: Redis | undefined; name: string }[] = [];
    for (const { host, port } of found) {
      const u = new URL(base.toString());
      u.hostname = host;
      u.port = String(port);
      out.push({ client: this.replicaClient(u.toString()), name: `${host}:${port}` });
    }
    // Forget replicas that left.
    const wanted = new Set(out.map((r) => r.client));
    for (const [url, client] of this.replicas) {
      if (!wanted.has(client)) {
        this.replicas.delete(url);
        client.disconnect();
      }
    }
    return out;
  }

  /**
   * `host:port` of the primary and the replicas that serve `slot` now (CLUSTER SLOTS, asked afresh: the
   * client's own map may not list replicas yet); the client's map when that fails.
   */
  private async shardCopies(cluster: Cluster, slot: number): Promise<string[]> {
    try {
      const ranges = (await cluster.call('CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string?][]][];
      for (const [lo, hi, ...nodes] of ranges) {
        if (slot >= lo && slot <= hi) return nodes.map(([host, port]) => `${host}:${port}`);
      }
      return [];
    } catch (err) {
      this.onError(err);
      return cluster.slots[slot] ?? [];
    }
  }

  /** URL of a cluster node `host:port` (its password comes from the `password` option). */
  private nodeUrl(name: string): string {
    const colon = name.lastIndexOf(':');
    const host = name.slice(0, colon);
    return `redis://${host.includes(':') ? `[${host}]` : host}:${name.slice(colon + 1)}`;
  }

  private primaryUrl(): string {
    if (isCluster(this.primary)) return 'redis://127.0.0.1:6379/0';
    const o = this.primary.options;
    const scheme = o.tls ? 'rediss' : 'redis';
    const auth = o.password ? `${encodeURIComponent(o.username ?? '')}:${encodeURIComponent(o.password)}@` : '';
    return `${scheme}://${auth}${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`;
  }

  /** A connection of its own to one node; `readOnly`: a cluster replica (READONLY on each connect). */
  private replicaClient(url: string, readOnly = false): Redis {
    let client = this.replicas.get(url);
    if (client === undefined) {
      client = createRedisClient({
        url,
        password: this.password,
        timeoutMs: this.timeoutMs,
        name: 'ripplecache-sidecar-replica-read',
      });
      client.on('error', () => {}); // surfaced per request in the consistency report
      if (readOnly) {
        const c = client;
        // A cluster replica answers MOVED to reads unless the connection said READONLY.
        c.on('ready', () => void c.call('READONLY').catch(() => {}));
      }
      this.replicas.set(url, client);
    }
    return client;
  }
}

/** Parses the `slaveN:ip=…,port=…,state=online` lines of INFO replication. */
export function parseReplicas(info: string): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const line of info.split(/\r?\n/)) {
    const m = /^slave\d+:(.*)$/.exec(line.trim());
    if (!m?.[1]) continue;
    const fields = new Map(m[1].split(',').map((kv) => kv.split('=', 2) as [string, string]));
    const host = fields.get('ip');
    const port = Number(fields.get('port'));
    if (host && Number.isInteger(port) && port > 0) out.push({ host, port });
  }
  return out;
}
