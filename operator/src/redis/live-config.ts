/**
 * Live Redis settings: reads with CONFIG GET, changes with CONFIG SET, verifies with CONFIG GET again.
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

export interface PodConfigResult {
  pod: string;
  /** True when CONFIG GET, after any CONFIG SET, shows the desired settings. */
  applied: boolean;
  /** True when this call changed something with CONFIG SET. */
  changed: boolean;
  /** What the pod reported last (absent when it could not be reached). */
  observed?: EvictionSettings;
  /** The pod's replication role as Redis reports it (`ROLE`): master, slave (a replica) or sentinel. */
  role?: string;
  /** Why it is not applied. Never contains a password. */
  message?: string;
}

export interface LiveConfigOptions {
  password?: string | undefined;
  /** Per-call time box. Default 2000 ms. */
  timeoutMs?: number;
  /**
   * Called synchronously right before every write (CONFIG SET) is sent: the leadership fence. When it throws,
   * nothing more is written and `applyEvictionToPod` / `applyEviction` reject with what it threw.
   */
  beforeWrite?: () => void;
}

/** One short-lived connection to `ep` (no retries, no offline queue), closed after `fn`. */
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
  client.on('error', () => {
    /* reported through the rejected command */
  });
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

async function readEviction(r: Redis): Promise<EvictionSettings> {
  const mm = (await r.call('CONFIG', 'GET', 'maxmemory')) as string[];
  const mp = (await r.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
  // CONFIG GET answers [name, value]; maxmemory comes back as plain bytes.
  return { maxmemory: Number(mm[1]), maxmemoryPolicy: String(mp[1]) };
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
 * Brings one pod to `desired`: CONFIG GET, CONFIG SET only what differs, CONFIG GET to verify.
 * Never throws for Redis failures: they come back as `applied: false` with a message. Throws only what
 * `opts.beforeWrite` throws (and then writes nothing more).
 */
export async function applyEvictionToPod(
  ep: PodEndpoint,
  desired: EvictionSettings,
  opts: LiveConfigOptions = {},
): Promise<PodConfigResult> {
  const write = (r: Redis, ...args: string[]) => {
    try {
      opts.beforeWrite?.();
    } catch (err) {
      throw new WriteRefused(err);
    }
    // ioredis writes the command to the connected socket within this call: nothing runs between check and write.
    return r.call('CONFIG', 'SET', ...args);
  };
  try {
    return await withClient(ep, opts, async (r) => {
      const before = await readEviction(r);
      let changed = false;
      if (before.maxmemory !== desired.maxmemory) {
        await write(r, 'maxmemory', String(desired.maxmemory));
        changed = true;
      }
      if (before.maxmemoryPolicy !== desired.maxmemoryPolicy) {
        await write(r, 'maxmemory-policy', desired.maxmemoryPolicy);
        changed = true;
      }
      const after = changed ? await readEviction(r) : before;
      const role = String(((await r.call('ROLE')) as unknown[])[0]);
      const applied = after.maxmemory === desired.maxmemory && after.maxmemoryPolicy === desired.maxmemoryPolicy;
      return applied
        ? { pod: ep.pod, applied, changed, observed: after, role }
        : {
            pod: ep.pod,
            applied,
            changed,
            observed: after,
            role,
            message: `pod reports maxmemory=${after.maxmemory} maxmemory-policy=${after.maxmemoryPolicy} after CONFIG SET`,
          };
    });
  } catch (err) {
    if (err instanceof WriteRefused) throw err.reason;
    return { pod: ep.pod, applied: false, changed: false, message: `${ep.host}:${ep.port}: ${describe(err)}` };
  }
}

/** Applies `desired` to every pod concurrently (primary and replicas alike). */
export async function applyEviction(
  endpoints: PodEndpoint[],
  desired: EvictionSettings,
  opts: LiveConfigOptions = {},
): Promise<PodConfigResult[]> {
  return Promise.all(endpoints.map((ep) => applyEvictionToPod(ep, desired, opts)));
}
