/**
 * Lua scripts sent as commands whose RESP bytes are built in one buffer.
 *
 * ioredis encodes a command by flattening its arguments and copying each of them, and its length prefix,
 * piece by piece; for the write-back append (six arguments per write, a few hundred per call) that was
 * about a tenth of the sidecar's CPU under load. Here the arguments are measured once and written once.
 * Replies are decoded by ioredis as usual (strings).
 *
 * A script's first use on each connection is sent as EVAL (which loads it), later ones as EVALSHA; a
 * NOSCRIPT answer (SCRIPT FLUSH) marks the connection again and the call is resent. Why not EVALSHA first
 * with EVAL on NOSCRIPT: the calls after the refused one were already sent, and when another client loads
 * the script meanwhile they run before the resent call — scripts that publish invalidation sequence
 * numbers (the write-back append) then reach receivers out of order, which they take for a lost message
 * and drop their L1 (CI, issue 16; test/integration/prebuilt-script-order.test.ts). ioredis does the same
 * for its own defined commands (Script.ts).
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

/** The connections (sockets) that have run each script since they connected, by script. */
const loadedOn = new WeakMap<LuaScript, WeakSet<object>>();

class PrebuiltCommand extends Command {
  constructor(
    private readonly script: LuaScript,
    private readonly parts: readonly ScriptArgument[],
    private readonly firstKey: string | undefined,
  ) {
    super('evalsha', [], { replyEncoding: 'utf8' });
  }

  /** The Cluster client routes by the slot of the first key (the arguments are not kept as such). */
  override getSlot(): number {
    return this.firstKey === undefined ? (null as unknown as number) : keySlot(this.firstKey);
  }

  /** EVAL on a connection that has not run the script yet, EVALSHA after (see the file header). */
  override toWritable(socket: object): Buffer {
    let sockets = loadedOn.get(this.script);
    if (sockets === undefined) {
      sockets = new WeakSet();
      loadedOn.set(this.script, sockets);
    }
    const loaded = sockets;
    const reject = this.reject;
    this.reject = (err: Error) => {
      if (err.message.startsWith('NOSCRIPT')) loaded.delete(socket);
      reject.call(this, err);
    };
    if (loaded.has(socket)) {
      this.name = 'evalsha';
      return encodeCommand(['evalsha', this.script.sha, ...this.parts]);
    }
    loaded.add(socket);
    this.name = 'eval';
    return encodeCommand(['eval', this.script.lua, ...this.parts]);
  }
}

function send(
  client: RedisClient,
  script: LuaScript,
  parts: readonly ScriptArgument[],
  firstKey: string | undefined,
): Promise<unknown> {
  const command = new PrebuiltCommand(script, parts, firstKey);
  void client.sendCommand(command);
  return command.promise;
}

/**
 * Runs `script` with `keys` and `args` (EVAL on a connection's first use, EVALSHA after). On a Redis Cluster
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
  const parts: ScriptArgument[] = [keys.length];
  for (const k of keys) parts.push(k);
  for (const a of args) parts.push(a);
  const once = async () => {
    try {
      return await send(client, script, parts, keys[0]);
    } catch (err) {
      // SCRIPT FLUSH (or a Redis that lost its scripts without dropping the connection): sent as EVAL now.
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
      return send(client, script, parts, keys[0]);
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
