/**
 * How the bridge reports a Redis error (a peer's or the local Redis's): its text for `/v1/peers` `lastError`
 * and for the log, with every secret the bridge knows taken out, and a gate that logs a repeated error now and
 * then instead of at every reconnect attempt (ioredis reports one error per attempt, every ≤ 2 s). Pure.
 */
import { describeError } from '../errors.js';

/** What stands in for a secret. */
export const REDACTED = '***';

/** Secrets shorter than this are not searched for in text: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 3;

/** Longest `lastError`, characters (the operator keeps 256 of it). */
export const MAX_ERROR_TEXT = 512;

/**
 * `text` without credentials: the user and password of any URL in it (`redis://user:pw@host` →
 * `redis://***@host`), and every occurrence of each of `secrets` (the passwords the bridge was given).
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, `$1${REDACTED}@`);
  const known = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  for (const secret of known) out = out.split(secret).join(REDACTED);
  return out;
}

/** An ioredis Cluster client's "Failed to refresh slots cache." carries the reason in `lastNodeError`. */
function lastNodeError(err: unknown): string | undefined {
  const last = (err as { lastNodeError?: unknown } | null)?.lastNodeError;
  return last instanceof Error ? last.message : undefined;
}

/** The message of an error (and of a Cluster client's last node error), secrets redacted, one line. */
export function errorText(err: unknown, secrets: readonly string[]): string {
  const message = err instanceof Error ? err.message : String(err);
  const last = lastNodeError(err);
  const text = last !== undefined && last !== message ? `${message} ${last}` : message;
  return redactSecrets(text.replace(/\s+/g, ' ').trim(), secrets).slice(0, MAX_ERROR_TEXT);
}

/** {@link describeError} with the secrets redacted from every text in it (for the log). */
export function safeError(err: unknown, secrets: readonly string[]): Record<string, unknown> {
  const d = describeError(err);
  const last = lastNodeError(err);
  return {
    ...d,
    ...(typeof d.message === 'string' ? { message: redactSecrets(d.message, secrets) } : {}),
    ...(Array.isArray(d.causes) ? { causes: d.causes.map((c) => redactSecrets(String(c), secrets)) } : {}),
    ...(last !== undefined ? { lastNodeError: redactSecrets(last, secrets) } : {}),
  };
}

/**
 * Decides which errors of one connection are logged: the first of a failure episode, any whose text differs
 * from the last one logged, and otherwise one every `intervalMs`, saying how many identical ones were not
 * logged meanwhile (`repeated`). `reset` ends the episode (the connection is back).
 */
export class ErrorLogGate {
  private lastText: string | undefined;
  private lastLoggedMs = 0;
  private suppressed = 0;

  constructor(private readonly intervalMs = 60_000) {}

  /** An error was seen since the last reset. */
  get failing(): boolean {
    return this.lastText !== undefined;
  }

  /** Whether to log this error now; `repeated`: the identical errors not logged since the last one that was. */
  check(text: string, nowMs: number): { log: true; repeated: number } | { log: false } {
    if (text === this.lastText && nowMs - this.lastLoggedMs < this.intervalMs) {
      this.suppressed++;
      return { log: false };
    }
    const repeated = text === this.lastText ? this.suppressed : 0;
    this.lastText = text;
    this.lastLoggedMs = nowMs;
    this.suppressed = 0;
    return { log: true, repeated };
  }

  reset(): void {
    this.lastText = undefined;
    this.suppressed = 0;
  }
}
