/**
 * The invalidation message on the CacheCluster's channel (architecture §4), version 1:
 *
 *   {"v":1,"sender":"<id>","seq":<n>,"keys":["k1",...]}   or   {"v":1,"sender":"<id>","seq":<n>,"all":true}
 *
 * Keys only, never values. `seq` counts from 1 per sender (per process start); receivers use it to detect
 * lost messages. Both programs use it: the sidecars publish and receive it, and the operator's flush
 * CronJob publishes the invalidate-all message. Pure.
 *
 * Optional field `origin` (still version 1): the CacheCluster a message was relayed from by the
 * cross-cluster bridge (`sidecar/src/bridge/`), e.g. `"shop/sessions-eu"`. Messages the sidecars and the
 * flush job publish have none: they are local writes. Receivers that do not know the field ignore it (older
 * sidecars parse only the fields above), so relayed messages invalidate their L1 like any other.
 *
 * Optional field `b` (still version 1; Redis Cluster only): the write-back bucket (key-layout.ts) every
 * key of the message is in. A sender numbers its messages with `b` per bucket (`seq` counts from 1 per
 * sender and bucket) and the others (no `b`) in a sequence of their own: the messages of one bucket are
 * published by the one primary that holds the bucket's slot, so they arrive in order, while messages of
 * different buckets come from different shards and may overtake each other. Receivers track a gap per
 * (sender, bucket) (sidecar/src/invalidation/sequence-tracker.ts). Older sidecars ignore `b` and see
 * every bucket's numbers as one sequence: gaps, so they drop L1 (safe, and only during an upgrade).
 *
 * Optional fields of relayed messages for relaying over several hops (sidecar/src/bridge/relay-plan.ts):
 * `visited`, the CacheClusters (`namespace/name`) the write has been or is being relayed to, origin
 * included (a bridge forwards a relayed message only to its peers not in it: no loops, no duplicates in a
 * full mesh), and, with `keys`, `vers`: the invalidating write's version per key (same order). A relayed
 * message without `visited` comes from a bridge that relays one hop only and is never forwarded.
 */

export type InvalidationMessage = (
  | { v: 1; sender: string; seq: number; b?: number; keys: string[]; vers?: number[] }
  | { v: 1; sender: string; seq: number; b?: number; all: true }
) & { origin?: string; visited?: string[] };

/** Buckets at most (key-layout.ts uses 256). */
const MAX_BUCKET = 65_535;

/** A message that is not valid JSON or not a version-1 invalidation. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
  readonly code = 'MalformedInvalidation';
}

const MAX_SENDER_LENGTH = 256;
const MAX_ORIGIN_LENGTH = 256;
/** Clusters in `visited` at most: a longer list is malformed. */
export const MAX_VISITED = 64;

export function encodeInvalidation(message: InvalidationMessage): string {
  return JSON.stringify(message);
}

/** Parses and validates a message; throws {@link MalformedMessageError}. */
export function parseInvalidation(raw: string): InvalidationMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    throw new MalformedMessageError('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new MalformedMessageError('not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.v !== 1) throw new MalformedMessageError(`unsupported version ${JSON.stringify(m.v)}`);
  const { sender, seq } = m;
  if (typeof sender !== 'string' || sender.length === 0 || sender.length > MAX_SENDER_LENGTH) {
    throw new MalformedMessageError('sender is not a non-empty string');
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    throw new MalformedMessageError('seq is not a positive integer');
  }
  const { origin } = m;
  if (
    origin !== undefined &&
    (typeof origin !== 'string' || origin.length === 0 || origin.length > MAX_ORIGIN_LENGTH)
  ) {
    throw new MalformedMessageError('origin is not a non-empty string');
  }
  const { b } = m;
  if (b !== undefined && (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 0 || b > MAX_BUCKET)) {
    throw new MalformedMessageError(`b is not a bucket number (0-${MAX_BUCKET})`);
  }
  const { visited } = m;
  if (
    visited !== undefined &&
    (!Array.isArray(visited) ||
      visited.length > MAX_VISITED ||
      !visited.every((c) => typeof c === 'string' && c.length > 0 && c.length <= MAX_ORIGIN_LENGTH))
  ) {
    throw new MalformedMessageError(`"visited" is not a list of at most ${MAX_VISITED} non-empty strings`);
  }
  const from = {
    ...(b === undefined ? {} : { b }),
    ...(origin === undefined ? {} : { origin }),
    ...(visited === undefined ? {} : { visited: visited as string[] }),
  };
  const hasKeys = m.keys !== undefined;
  const hasAll = m.all !== undefined;
  if (hasKeys === hasAll) throw new MalformedMessageError('exactly one of "keys" and "all" is required');
  if (hasAll) {
    if (m.all !== true) throw new MalformedMessageError('"all" must be true');
    return { v: 1, sender, seq, all: true, ...from };
  }
  if (!Array.isArray(m.keys) || !m.keys.every((k) => typeof k === 'string')) {
    throw new MalformedMessageError('"keys" is not a list of strings');
  }
  const { vers } = m;
  if (vers !== undefined) {
    if (
      !Array.isArray(vers) ||
      vers.length !== m.keys.length ||
      !vers.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
    ) {
      throw new MalformedMessageError('"vers" is not one non-negative integer per key');
    }
    return { v: 1, sender, seq, keys: m.keys, vers: vers as number[], ...from };
  }
  return { v: 1, sender, seq, keys: m.keys, ...from };
}
