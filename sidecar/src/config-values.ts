/**
 * Value parsers of the sidecar's configuration. Each takes a string (flag, environment) or a YAML value
 * (config file) and names `where` in the {@link ConfigError} it throws.
 */
import { formatHostPort, parseHostPort, type HostPort } from '../../common/src/host-port.js';
import { parseQuantity, QuantityError, sameQuantity } from '../../common/src/quantity.js';
import { packageVersion } from '../../common/src/version.js';
import type { ListenAddress } from './config-defaults.js';

/** A flag, environment variable or config-file value that cannot be used. Exit code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'InvalidConfiguration';
  readonly exitCode = 2;
}

/**
 * What a program's `main` runs with: the configuration `load` returns, or undefined once it printed the
 * help text or `<program> <version>` (exit 0). A {@link ConfigError} is printed as one line naming the
 * program, and the process exits with its code (2).
 */
export function configOrExit<C>(
  program: string,
  load: () => { kind: 'config' | 'run'; config: C } | { kind: 'help'; text: string } | { kind: 'version' },
): C | undefined {
  let result: ReturnType<typeof load>;
  try {
    result = load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${program}: ${err.message}\nRun with --help for the flags.\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
  if (result.kind === 'help') process.stdout.write(`${result.text}\n`);
  else if (result.kind === 'version') process.stdout.write(`${program} ${packageVersion()}\n`);
  else return result.config;
  return undefined;
}

export type Parser = (raw: unknown, where: string) => unknown;

export function str(raw: unknown, where: string): string {
  if (typeof raw === 'number') return String(raw);
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${where}: expected a non-empty string`);
  return raw;
}

/** `true` or `false` (a string from a flag or the environment, or a YAML boolean). */
export function bool(raw: unknown, where: string): boolean {
  if (typeof raw === 'boolean') return raw;
  const s = str(raw, where).trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new ConfigError(`${where}: "${s}" is not true or false`);
}

export function int(min: number, max: number): Parser {
  return (raw, where) => {
    const s = typeof raw === 'number' ? String(raw) : str(raw, where).trim();
    if (!/^-?\d+$/.test(s)) throw new ConfigError(`${where}: "${s}" is not a whole number`);
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`${where}: ${s} is out of range (${min}..${max})`);
    }
    return n;
  };
}

export function oneOf<T extends string>(values: readonly T[]): Parser {
  return (raw, where) => {
    const s = str(raw, where);
    if (!(values as readonly string[]).includes(s)) {
      throw new ConfigError(`${where}: "${s}" is not one of ${values.join(', ')}`);
    }
    return s;
  };
}

/**
 * Parses a byte count: `1048576`, or a Kubernetes quantity such as `64Mi`, `1.5Gi`, `512k`, `1G` — exactly
 * what the CRD's quantity fields accept (common/src/quantity.ts; a fraction of a byte rounds up).
 */
export function parseByteQuantity(raw: unknown, where: string): number {
  const s = typeof raw === 'number' ? String(raw) : str(raw, where).trim();
  let n: number;
  try {
    n = parseQuantity(s);
  } catch (err) {
    if (err instanceof QuantityError && err.problem === 'out-of-range')
      throw new ConfigError(`${where}: "${s}" is out of range`);
    throw new ConfigError(`${where}: "${s}" is not a byte count (e.g. 1048576, 64Mi, 1.5Gi, 512Ki, 1G)`);
  }
  if (n < 1) throw new ConfigError(`${where}: "${s}" is out of range`);
  if (!sameQuantity(s, n)) throw new ConfigError(`${where}: "${s}" is not a whole number of bytes`);
  return n;
}

export function bytes(max: number): Parser {
  return (raw, where) => {
    const n = parseByteQuantity(raw, where);
    if (n > max) throw new ConfigError(`${where}: ${n} bytes is more than the maximum ${max}`);
    return n;
  };
}

export function url(protocols: readonly string[]): Parser {
  return (raw, where) => {
    const s = str(raw, where);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(`${where}: not a URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
    }
    if (!protocols.includes(u.protocol)) {
      throw new ConfigError(`${where}: scheme "${u.protocol}" is not one of ${protocols.join(', ')}`);
    }
    if (!u.hostname) throw new ConfigError(`${where}: the URL names no host`);
    return s;
  };
}

