/**
 * Single-flight: concurrent misses for one key share one L2 read. A flight can be marked stale (an
 * invalidation for its key arrived while it was in the air): its result is still returned to the callers
 * that joined it, but must not be stored in L1, and later callers start a new flight. Pure.
 */

export interface Flight<T> {
  readonly promise: Promise<T>;
  /** Set when an invalidation for the key arrived after the flight started. */
  stale: boolean;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Flights in the air. */
  get size(): number {
    return this.flights.size;
  }

  /** Joins the flight for `key`, or starts one with `fn`. `owner` is true for the caller that started it. */
  run(key: string, fn: () => Promise<T>): { flight: Flight<T>; owner: boolean } {
    const current = this.flights.get(key);
    if (current !== undefined) return { flight: current, owner: false };
    const flight: { promise: Promise<T>; stale: boolean } = {
      promise: undefined as unknown as Promise<T>,
      stale: false,
    };
    const land = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    flight.promise = fn().then(
      (value) => {
        land();
        return value;
      },
      (err: unknown) => {
        land();
        throw err;
      },
    );
    this.flights.set(key, flight);
    return { flight, owner: true };
  }

  /** Marks the flight for `key` stale and forgets it. */
  invalidate(key: string): void {
    const flight = this.flights.get(key);
    if (flight === undefined) return;
    flight.stale = true;
    this.flights.delete(key);
  }

  invalidateAll(): void {
    for (const flight of this.flights.values()) flight.stale = true;
    this.flights.clear();
  }
}
