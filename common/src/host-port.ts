/**
 * `HOST:PORT`, as both programs take their listen addresses (and the operator its pod address overrides).
 * Pure.
 */

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`: `127.0.0.1:7070`, `redis-0.redis:6379`, `[::1]:7070` (brackets are removed), or an
 * IPv6 address without brackets, split at its last colon (`:::8080` is host `::`, port 8080). The port is
 * 0–65535 (0 asks the OS for a free port). Returns undefined when `text` is none of these.
 */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** The inverse of {@link parseHostPort}: brackets around an IPv6 host. */
export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