/** Parses `HOST:PORT` (`[::1]:7070` for IPv6). Port 0 asks the OS for a free port. */
export function parseListen(raw: unknown, where: string): HostPort {
  const s = str(raw, where);
  const address = parseHostPort(s);
  if (!address) throw new ConfigError(`${where}: "${s}" is not HOST:PORT (e.g. 127.0.0.1:7070)`);
  return address;
}

/** Longest Unix socket path Linux takes (`sun_path` is 108 bytes with the terminating NUL). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/** Parses `HOST:PORT` or `unix:/path` (a Unix domain socket; an absolute path of at most 107 bytes). */
export function parseListenAddress(raw: unknown, where: string): ListenAddress {
  const s = str(raw, where);
  if (!s.startsWith('unix:')) {
    const address = parseHostPort(s);
    if (!address)
      throw new ConfigError(`${where}: "${s}" is not HOST:PORT or unix:/PATH (e.g. 127.0.0.1:7070, unix:/run/rc.sock)`);
    return address;
  }
  const path = s.slice('unix:'.length);
  if (!path.startsWith('/')) throw new ConfigError(`${where}: "${s}": the socket path must be absolute (unix:/PATH)`);
  if (path.includes('\0')) throw new ConfigError(`${where}: the socket path contains NUL`);
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw new ConfigError(`${where}: the socket path is longer than ${MAX_UNIX_SOCKET_PATH_BYTES} bytes`);
  }
  return { path };
}

/** `HOST:PORT` or `unix:/path`, as {@link parseListenAddress} reads it. */
export function formatListen(a: ListenAddress): string {
  return 'path' in a ? `unix:${a.path}` : formatHostPort(a);
}

/** Like {@link parseListen}, but an empty value means "off" (so a flag can turn off a file's setting). */
export function optionalListen(raw: unknown, where: string): HostPort | undefined {
  if (raw === '') return undefined;
  return parseListen(raw, where);
}

/**
 * File permission bits in octal, e.g. `0660` or `660` (at most 0777). A YAML number is read as the digits
 * it was written with (`socketMode: 0660` and `socketMode: '0660'` are the same).
 */
export function fileMode(raw: unknown, where: string): number {
  const s = typeof raw === 'number' ? String(raw) : str(raw, where).trim();
  if (!/^0?[0-7]{3}$/.test(s)) throw new ConfigError(`${where}: "${s}" is not an octal file mode (e.g. 0660)`);
  return parseInt(s, 8);
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/** True when two listen addresses would compete for the same socket (same fixed port, same or wildcard host). */
export function sameSocket(a: ListenAddress, b: ListenAddress): boolean {
  if ('path' in a || 'path' in b) return 'path' in a && 'path' in b && a.path === b.path;
  if (a.port === 0 || a.port !== b.port) return false;
  return a.host === b.host || WILDCARD_HOSTS.has(a.host) || WILDCARD_HOSTS.has(b.host);
}

const ANY_REDIS_URL = url(['redis:', 'rediss:']);

/** A Redis URL, `redis[s]://[[user]:password@]host[:port][/db]`: the database a number (0 by default). */
export const REDIS_URL: Parser = (raw, where) => {
  const s = ANY_REDIS_URL(raw, where) as string;
  const path = new URL(s).pathname;
  if (path !== '' && path !== '/' && !/^\/(0|[1-9]\d{0,8})$/.test(path)) {
    throw new ConfigError(`${where}: the database "${path.slice(1)}" is not a number (redis://host:port/0)`);
  }
  return s;
};

/** The database number of a URL {@link REDIS_URL} accepted. */
export function redisDb(redisUrl: string): number {
  return Number(new URL(redisUrl).pathname.slice(1) || 0);
}

/** A PostgreSQL table name: `name` or `schema.name` (letters, digits, `_`, `$`; at most 63 each). */
export function tableName(raw: unknown, where: string): string {
  const s = str(raw, where);
  if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/.test(s)) {
    throw new ConfigError(`${where}: "${s}" is not a table name (name or schema.name: letters, digits, _ and $)`);
  }
  return s;
}

/** A Kubernetes object name (lowercase RFC 1123 subdomain), such as a CacheCluster's. */
export function objectName(raw: unknown, where: string): string {
  const s = str(raw, where);
  if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    throw new ConfigError(`${where}: "${s}" is not a Kubernetes object name (lowercase letters, digits, '-' and '.')`);
  }
  return s;
}
