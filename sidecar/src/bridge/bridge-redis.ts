/**
 * The bridge's calls on one Redis — the local cluster's or a peer's — in that Redis's key layout
 * (../write/key-layout.ts): one server (standalone, a replication primary: records `rc:<key>`, one version
 * counter), or a Redis Cluster (records `rc:{tag}<key>` in 256 hash-tagged buckets over the shards, a
 * version counter per bucket), through ioredis' Cluster client.
 *
 * On one server every operation is what it was before Redis Cluster was supported: one script per batch,
 * the peer's message published by the relay script itself. On a Redis Cluster, scripts may only touch
 * keys of one slot, so:
 *
 * - relay: one script per bucket of the batch (record-groups.ts), run concurrently, publishing nothing;
 *   once every one has answered, the batch's one message is published (cluster-wide PUBLISH reaches every
 *   node's subscribers) from the primary of bucket 0's slot, where every message of this bridge is
 *   published, so that the peer's sidecars receive them in the order of the bridge's sequence numbers
 *   (../redis/bucket-publish.ts). The records have changed before the message leaves, as on one server;
 * - local versions: one script per bucket, with that bucket's version counter;
 * - the version "now" (repair threshold): the maximum over every bucket's counter and the clock of the
 *   primary holding it (one script per bucket: 256 calls per repair);
 * - repair: SCAN of every primary the client knows, one drop script per slot of each page.
 */
import type { Redis } from 'ioredis';
import { RECORD_KEY_PATTERN } from '../../../common/src/protocol.js';
import { publishInBucket } from '../redis/bucket-publish.js';
import { retryWhileTryAgain, tryAgainBudgetMs } from '../redis/prebuilt-script.js';
import { isCluster, type RedisClient } from '../redis/redis-client.js';
import { SINGLE_LAYOUT, type KeyLayout } from '../write/key-layout.js';
import { DEFAULT_VERSION_KEY } from '../redis/versioned-records.js';
import { defineBridgeScripts, type BridgeScripts } from './bridge-scripts.js';
import { groupBySlot, recordGroups, ungroup } from './record-groups.js';

/** SCAN page size of a repair. */
const REPAIR_SCAN_COUNT = 1000;

export class BridgeRedis {
  readonly client: RedisClient & BridgeScripts;

  /**
   * @param layout the Redis's key layout: `bucketedLayout()` for a Redis Cluster (whose client must then
   *   be a Cluster client), SINGLE_LAYOUT otherwise.
   * @param singleVersionKey the version counter in the single layout (default `ripplecache:version`).
   */
  constructor(
    client: RedisClient,
    readonly layout: KeyLayout = SINGLE_LAYOUT,
    private readonly singleVersionKey = DEFAULT_VERSION_KEY,
  ) {
    this.client = defineBridgeScripts(client);
  }

  private get bucketed(): boolean {
    return this.layout.buckets.length > 1;
  }

  /**
   * Invalidates each key whose record is older than its version (versions in the keys' order), then
   * publishes `message` on `channel`. Answers per key 1 invalidated, 0 kept (newer).
   */
  async relay(
    keys: readonly string[],
    versions: readonly number[],
    tombstoneTtlMs: number,
    channel: string,
    message: string,
  ): Promise<number[]> {
    if (!this.bucketed) {
      const replies = await this.client.rcBridgeRelay(
        keys.length,
        ...keys.map((k) => this.layout.recordKey(k)),
        tombstoneTtlMs,
        channel,
        message,
        ...keys.map((_, i) => String(versions[i] ?? 0)),
      );
      return replies.map(Number);
    }
    const groups = recordGroups(this.layout, keys);
    const answers = await Promise.all(
      groups.map(async (g) =>
        (
          await this.retrying(() =>
            this.client.rcBridgeRelay(
              g.recordKeys.length,
              ...g.recordKeys,
              tombstoneTtlMs,
              channel,
              '',
              ...g.positions.map((p) => String(versions[p] ?? 0)),
            ),
          )
        ).map(Number),
      ),
    );
    await this.publish(channel, message);
    return ungroup(groups, answers, keys.length);
  }

  /** Each key's record version, or (record gone) its counter's value; 0 for a Redis without versions. */
  async localVersions(keys: readonly string[]): Promise<number[]> {
    if (!this.bucketed) {
      const replies = await this.client.rcBridgeLocalVersions(
        keys.length + 1,
        ...keys.map((k) => this.layout.recordKey(k)),
        this.singleVersionKey,
      );
      return replies.map(Number);
    }
    const groups = recordGroups(this.layout, keys);
    const answers = await Promise.all(
      groups.map(async (g) =>
        (
          await this.retrying(() =>
            this.client.rcBridgeLocalVersions(g.recordKeys.length + 1, ...g.recordKeys, g.bucket.versionKey),
          )
        ).map(Number),
      ),
    );
    return ungroup(groups, answers, keys.length);
  }

  /** At least the version of every write acknowledged so far (the repair threshold). */
  async versionNow(): Promise<number> {
    if (!this.bucketed) return Number(await this.client.rcBridgeVersionNow(this.singleVersionKey));
    const all = await Promise.all(this.layout.buckets.map((b) => this.client.rcBridgeVersionNow(b.versionKey)));
    return Math.max(...all.map(Number));
  }

  /** Deletes every record (with a TTL) whose version is below `threshold`; answers how many. */
  async dropOlder(threshold: number): Promise<number> {
    const client = this.client;
    if (!isCluster(client)) return this.dropOlderOn(client, threshold, (keys) => [keys]);
    let dropped = 0;
    // Every primary the client knows now; a record of a slot in the air (MIGRATE) is found on one of the
    // two, and the drop script follows MOVED/ASK through the Cluster client.
    for (const node of client.nodes('master')) dropped += await this.dropOlderOn(node, threshold, groupBySlot);
    return dropped;
  }

  private async dropOlderOn(node: Redis, threshold: number, split: (keys: string[]) => string[][]): Promise<number> {
    let dropped = 0;
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', RECORD_KEY_PATTERN, 'COUNT', REPAIR_SCAN_COUNT);
      cursor = next;
      if (keys.length === 0) continue;
      const counts = await Promise.all(
        split(keys).map((group) =>
          this.retrying(() => this.client.rcBridgeDropOlder(group.length, ...group, String(threshold))),
        ),
      );
      for (const n of counts) dropped += Number(n);
    } while (cursor !== '0');
    return dropped;
  }

  /**
   * A script over several keys of one slot on a Redis Cluster, sent again while Redis answers TRYAGAIN (the
   * slot is half-moved by a resharding) within the client's time box (../redis/prebuilt-script.ts).
   */
  private retrying<T>(fn: () => Promise<T>): Promise<T> {
    return retryWhileTryAgain(fn, tryAgainBudgetMs(this.client));
  }

  /** Publishes on `channel`: on a Redis Cluster from bucket 0's primary (see the file comment). */
  async publish(channel: string, message: string): Promise<void> {
    await publishInBucket(this.client, this.layout, channel, message, []);
  }
}
