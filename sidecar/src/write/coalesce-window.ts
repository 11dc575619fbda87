/**
 * Write-back coalescing over time (`writeBack.coalesceWindowMs`, `--write-back-coalesce-window-ms`). Pure:
 * the clock is passed in, no timers.
 *
 * The flusher (write-back-flusher.ts) hands every journal entry it reads to the window instead of writing
 * it at once. The first entry of a key opens that key's window; entries of the key that arrive while it is
 * open are folded into it (only the one with the highest version keeps its body — coalesce.ts picks it —
 * the others are kept as id-only stubs so that they are acknowledged with it). Once the window is
 * `windowMs` old, its entries are due: the flusher writes them (one database row for the key) and
 * acknowledges them all. The next write of the key opens a new window. So a key written continuously is
 * written to the database at most once per window (plus the flush interval before the flusher looks).
 *
 * Durability is unchanged: the entries stay in the Redis journal, pending in this sidecar's consumer,
 * until the database has committed them. A sidecar killed during a window leaves them pending; another
 * sidecar claims them after the claim timeout and writes them (the window costs only time).
 *
 * Bounded: past `maxEntries` entries or `maxBytes` bytes of bodies held, every key is due at once; and so
 * while the flusher reports backlog pressure ({@link CoalesceWindow.setPressure}: the journal, which holds
 * every entry of an open window, is half full), so that holding writes never fills the journal and turns
 * writes away with 503: under pressure the windows shorten instead.
 */
import type { JournalEntry } from './journal-entry.js';

/** Entries held at most (stubs included) before every window is closed early. */
export const COALESCE_WINDOW_MAX_ENTRIES = 100_000;
/** Bytes of values held at most before every window is closed early. */
export const COALESCE_WINDOW_MAX_BYTES = 32 * 1024 * 1024;

interface OpenWindow {
  readonly opensAt: number;
  latest: JournalEntry;
  /** Entries folded into `latest` (without bodies). */
  readonly folded: JournalEntry[];
}

const stub = (e: JournalEntry): JournalEntry => ({
  id: e.id,
  key: e.key,
  op: e.op,
  version: e.version,
  ttlMs: e.ttlMs,
});
const bodyBytes = (e: JournalEntry): number => e.key.length + (e.body?.length ?? 0);

export class CoalesceWindow {
  /** Open windows in the order they opened (a Map keeps insertion order; a taken key is deleted). */
  private readonly open = new Map<string, OpenWindow>();
  private readonly held = new Set<string>();
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

  /** Entries held (stubs included). */
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

  /** Adds entries read from the journal; an id already held (read again after a reconnect) is ignored. */
  add(entries: readonly JournalEntry[], now: number): void {
    for (const e of entries) {
      if (this.held.has(e.id)) continue;
      this.held.add(e.id);
      const w = this.open.get(e.key);
      if (w === undefined) {
        this.open.set(e.key, { opensAt: now, latest: e, folded: [] });
        this.bytes += bodyBytes(e);
      } else if (e.version > w.latest.version) {
        this.bytes += bodyBytes(e) - bodyBytes(w.latest);
        w.folded.push(stub(w.latest));
        w.latest = e;
      } else {
        w.folded.push(stub(e));
      }
    }
  }

  /** True when some window has closed by `now` (or the bounds are exceeded). */
  hasDue(now: number): boolean {
    if (this.overBounds()) return this.open.size > 0;
    const first = this.open.values().next();
    return !first.done && now - first.value.opensAt >= this.windowMs;
  }

  /**
   * Removes and returns the entries of at most `maxKeys` keys whose window has closed by `now` (every
   * key, oldest window first, when `all` or past the bounds): per key the latest entry, then the stubs of
   * the ones folded into it.
   */
  take(now: number, maxKeys: number, all = false): JournalEntry[] {
    const out: JournalEntry[] = [];
    let keys = 0;
    for (const [key, w] of this.open) {
      if (keys >= maxKeys) break;
      if (!all && !this.overBounds() && now - w.opensAt < this.windowMs) break;
      this.open.delete(key);
      this.bytes -= bodyBytes(w.latest);
      out.push(w.latest, ...w.folded);
      this.held.delete(w.latest.id);
      for (const f of w.folded) this.held.delete(f.id);
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
