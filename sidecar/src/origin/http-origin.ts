/**
 * An HTTP service of the application's own as the origin. The contract (README "Write policies"):
 *
 *   GET    {url}/{key}   200 with the value as the body and its Content-Type, optionally the header
 *                        `X-Ripplecache-Version` (the version it was stored with); 404 when absent.
 *   PUT    {url}/{key}   the value as the body, `Content-Type`, `X-Ripplecache-Version: <n>`. 2xx: stored;
 *                        409 or 412: not stored because the service holds a newer version.
 *   DELETE {url}/{key}   `X-Ripplecache-Version: <n>`. 2xx or 404: deleted (or absent); 409/412: newer.
 *
 * The key is one percent-encoded path segment (`/` becomes `%2F`). A service that ignores versions still
 * works; it just gives up the "never older" guarantee for writes that race in the database (write-through
 * and write-around serialise them through Redis anyway; write-back may deliver an entry twice). Statuses
 * 408, 429 and 5xx, time-outs and connection errors are "unavailable" (retried by the write-back flusher);
 * other statuses are "rejected". Credentials in the URL are sent as Basic authorization, never logged.
 */
import {
  latestPerKey,
  NO_ORIGIN_EVENTS,
  OriginRejectedError,
  OriginUnavailableError,
  type BatchResult,
  type Origin,
  type OriginEvents,
  type OriginOperation,
  type OriginRecord,
  type OriginWrite,
  type WriteOutcome,
} from './origin.js';

/** Header carrying the version of a write (request) or of the stored value (GET response). */
export const VERSION_HEADER = 'x-ripplecache-version';

export interface HttpOriginOptions {
  /** Base URL, `http(s)://host[:port][/path]`; keys are appended as one more path segment. */
  url: string;
  /** Time box of each request, in ms. Default 5000. */
  timeoutMs?: number;
  /** Requests in flight at most while applying a batch. Default 8. */
  concurrency?: number;
  events?: OriginEvents;
}

/** Splits credentials off a base URL: fetch refuses URLs with credentials. Pure. */
export function parseHttpOriginUrl(raw: string): {
  base: string;
  authorization: string | undefined;
  description: string;
} {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new OriginRejectedError('the HTTP origin URL is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new OriginRejectedError(`the HTTP origin URL has scheme ${u.protocol}`);
  let authorization: string | undefined;
  if (u.username || u.password) {
    const user = decodeURIComponent(u.username);
    const password = decodeURIComponent(u.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  u.search = '';
  u.hash = '';
  const base = u.toString().replace(/\/+$/, '');
  return { base, authorization, description: `http origin ${base}` };
}

/** The URL of a key under the base URL. Pure. */
export function keyUrl(base: string, key: string): string {
  return `${base}/${encodeURIComponent(key)}`;
}

/** Parses `X-Ripplecache-Version`; 0 when absent or not a non-negative integer. Pure. */
export function parseVersionHeader(value: string | null): number {
  if (value === null || !/^\d{1,16}$/.test(value.trim())) return 0;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : 0;
}

function isUnavailableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class HttpOrigin implements Origin {
  readonly kind = 'http';
  readonly description: string;
  private readonly base: string;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly events: OriginEvents;

  constructor(options: HttpOriginOptions) {
    const parsed = parseHttpOriginUrl(options.url);
    this.base = parsed.base;
    this.authorization = parsed.authorization;
    this.description = parsed.description;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.events = options.events ?? NO_ORIGIN_EVENTS;
  }

  async init(): Promise<void> {}

  checkKey(): void {}

  async get(key: string): Promise<OriginRecord | null> {
    const res = await this.request('get', 'GET', key);
    if (res.status === 404) {
      await res.arrayBuffer().catch(() => undefined);
      this.events.request('get', 'miss');
      return null;
    }
    if (res.status !== 200) return this.fail('get', res);
    let body: Buffer;
    try {
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      this.events.request('get', 'unavailable');
      throw new OriginUnavailableError(`GET from ${this.description}: the response body was cut off`, { cause: err });
    }
    this.events.request('get', 'hit');
    return {
      body,
      contentType: res.headers.get('content-type') ?? 'application/octet-stream',
      version: parseVersionHeader(res.headers.get(VERSION_HEADER)),
    };
  }

  put(key: string, body: Buffer, contentType: string, version: number): Promise<WriteOutcome> {
    return this.write('put', key, version, body, contentType);
  }

  delete(key: string, version: number): Promise<WriteOutcome> {
    return this.write('delete', key, version);
  }

  async applyBatch(writes: readonly OriginWrite[]): Promise<BatchResult> {
    const queue = latestPerKey(writes);
    let applied = 0;
    const appliedKeys: string[] = [];
    let failure: unknown;
    const worker = async () => {
      for (let w = queue.shift(); w !== undefined && failure === undefined; w = queue.shift()) {
        try {
          const outcome =
            w.op === 'put'
              ? await this.write('put', w.key, w.version, w.body, w.contentType, 'batch')
              : await this.write('delete', w.key, w.version, undefined, undefined, 'batch');
          if (outcome === 'applied') {
            applied++;
            appliedKeys.push(w.key);
          }
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    if (failure !== undefined) {
      // One count per batch call, as for a batch that succeeds (its writes are not counted one by one either).
      this.events.request('batch', failure instanceof OriginUnavailableError ? 'unavailable' : 'rejected');
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what write() threw (an Error)
      throw failure;
    }
    this.events.request('batch', 'applied');
    return { applied, superseded: writes.length - applied, appliedKeys };
  }

  async close(): Promise<void> {}

  private async write(
    op: 'put' | 'delete',
    key: string,
    version: number,
    body?: Buffer,
    contentType?: string,
    label: OriginOperation = op,
  ): Promise<WriteOutcome> {
    const headers: Record<string, string> = { [VERSION_HEADER]: String(version) };
    if (contentType !== undefined) headers['content-type'] = contentType;
    const res = await this.request(label, op === 'put' ? 'PUT' : 'DELETE', key, headers, body);
    await res.arrayBuffer().catch(() => undefined);
    let outcome: WriteOutcome;
    if ((res.status >= 200 && res.status < 300) || (op === 'delete' && res.status === 404)) outcome = 'applied';
    else if (res.status === 409 || res.status === 412) outcome = 'superseded';
    else return this.fail(label, res);
    if (label !== 'batch') this.events.request(op, outcome);
    if (outcome === 'applied') this.events.rowsWritten(1);
    return outcome;
  }

  private async request(
    op: OriginOperation,
    method: string,
    key: string,
    headers: Record<string, string> = {},
    body?: Buffer,
  ): Promise<Response> {
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    try {
      return await fetch(keyUrl(this.base, key), {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (op !== 'batch') this.events.request(op, 'unavailable'); // a batch counts once, in applyBatch
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new OriginUnavailableError(
        `${method} to ${this.description}: ${timedOut ? `no answer within ${this.timeoutMs} ms` : 'not reachable'}`,
        { cause: err },
      );
    }
  }

  private async fail(op: OriginOperation, res: Response): Promise<never> {
    await res.arrayBuffer().catch(() => undefined);
    const unavailable = isUnavailableStatus(res.status);
    if (op !== 'batch') this.events.request(op, unavailable ? 'unavailable' : 'rejected'); // see applyBatch
    const message = `${this.description} answered ${res.status} to a ${op}`;
    throw unavailable ? new OriginUnavailableError(message) : new OriginRejectedError(message);
  }
}
