/**
 * Live Redis settings (eviction, and the write fence of spec.durability): reads with CONFIG GET, changes
 * with CONFIG SET, verifies with CONFIG GET again.
 * With replication.ts the only ioredis user in the operator (the scheduled flush runs redis-cli in its CronJob
 * pod, see desired/flush-cron-job.ts). Never restarts anything.
 */
import { Redis } from 'ioredis';

/** Where one Redis pod is reached. */
export interface PodEndpoint {
  pod: string;
  host: string;
  port: number;
}

export interface EvictionSettings {
  /** Bytes. */
  maxmemory: number;
  maxmemoryPolicy: string;
}

/** `appendonly` and `save` as CONFIG GET reports them (`save` "" when snapshots are off). */
export interface PersistenceSettings {
  appendonly: string;
  save: string;
}

/** The write fence (desired/fence.ts): `min-replicas-to-write`, `min-replicas-max-lag` (seconds). */
export interface FenceSettings {
  minReplicasToWrite: number;
  minReplicasMaxLag: number;
}

/**
 * What the operator brings every pod to: the eviction settings and, when given, the persistence mode's
 * and the write fence.
 */
export type LiveSettings = EvictionSettings & {
  persistence?: PersistenceSettings;
  fence?: FenceSettings;
  /**
   * A password rotation in progress: the auth Secret's password before the rotation. A pod that refuses the
   * current password (`opts.password`) still runs with this one (it started before the rotation): the
   * operator authenticates with it and makes the pod accept the current one too (`acceptCurrentPassword`).
   * A secret: never logged, never in a result or a message.
   */
  previousPassword?: string;
};

export interface PodConfigResult {
  pod: string;
  /** True when CONFIG GET, after any CONFIG SET, shows the desired settings. */
  applied: boolean;
  /** True when this call changed something with CONFIG SET. */
  changed: boolean;
  /** What the pod reported last (absent when it could not be reached). */
  observed?: EvictionSettings;
  /** The fence the pod reported last, when a fence was asked for. */
  observedFence?: FenceSettings;
  /** The pod's replication role as Redis reports it (`ROLE`): master, slave (a replica) or sentinel. */
  role?: string;
  /** Why it is not applied. Never contains a password. */
  message?: string;
  /** The pod refused the current password (WRONGPASS / NOAUTH) and could not be made to accept it. */
  authFailed?: boolean;
  /**
   * The pod refused the current password, accepted the previous one (`LiveSettings.previousPassword`), and now
   * accepts the current one too (`acceptCurrentPassword`).
   */
  acceptedCurrentPassword?: boolean;
}

export interface LiveConfigOptions {
  password?: string | undefined;
  /**
   * Per-call time box. Default 2000 ms. Bounds the connection (TCP connect and the handshake: AUTH, CLIENT
   * SETNAME, the ready check) as a whole, and then each command.
   */
  timeoutMs?: number;
  /** When given, the whole call (connection and every command) is time boxed to this many ms. */
  deadlineMs?: number;
  /**
   * Called synchronously right before every write (CONFIG SET) is sent: the leadership fence. When it throws,
   * nothing more is written and `applyEvictionToPod` / `applyEviction` reject with what it threw.
   */
  beforeWrite?: () => void;
}

/**
 * Redis refused the password (`WRONGPASS`, or `NOAUTH`: a password is required and none was given). The pod is
 * alive: it answered. The message names Redis' error code only, never a password.
 */
export class RedisAuthError extends Error {
  override readonly name = 'RedisAuthError';
  readonly code = 'RedisAuthFailed';
  constructor(readonly redisCode: 'WRONGPASS' | 'NOAUTH') {
    super(`authentication failed (${redisCode})`);
  }
}

export function isAuthError(err: unknown): err is RedisAuthError {
  return err instanceof RedisAuthError;
}

/** The auth error code of a Redis error reply, if it is one. */
function authErrorCode(err: unknown): 'WRONGPASS' | 'NOAUTH' | undefined {
  const msg = err instanceof Error ? err.message : '';
  if (msg.startsWith('WRONGPASS')) return 'WRONGPASS';
  if (msg.startsWith('NOAUTH')) return 'NOAUTH';
  return undefined;
}

/**
 * One short-lived connection to `ep` (no retries, no offline queue), closed after `fn`. A refused password
 * rejects with `RedisAuthError` (ioredis reports it as an `error` event, then rejects the connect with
 * "Connection is closed.", which would hide the cause).
 */
