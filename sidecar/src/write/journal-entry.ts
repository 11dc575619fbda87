/**
 * The write-back journal's entries, pure: what an entry holds, what a journal answers, how a stream entry
 * is parsed, and the {@link Journal} interface the write-back policy and the flusher use. The Redis side
 * (Lua scripts, stream commands) is `sidecar/src/redis/write-back-journal.ts` (one stream) and
 * `sidecar/src/redis/bucketed-journal.ts` (one stream per bucket, Redis Cluster).
 */
import { SidecarError } from '../errors.js';

/** One journaled write. */
export interface JournalEntry {
  /** Stream entry id, `<ms>-<seq>`. */
  readonly id: string;
  readonly key: string;
  readonly op: 'put' | 'delete';
  readonly version: number;
  /** Present for `put`. */
  readonly body?: Buffer;
  readonly contentType?: string;
  /** TTL of the Redis record once the write reached the database, in ms; 0: none. */
  readonly ttlMs: number;
}

/** What a read returned: entries, and ids of entries that could not be parsed (or were deleted). */
export interface JournalRead {
  readonly entries: JournalEntry[];
  readonly unreadable: string[];
}

export interface JournalStats {
  /** Entries in the stream (written, not yet applied to the database), cluster-wide. */
  readonly pending: number;
  /** Redis time of the oldest entry, ms; undefined when empty. */
  readonly oldestMs: number | undefined;
  /** Redis's clock when the stats were taken, ms. */
  readonly redisNowMs: number;
}

/** The write-back backlog is full: the PUT or DELETE was refused, not journaled (503, retry later). */
export class WriteBackBacklogFullError extends SidecarError {
  override readonly name = 'WriteBackBacklogFullError';
  constructor(message: string) {
    super('WriteBackBacklogFull', message);
  }
}

/** The record TTL, in ms once flushed, of a journaled PUT (0: none). */
export const putTtlMs = (w: { ttlSeconds: number }): number => (w.ttlSeconds > 0 ? w.ttlSeconds * 1000 : 0);

/** A journaled write; `entry` is set when the call delivered it to this consumer. */
export interface AppendedWrite {
  readonly id: string;
  readonly version: number;
  readonly entry?: JournalEntry;
}

/** What an append call answered. */
export interface AppendOutcome {
  /** One per write, in order. */
  readonly results: (AppendedWrite | WriteBackBacklogFullError | SidecarError)[];
  /** Ids of other writers' entries the delivery took (now pending in this consumer). */
  readonly others: string[];
}

/** One write to journal. */
export type JournalWrite =
  { key: string; op: 'put'; body: Buffer; contentType: string; ttlSeconds: number } | { key: string; op: 'delete' };

/**
 * What the write-back policy and the flusher use of a journal: one stream ({@link WriteBackJournal}) on
 * standalone and replication Redis, one stream per bucket on Redis Cluster (bucketed-journal.ts).
 */
/** Builds an invalidation message for keys (the sidecar's InvalidationPublisher). */
export interface InvalidationMessages {
  keys(keys: readonly string[]): string;
}

export interface Journal {
  /** For logs: the stream key (or the pattern of the bucket streams). */
  readonly streamKey: string;
  /** For logs: the dead-letter stream (or their pattern). */
  readonly deadLetterKey: string;
  readonly connectionEpoch: number;
  readonly claimScanComplete: boolean;
  /**
   * `invalidation`: the message to publish with the writes, or a source of messages (then the journal
   * builds one per bucket, for the keys of that bucket, published by that bucket's script).
   */
  appendMany(
    writes: readonly JournalWrite[],
    maxPending: number,
    invalidation?: string | InvalidationMessages,
    deliver?: boolean,
  ): Promise<AppendOutcome>;
  readDelivered(ids: readonly string[]): Promise<JournalRead>;
  readOwnPending(after: string, count: number): Promise<JournalRead & { last: string; done: boolean }>;
  readNew(count: number): Promise<JournalRead>;
  claimStale(minIdleMs: number, count: number): Promise<JournalRead>;
  touch(ids: readonly string[]): Promise<void>;
  ack(ids: readonly string[]): Promise<void>;
  deadLetter(entries: readonly { id: string; entry?: JournalEntry }[], reason: string): Promise<void>;
  stats(): Promise<JournalStats>;
  removeIdleConsumers(idleMs: number): Promise<number>;
  /**
   * Removes this sidecar's consumer from the group (every bucket's) where it owns no pending entry; true
   * when removed everywhere. Called after a drain on stop.
   */
  removeOwnConsumer(): Promise<boolean>;
}

function fieldsToMap(fields: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set((fields[i] as Buffer).toString(), fields[i + 1] as Buffer);
  return m;
}

/** Field names in the order APPEND writes them: `k op ver v ct ttl` (put) or `k op ver ttl` (delete). */
const PUT_LAYOUT = ['k', 'op', 'ver', 'v', 'ct', 'ttl'];
const DELETE_LAYOUT = ['k', 'op', 'ver', 'ttl'];

/** The fields as a map, reading names only when they are not laid out as APPEND writes them. */
function entryFields(fields: Buffer[]): Map<string, Buffer> {
  const layout = fields.length === 12 ? PUT_LAYOUT : fields.length === 8 ? DELETE_LAYOUT : undefined;
  if (
    layout !== undefined &&
    layout.every((name, i) => (fields[2 * i] as Buffer).equals(FIELD_NAMES[name] as Buffer))
  ) {
    return new Map(layout.map((name, i) => [name, fields[2 * i + 1] as Buffer]));
  }
  return fieldsToMap(fields);
}
const FIELD_NAMES: Record<string, Buffer> = Object.fromEntries(PUT_LAYOUT.map((n) => [n, Buffer.from(n)]));

/** Parses one stream entry's fields; undefined when they are not a journal entry. Pure. */
export function parseJournalEntry(id: string, fields: Buffer[] | null): JournalEntry | undefined {
  if (fields === null) return undefined;
  const m = entryFields(fields);
  const key = m.get('k')?.toString('utf8');
  const op = m.get('op')?.toString();
  const version = Number(m.get('ver')?.toString());
  const ttlMs = Number(m.get('ttl')?.toString() ?? '0');
  if (
    key === undefined ||
    key.length === 0 ||
    !Number.isSafeInteger(version) ||
    version <= 0 ||
    !Number.isSafeInteger(ttlMs)
  ) {
    return undefined;
  }
  if (op === 'delete') return { id, key, op, version, ttlMs };
  const body = m.get('v');
  const contentType = m.get('ct')?.toString();
  if (op !== 'put' || body === undefined || contentType === undefined) return undefined;
  return { id, key, op, version, body, contentType, ttlMs };
}

/** Parses `[[id, fields], …]` replies of XREADGROUP/XAUTOCLAIM. Pure. */
export function parseStreamEntries(raw: unknown): JournalRead {
  const entries: JournalEntry[] = [];
  const unreadable: string[] = [];
  for (const item of (raw as [Buffer, Buffer[] | null][] | null) ?? []) {
    const id = item[0].toString();
    const entry = parseJournalEntry(id, item[1]);
    if (entry) entries.push(entry);
    else unreadable.push(id);
  }
  return { entries, unreadable };
}

/** The `<ms>` part of a stream id. Pure. */
export function streamIdMs(id: string): number {
  return Number(id.split('-', 1)[0]);
}
