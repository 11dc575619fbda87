/**
 * Write-back coalescing over time (`writeBack.coalesceWindowMs`, `--write-back-coalesce-window-ms`). Pure:
 * the clock is passed in, no timers.
 *
 * The flusher (write-back-flusher.ts) hands every journal entry it reads to the window instead of writing
 * it at once. The first entry of a key opens that key's window; an entry of the key that arrives while it
 * is open replaces it when its version is higher (journal order). The entry it supersedes will never be
 * written — the database row takes the highest version — so it is handed back at once
 * ({@link CoalesceWindow.takeSuperseded}) for the flusher to acknowledge and delete from the journal. Once
 * the window is `windowMs` old, its entry is due: the flusher writes it (one database row for the key) and
 * acknowledges it. The next write of the key opens a new window. So a key written continuously is written
 * to the database at most once per window (plus the flush interval before the flusher looks), and holds
 * one journal entry while it waits, not one per write.
 *
 * Durability is unchanged: the entry a window holds stays in the Redis journal, pending in this sidecar's
 * consumer, until the database has committed it; a superseded entry is acknowledged only after the entry
 * superseding it was read, so that one is pending in this consumer. A sidecar killed during a window leaves
 * it pending; another sidecar claims it after the claim timeout and writes it (the window costs only time).
 * (Before 2026-12-03 superseded entries were held until their window closed: at ~57,000 pipelined SETs a
 * second over 10,000 keys they filled the bound below in under two seconds, so windows closed early and
 * the database got 0.22 rows per write instead of ≤ 0.1; the journal, counting them, neared `maxPending`.)
 *
 * Bounded: past `maxEntries` entries or `maxBytes` bytes of bodies held, every key is due at once; and so
 * while the flusher reports backlog pressure ({@link CoalesceWindow.setPressure}: the journal, which holds
 * every entry of an open window, is half full), so that holding writes never fills the journal and turns
 * writes away with 503: under pressure the windows shorten instead.
 */
import type { JournalEntry } from './journal-entry.js';

/** Entries (keys) held at most before every window is closed early. */
export const COALESCE_WINDOW_MAX_ENTRIES = 100_000;
/** Bytes of values held at most before every window is closed early. */
export const COALESCE_WINDOW_MAX_BYTES = 32 * 1024 * 1024;

interface OpenWindow {
  readonly opensAt: number;
  latest: JournalEntry;
}

const bodyBytes = (e: JournalEntry): number => e.key.length + (e.body?.length ?? 0);

export class CoalesceWindow {
  /** Open windows in the order they opened (a Map keeps insertion order; a taken key is deleted). */
  private readonly open = new Map<string, OpenWindow>();
  private readonly held = new Set<string>();
  /** Ids of entries superseded by a later one of their key, not yet handed back. */
  private superseded: string[] = [];
  private bytes = 0;
  private pressed = false;

  constructor(
    readonly windowMs: number,
    private readonly maxEntries = COALESCE_WINDOW_MAX_ENTRIES,
    private readonly maxBytes = COALESCE_WINDOW_MAX_BYTES,
  ) {
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
  }

  /**
   * Backlog pressure on or off: while on, every open window is due (oldest first), as past the bounds.
   */
  setPressure(on: boolean): void {
    this.pressed = on;
  }

  /** Whether backlog pressure is on. */
  get pressure(): boolean {
    return this.pressed;
  }

  /** Entries held: one per key with an open window. */
  get size(): number {
    return this.held.size;
  }

  /** Keys with an open window. */
  get keys(): number {
    return this.open.size;
  }

  /** Ids of every entry held (pending in this consumer; touched while a batch is retried). */
  heldIds(): string[] {
    return [...this.held];
  }

  /**
   * Adds entries read from the journal; an id already held (read again after a reconnect) is ignored. An
   * entry older than its key's open window's (or replaced by a newer one) is superseded: see
   * {@link takeSuperseded}.
   */
  add(entries: readonly JournalEntry[], now: number): void {
    for (const e of entries) {
      if (this.held.has(e.id)) continue;
      const w = this.open.get(e.key);
      if (w === undefined) {
        this.held.add(e.id);
        this.open.set(e.key, { opensAt: now, latest: e });
        this.bytes += bodyBytes(e);
      } else if (e.version > w.latest.version) {
        this.bytes += bodyBytes(e) - bodyBytes(w.latest);
        this.held.delete(w.latest.id);
        this.superseded.push(w.latest.id);
        this.held.add(e.id);
        w.latest = e;
      } else {
        this.superseded.push(e.id);
      }
    }
  }

  /**
   * Removes and returns the ids of the entries superseded since the last call: each has a later entry of
   * its key held here (or already written), so it will never be written and may be acknowledged now.
   */
  takeSuperseded(): string[] {
    const out = this.superseded;
    this.superseded = [];
    return out;
  }

  /** True when some window has closed by `now` (or the bounds are exceeded). */
  hasDue(now: number): boolean {
    if (this.overBounds()) return this.open.size > 0;
    const first = this.open.values().next();
    return !first.done && now - first.value.opensAt >= this.windowMs;
  }

  /**
   * Removes and returns the entries of at most `maxKeys` keys whose window has closed by `now` (every
   * key, oldest window first, when `all` or past the bounds): per key its latest entry.
   */
  take(now: number, maxKeys: number, all = false): JournalEntry[] {
    const out: JournalEntry[] = [];
    let keys = 0;
    for (const [key, w] of this.open) {
      if (keys >= maxKeys) break;
      if (!all && !this.overBounds() && now - w.opensAt < this.windowMs) break;
      this.open.delete(key);
      this.bytes -= bodyBytes(w.latest);
      out.push(w.latest);
      this.held.delete(w.latest.id);
      keys++;
    }
    return out;
  }

  /** When the oldest open window closes (undefined: none open). */
  nextDueAt(): number | undefined {
    const first = this.open.values().next();
    return first.done ? undefined : first.value.opensAt + this.windowMs;
  }

  private overBounds(): boolean {
    return this.pressed || this.held.size > this.maxEntries || this.bytes > this.maxBytes;
  }
}
