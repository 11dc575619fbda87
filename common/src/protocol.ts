/**
 * What the operator and the sidecar must agree on in Redis: the names both write and read. The message
 * format on the channel is in ./invalidation-message.ts. Changing any of these is a protocol change:
 * old sidecars and the operator's flush CronJob would no longer meet.
 */

/**
 * Pub/sub channel of invalidation messages when none is configured: the sidecar's `--channel` default and
 * the channel the operator renders into every sidecar's config and the flush CronJob publishes on.
 */
export const DEFAULT_INVALIDATION_CHANNEL = 'ripplecache:invalidations';

/**
 * Prefix of every cache record's Redis key (`rc:<key>`). The sidecar reads and writes only these; the
 * flush CronJob deletes only these (journal streams and other data of the Redis are kept).
 */
export const RECORD_KEY_PREFIX = 'rc:';

/** SCAN/KEYS pattern matching every cache record and nothing else. */
export const RECORD_KEY_PATTERN = `${RECORD_KEY_PREFIX}*`;