export async function withClient<T>(
  ep: PodEndpoint,
  opts: LiveConfigOptions,
  fn: (r: Redis) => Promise<T>,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const client = new Redis({
    host: ep.host,
    port: ep.port,
    password: opts.password,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectionName: 'ripplecache-operator',
  });
  let refused: 'WRONGPASS' | 'NOAUTH' | undefined;
  client.on('error', (err: unknown) => {
    // Otherwise reported through the rejected command; the handshake's AUTH reply only comes here.
    refused ??= authErrorCode(err);
  });
  // ioredis' connectTimeout ends at the TCP connect: a frozen Redis (SIGSTOP, a hung host) accepts the connection
  // in its kernel and never answers the handshake (AUTH, CLIENT SETNAME, the ready check), which then takes
  // several timeouts or more. These time boxes answer at once and disconnect (rejecting whatever is pending).
  let connecting: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const work = (async () => {
    try {
      await client.connect();
    } catch (err) {
      if (refused !== undefined) throw new RedisAuthError(refused);
      throw err;
    }
    clearTimeout(connecting);
    try {
      return await fn(client);
    } catch (err) {
      const code = authErrorCode(err);
      if (code !== undefined) throw new RedisAuthError(code);
      throw err;
    }
  })();
  work.catch(() => undefined);
  const timeBox = new Promise<never>((_, reject) => {
    const expire = (ms: number, what: string) => () => {
      reject(new Error(`${what} timed out after ${ms} ms`));
      client.disconnect();
    };
    connecting = setTimeout(expire(timeoutMs, 'connection'), timeoutMs);
    if (opts.deadlineMs !== undefined) deadline = setTimeout(expire(opts.deadlineMs, 'call'), opts.deadlineMs);
  });
  try {
    return await Promise.race([work, timeBox]);
  } finally {
    clearTimeout(connecting);
    clearTimeout(deadline);
    client.disconnect();
  }
}

