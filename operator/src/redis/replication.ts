/**
 * Replication state and role changes, for failover: `INFO replication` (read), `REPLICAOF NO ONE` (promote)
 * and `REPLICAOF host port` (follow). Every write asks `beforeWrite` (the leadership fence) right before it is
 * sent, as CONFIG SET does in live-config.ts.
 */
import type { Redis } from 'ioredis';
import { describe, isAuthError, withClient, type LiveConfigOptions, type PodEndpoint } from './live-config.js';

/** What one pod reported to `INFO replication`, or why it could not be asked. */
export type ReplicationInfo =
  | {
      pod: string;
      reachable: true;
      role: 'master' | 'replica';
      /** The replication offset: `master_repl_offset` of a master, `slave_repl_offset` of a replica. */
      offset: number;
      replid: string;
      /** A replica's master as configured (`master_host`, `master_port`). */
      masterHost?: string;
      masterPort?: number;
      /** A replica's `master_link_status:up`. */
      linkUp?: boolean;
      /** A replica's `master_link_down_since_seconds` (absent while the link is up). */
      linkDownSinceSeconds?: number;
      /** A replica's `master_sync_in_progress:1`: a full sync is loading, its data is incomplete. */
      syncInProgress?: boolean;
      /** A master's `connected_slaves`. */
      connectedReplicas?: number;
    }
  | {
      pod: string;
      reachable: false;
      message: string;
      /**
       * Redis answered but refused the password (WRONGPASS / NOAUTH): the pod is alive, not lost (a password
       * rotation not yet carried to it), and never a reason to fail over.
       */
      authFailed?: true;
    };

/** Parses the text of `INFO replication` (pure). */
export function parseReplicationInfo(pod: string, text: string): ReplicationInfo {
  const f = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) f.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const num = (k: string): number | undefined => {
    const v = f.get(k);
    return v === undefined || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v);
  };
  const replid = f.get('master_replid') ?? '';
  if (f.get('role') === 'master') {
    return {
      pod,
      reachable: true,
      role: 'master',
      offset: num('master_repl_offset') ?? 0,
      replid,
      connectedReplicas: num('connected_slaves') ?? 0,
    };
  }
  const linkDown = num('master_link_down_since_seconds');
  return {
    pod,
    reachable: true,
    role: 'replica',
    offset: num('slave_repl_offset') ?? num('master_repl_offset') ?? 0,
    replid,
    ...(f.has('master_host') ? { masterHost: f.get('master_host')! } : {}),
    ...(num('master_port') !== undefined ? { masterPort: num('master_port')! } : {}),
    linkUp: f.get('master_link_status') === 'up',
    ...(linkDown !== undefined && linkDown >= 0 ? { linkDownSinceSeconds: linkDown } : {}),
    syncInProgress: f.get('master_sync_in_progress') === '1',
  };
}

/**
 * `INFO replication` of one pod; never throws (an unreachable pod comes back `reachable: false`). The whole call
 * (connection and INFO) is time boxed to `opts.timeoutMs` unless `opts.deadlineMs` says otherwise: a frozen Redis
 * is reported unreachable after that time, never later.
 */
export async function readReplication(ep: PodEndpoint, opts: LiveConfigOptions = {}): Promise<ReplicationInfo> {
  try {
    return await withClient(ep, { ...opts, deadlineMs: opts.deadlineMs ?? opts.timeoutMs ?? 2000 }, async (r) =>
      parseReplicationInfo(ep.pod, String(await r.call('INFO', 'replication'))),
    );
  } catch (err) {
    return {
      pod: ep.pod,
      reachable: false,
      message: `${ep.host}:${ep.port}: ${describe(err)}`,
      ...(isAuthError(err) ? { authFailed: true as const } : {}),
    };
  }
}

/** Thrown when a role change could not be made (the pod's answer or the connection error, never a password). */
export class ReplicationCommandError extends Error {
  override readonly name = 'ReplicationCommandError';
  readonly code = 'ReplicationCommandFailed';
}

/** Why `beforeWrite` refused: rethrown as is, never turned into a ReplicationCommandError. */
class Refused extends Error {
  constructor(readonly reason: unknown) {
    super('write refused', { cause: reason });
  }
}

async function adminCommand(
  ep: PodEndpoint,
  args: string[],
  opts: LiveConfigOptions,
  also: string[][] = [],
): Promise<void> {
  try {
    await withClient(ep, opts, async (r: Redis) => {
      try {
        opts.beforeWrite?.();
      } catch (err) {
        throw new Refused(err);
      }
      // Sent within this call: nothing runs between the fence check and the write.
      if (also.length === 0) {
        await r.call(args[0]!, ...args.slice(1));
        return;
      }
      // One transaction: no other client's command runs between them.
      const tx = r.multi();
      for (const [name, ...rest] of [args, ...also]) tx.call(name!, ...rest);
      const replies = (await tx.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
    });
  } catch (err) {
    if (err instanceof Refused) throw err.reason;
    throw new ReplicationCommandError(`${args.join(' ')} on ${ep.pod}: ${describe(err)}`, { cause: err });
  }
}

/** `REPLICAOF NO ONE`: the pod becomes a primary, keeping its data. */
export function promote(ep: PodEndpoint, opts: LiveConfigOptions = {}): Promise<void> {
  return adminCommand(ep, ['REPLICAOF', 'NO', 'ONE'], opts);
}

/**
 * `REPLICAOF host port`: the pod follows `primary` (a partial resync when its history allows, else a full one).
 * With `disconnectClients` (a primary being demoted), `CLIENT KILL TYPE normal` in the same transaction, as
 * Sentinel does: clients that sent it primary traffic reconnect (through the client Service, to the pod labelled
 * primary) instead of meeting `READONLY` on a connection that stays on a replica. Commands of theirs held back
 * by `CLIENT PAUSE WRITE` never ran; they fail with the closed connection. Replicas' links, pub/sub subscribers
 * (a replica receives what is published on its primary) and this connection are kept.
 */
export function follow(
  ep: PodEndpoint,
  primary: { host: string; port: number },
  opts: LiveConfigOptions = {},
  { disconnectClients = false }: { disconnectClients?: boolean } = {},
) {
  const kill = disconnectClients ? [['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']] : [];
  return adminCommand(ep, ['REPLICAOF', primary.host, String(primary.port)], opts, kill);
}

/**
 * `CLIENT PAUSE ms WRITE`: the pod holds back write commands for at most `ms` (a planned switchover, while its
 * replica catches up; they then run, or fail READONLY once it follows the new primary). It ends by itself.
 */
export function pauseWrites(ep: PodEndpoint, ms: number, opts: LiveConfigOptions = {}): Promise<void> {
  return adminCommand(ep, ['CLIENT', 'PAUSE', String(Math.max(1, Math.round(ms))), 'WRITE'], opts);
}

/** `CLIENT UNPAUSE`: held-back commands run now. */
export function unpauseWrites(ep: PodEndpoint, opts: LiveConfigOptions = {}): Promise<void> {
  return adminCommand(ep, ['CLIENT', 'UNPAUSE'], opts);
}
