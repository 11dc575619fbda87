/**
 * Lua scripts sent as commands whose RESP bytes are built in one buffer.
 *
 * ioredis encodes a command by flattening its arguments and copying each of them, and its length prefix,
 * piece by piece; for the write-back append (six arguments per write, a few hundred per call) that was
 * about a tenth of the sidecar's CPU under load. Here the arguments are measured once and written once.
 * Replies are decoded by ioredis as usual (strings). The script runs by EVALSHA; when Redis does not know
 * it yet (NOSCRIPT: first use, or Redis restarted), it is sent once more with EVAL, which loads it.
 */
import { createHash } from 'node:crypto';
import { Command } from 'ioredis';
import { keySlot } from '../write/key-layout.js';
import { isCluster, type RedisClient } from './redis-client.js';

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export type ScriptArgument = string | Buffer | number;

/** The RESP array of bulk strings for `parts` (numbers as their decimal text). Pure. */
export function encodeCommand(parts: readonly ScriptArgument[]): Buffer {
  const texts: (string | Buffer)[] = new Array<string | Buffer>(parts.length);
  const lengths: number[] = new Array<number>(parts.length);
  let size = 3 + String(parts.length).length;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as ScriptArgument;
    const text = typeof p === 'number' ? String(p) : p;
    const n = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
    texts[i] = text;
    lengths[i] = n;
    size += 5 + String(n).length + n;
  }
  const out = Buffer.allocUnsafe(size);
  let o = out.write(`*${parts.length}\r\n`, 0, 'latin1');
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i] as string | Buffer;
    o += out.write(`$${lengths[i]}\r\n`, o, 'latin1');
    o += typeof text === 'string' ? out.write(text, o, 'utf8') : text.copy(out, o);
    out[o++] = 13;
    out[o++] = 10;
  }
  return out;
}

class PrebuiltCommand extends Command {
  constructor(
    name: string,
    private readonly bytes: Buffer,
    private readonly firstKey: string | undefined,
  ) {
    super(name, [], { replyEncoding: 'utf8' });
  }

  /** The Cluster client routes by the slot of the first key (the arguments are not kept as such). */
  override getSlot(): number {
    return this.firstKey === undefined ? (null as unknown as number) : keySlot(this.firstKey);
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}

function send(client: RedisClient, parts: ScriptArgument[], firstKey: string | undefined): Promise<unknown> {
  const command = new PrebuiltCommand(String(parts[0]), encodeCommand(parts), firstKey);
  void client.sendCommand(command);
  return command.promise;
}

/**
 * Runs `script` with `keys` and `args` (EVALSHA, or EVAL when Redis answers NOSCRIPT). On a Redis Cluster
 * every key must be in one slot (the caller's layout makes sure, key-layout.ts); the call goes to that
 * slot's primary and follows MOVED/ASK, and TRYAGAIN is retried for up to the client's command time box
 * ({@link retryWhileTryAgain}).
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly ScriptArgument[],
): Promise<unknown> {
  const parts: ScriptArgument[] = ['evalsha', script.sha, keys.length];
  for (const k of keys) parts.push(k);
  for (const a of args) parts.push(a);
  const once = async () => {
    try {
      return await send(client, parts, keys[0]);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return send(client, ['eval', script.lua, ...parts.slice(2)], keys[0]);
    }
  };
  if (!isCluster(client) || keys.length < 2) return once();
  return retryWhileTryAgain(once, tryAgainBudgetMs(client));
}

/** How long a script answered TRYAGAIN is retried when the client has no command time box, ms. */
export const DEFAULT_TRYAGAIN_BUDGET_MS = 2000;

/** The time box of `client`'s commands (`--redis-timeout-ms`): how long {@link retryWhileTryAgain} may try. */
export function tryAgainBudgetMs(client: RedisClient): number {
  return (
    (isCluster(client) ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout) ??
    DEFAULT_TRYAGAIN_BUDGET_MS
  );
}

/**
 * Whether `err` says the command did not run because a slot is moving: Redis Cluster's TRYAGAIN, or ioredis'
 * "Too many Cluster redirections" (it follows MOVED/ASK and retries TRYAGAIN and CLUSTERDOWN itself — a
 * TRYAGAIN on a random node, which redirects it back — so its 16 redirections last about half a second, and
 * the last one may be a MOVED or an ASK of that dance). Pure.
 */
export function isTryAgain(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.message.startsWith('TRYAGAIN') || err.message.startsWith('Too many Cluster redirections');
}

/**
 * Runs `fn` again while it fails with {@link isTryAgain} and `budgetMs` has not passed since the first try
 * (after 25 ms, doubling to 200 ms, never past the budget); any other outcome is `fn`'s.
 *
 * Why (issue 15, CI): a multi-key command on a slot that is being migrated, some of whose keys are on the
 * source and some are not, is answered TRYAGAIN by Redis Cluster — without running it — for as long as
 * the slot is MIGRATING/IMPORTING. Every write-back append declares the record keys of its writes beside
 * its bucket's stream and counter, so the first write of a key into a bucket whose slot is moving is
 * such a command, for the length of the move of that slot (one MIGRATE batch and a few SETSLOTs when the
 * operator is quick; seconds on a loaded machine). Retrying within the request's time box turns that
 * window into latency instead of a 503. Neither error means the script ran, so retrying is safe.
 */
export async function retryWhileTryAgain<T>(
  fn: () => Promise<T>,
  budgetMs: number,
  clock: () => number = () => performance.now(),
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<T> {
  const started = clock();
  for (let delay = 25; ; delay = Math.min(200, delay * 2)) {
    try {
      return await fn();
    } catch (err) {
      const left = budgetMs - (clock() - started);
      if (!isTryAgain(err) || left <= 0) throw err;
      await sleep(Math.min(delay, left));
    }
  }
}