async function readEviction(r: Redis): Promise<EvictionSettings> {
  const mm = (await r.call('CONFIG', 'GET', 'maxmemory')) as string[];
  const mp = (await r.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
  // CONFIG GET answers [name, value]; maxmemory comes back as plain bytes.
  return { maxmemory: Number(mm[1]), maxmemoryPolicy: String(mp[1]) };
}

async function readPersistence(r: Redis): Promise<PersistenceSettings> {
  const ao = (await r.call('CONFIG', 'GET', 'appendonly')) as string[];
  const sv = (await r.call('CONFIG', 'GET', 'save')) as string[];
  return { appendonly: String(ao[1]), save: String(sv[1]) };
}

async function readFence(r: Redis): Promise<FenceSettings> {
  const n = (await r.call('CONFIG', 'GET', 'min-replicas-to-write')) as string[];
  const lag = (await r.call('CONFIG', 'GET', 'min-replicas-max-lag')) as string[];
  return { minReplicasToWrite: Number(n[1]), minReplicasMaxLag: Number(lag[1]) };
}

function sameFence(a: FenceSettings, b: FenceSettings): boolean {
  return a.minReplicasToWrite === b.minReplicasToWrite && a.minReplicasMaxLag === b.minReplicasMaxLag;
}

export function describe(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // ioredis messages can echo the command; AUTH arguments never appear in CONFIG calls, but be safe.
  return msg.replace(/AUTH\s+\S+/gi, 'AUTH ***');
}

/** Why a write was refused by `beforeWrite`: rethrown as is, never turned into a per-pod failure. */
class WriteRefused extends Error {
  override readonly name = 'WriteRefused';
  constructor(readonly reason: unknown) {
    super('write refused', { cause: reason });
  }
}

/**
 * Brings one pod to `desired`: CONFIG GET, CONFIG SET only what differs, CONFIG GET to verify — the
 * eviction settings; with `desired.persistence`, also `appendonly` (`CONFIG SET appendonly yes` starts the
 * append-only file from the data in memory, no restart) and `save`; and the write fence when `desired.fence`
 * is given (the max lag before the count, so that a fence being raised never runs a moment with the old,
 * looser lag).
 * Never throws for Redis failures: they come back as `applied: false` with a message. Throws only what
 * `opts.beforeWrite` throws (and then writes nothing more).
 */
export async function applyEvictionToPod(
  ep: PodEndpoint,
  desired: LiveSettings,
  opts: LiveConfigOptions = {},
): Promise<PodConfigResult> {
  const send = (r: Redis, ...args: string[]) => {
    try {
      opts.beforeWrite?.();
    } catch (err) {
      throw new WriteRefused(err);
    }
    // ioredis writes the command to the connected socket within this call: nothing runs between check and write.
    return r.call(args[0]!, ...args.slice(1));
  };
  const write = (r: Redis, ...args: string[]) => send(r, 'CONFIG', 'SET', ...args);
  const fence = desired.fence;
  const configure = async (r: Redis): Promise<PodConfigResult> => {
    const before = await readEviction(r);
    const fenceBefore = fence ? await readFence(r) : undefined;
    let changed = false;
    if (before.maxmemory !== desired.maxmemory) {
      await write(r, 'maxmemory', String(desired.maxmemory));
      changed = true;
    }
    if (before.maxmemoryPolicy !== desired.maxmemoryPolicy) {
      await write(r, 'maxmemory-policy', desired.maxmemoryPolicy);
      changed = true;
    }
    if (fence && fenceBefore && fenceBefore.minReplicasMaxLag !== fence.minReplicasMaxLag) {
      await write(r, 'min-replicas-max-lag', String(fence.minReplicasMaxLag));
      changed = true;
    }
    if (fence && fenceBefore && fenceBefore.minReplicasToWrite !== fence.minReplicasToWrite) {
      await write(r, 'min-replicas-to-write', String(fence.minReplicasToWrite));
      changed = true;
    }
    const persistence = desired.persistence;
    let persisted: PersistenceSettings | undefined;
    if (persistence !== undefined) {
      persisted = await readPersistence(r);
      let persistenceChanged = false;
      if (persisted.appendonly !== persistence.appendonly) {
        await write(r, 'appendonly', persistence.appendonly);
        persistenceChanged = true;
      }
      if (persisted.save !== persistence.save) {
        await write(r, 'save', persistence.save);
        persistenceChanged = true;
      }
      if (persistenceChanged) persisted = await readPersistence(r);
      changed ||= persistenceChanged;
    }
    const after = changed ? await readEviction(r) : before;
    const fenceAfter = fence ? (changed ? await readFence(r) : fenceBefore) : undefined;
    const role = String(((await r.call('ROLE')) as unknown[])[0]);
    const evictionApplied = after.maxmemory === desired.maxmemory && after.maxmemoryPolicy === desired.maxmemoryPolicy;
    const persistenceApplied =
      persistence === undefined ||
      (persisted?.appendonly === persistence.appendonly && persisted.save === persistence.save);
    const fenceApplied = !fence || (fenceAfter !== undefined && sameFence(fenceAfter, fence));
    const applied = evictionApplied && persistenceApplied && fenceApplied;
    const observed = { observed: after, ...(fenceAfter ? { observedFence: fenceAfter } : {}) };
    if (applied) return { pod: ep.pod, applied, changed, ...observed, role };
    const parts = [];
    if (!evictionApplied) parts.push(`maxmemory=${after.maxmemory} maxmemory-policy=${after.maxmemoryPolicy}`);
    if (!persistenceApplied && persisted !== undefined)
      parts.push(`appendonly=${persisted.appendonly} save="${persisted.save}"`);
    if (!fenceApplied && fenceAfter)
      parts.push(
        `min-replicas-to-write=${fenceAfter.minReplicasToWrite} min-replicas-max-lag=${fenceAfter.minReplicasMaxLag}`,
      );
    return {
      pod: ep.pod,
      applied,
      changed,
      ...observed,
      role,
      message: `pod reports ${parts.join(' ')} after CONFIG SET`,
    };
  };
  const failed = (err: unknown): PodConfigResult => {
    if (err instanceof WriteRefused) throw err.reason;
    return {
      pod: ep.pod,
      applied: false,
      changed: false,
      message: `${ep.host}:${ep.port}: ${describe(err)}`,
      ...(isAuthError(err) ? { authFailed: true } : {}),
    };
  };
  try {
    return await withClient(ep, opts, configure);
  } catch (err) {
    const previous = desired.previousPassword;
    if (!isAuthError(err) || previous === undefined || previous === opts.password) return failed(err);
    // A password rotation: the pod still runs with the previous password (it started before the rotation).
    try {
      return await withClient(ep, { ...opts, password: previous }, async (r) => {
        const accepted = opts.password !== undefined && (await acceptCurrentPassword(r, opts.password, send));
        return { ...(await configure(r)), ...(accepted ? { acceptedCurrentPassword: true } : {}) };
      });
    } catch (fallbackErr) {
      // Neither password: report the current one's refusal (the previous one is not the operator's to use).
      return failed(isAuthError(fallbackErr) ? err : fallbackErr);
    }
  }
}

/**
 * A pod that runs with the previous password (authenticated with it on `r`) is made to accept `current` too,
 * without a restart and without refusing the previous one (clients that started before the rotation, e.g.
 * sidecars, keep working): `ACL SETUSER default >current` adds a password to the default user, which
 * `requirepass` set; `CONFIG SET masterauth current` makes it authenticate to a primary with the current one
 * (after the roll's switchover its primary is a restarted pod, which knows only the current password). So
 * that, during the roll the rotation starts, pods on either revision replicate from each other, and the
 * operator uses the current password everywhere. A restarted pod has the current password only (the Secret
 * as it is when its container starts). Answers whether it changed anything. Every write goes through `write`
 * (the leadership fence). A refusal is reported by its error code alone: Redis may echo an ACL rule.
 */
async function acceptCurrentPassword(
  r: Redis,
  current: string,
  write: (r: Redis, ...args: string[]) => Promise<unknown>,
): Promise<boolean> {
  try {
    await write(r, 'ACL', 'SETUSER', 'default', `>${current}`);
    await write(r, 'CONFIG', 'SET', 'masterauth', current);
  } catch (err) {
    if (err instanceof WriteRefused) throw err;
    const code = (err instanceof Error ? err.message : '').split(/\s/, 1)[0] || 'error';
    // No `cause`: ioredis attaches the command, password included, to its error.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`could not make the pod accept the rotated password (${code})`);
  }
  return true;
}

/** Applies `desired` to every pod concurrently (primary and replicas alike; replicas persist their own copy). */
export async function applyEviction(
  endpoints: PodEndpoint[],
  desired: LiveSettings,
  opts: LiveConfigOptions = {},
): Promise<PodConfigResult[]> {
  return Promise.all(endpoints.map((ep) => applyEvictionToPod(ep, desired, opts)));
}
