/**
 * Publishing an invalidation message from the primary that holds the keys' bucket (Redis Cluster), so
 * that one sender's messages of one bucket reach every receiver in order: the messages that scripts
 * publish along with a bucket's writes come from that primary, and a message published on its own (the
 * flusher's repairs, deletes and invalidations of the L2 adapter) must come from the same one, or it
 * could overtake them or be overtaken (invalidation-publisher.ts numbers them per bucket).
 *
 * A message whose keys span several buckets (or none: invalidate-all) is numbered in the sender's own
 * sequence; those are all published from the primary of bucket 0's slot, for the same reason.
 *
 * On standalone and replication Redis (one bucket) it is a plain PUBLISH.
 */
import type { Redis } from 'ioredis';
import type { KeyLayout } from '../write/key-layout.js';
import type { RedisClient } from './redis-client.js';

/** KEYS[1] a key of the bucket's slot (not touched); ARGV channel, message. */
const PUBLISH_IN_SLOT = `return redis.call('PUBLISH', ARGV[1], ARGV[2])`;

interface PublishScript {
  rcPublishInSlot(slotKey: string, channel: string, message: string): Promise<number>;
}

/** The key whose slot publishes a message for `keys` (the version counter of their bucket, or bucket 0's). */
export function publishingKey(layout: KeyLayout, keys: readonly string[]): string {
  const first = layout.buckets[0];
  if (first === undefined) throw new RangeError('a key layout without buckets');
  if (keys.length === 0) return first.versionKey;
  const b = layout.bucketOf(keys[0] as string);
  for (let i = 1; i < keys.length; i++) if (layout.bucketOf(keys[i] as string) !== b) return first.versionKey;
  return b.versionKey;
}

/** Publishes `message` (which names `keys`) from the primary of the keys' bucket; see the file header. */
export async function publishInBucket(
  client: RedisClient,
  layout: KeyLayout,
  channel: string,
  message: string,
  keys: readonly string[],
): Promise<void> {
  if (layout.buckets.length <= 1) {
    await client.publish(channel, message);
    return;
  }
  const c = client as Redis & Partial<PublishScript>;
  if (c.rcPublishInSlot === undefined)
    client.defineCommand('rcPublishInSlot', { numberOfKeys: 1, lua: PUBLISH_IN_SLOT });
  await (client as Redis & PublishScript).rcPublishInSlot(publishingKey(layout, keys), channel, message);
}
