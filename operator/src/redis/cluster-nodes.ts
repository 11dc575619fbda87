/**
 * Parsing of Redis Cluster's own reports (pure): `CLUSTER NODES` (one line per known node) and `CLUSTER INFO`.
 * The operator reads every node's view with these (redis/cluster.ts) and plans from them (reconcile/cluster-plan.ts).
 */

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeEntry {
  id: string;
  /** The announced address (`ip:port@bus`); empty host when the node does not know its own address yet. */
  host: string;
  port: number;
  /** `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, `nofailover`, `noflags`. */
  flags: string[];
  /** The id of the master a replica follows (absent for a master). */
  masterId?: string;
  /** `connected` or `disconnected` (the cluster bus link). */
  linkState: string;
  /** Slot ranges this node serves, inclusive, sorted. */
  slots: Array<[number, number]>;
  /** Slots this node is moving out (`[slot->-target]`), as reported by itself. */
  migrating: Array<{ slot: number; to: string }>;
  /** Slots this node is taking in (`[slot-<-source]`), as reported by itself. */
  importing: Array<{ slot: number; from: string }>;
}

/** Parses the text of `CLUSTER NODES`. Lines that are not node lines are skipped. */
export function parseClusterNodes(text: string): ClusterNodeEntry[] {
  const out: ClusterNodeEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const f = raw.trim().split(/\s+/);
    if (f.length < 8 || !/^[0-9a-f]{40}$/.test(f[0]!)) continue;
    const address = f[1]!.split(',')[0]!.split('@')[0]!;
    const colon = address.lastIndexOf(':');
    const entry: ClusterNodeEntry = {
      id: f[0]!,
      host: colon >= 0 ? address.slice(0, colon) : '',
      port: colon >= 0 ? Number(address.slice(colon + 1)) : 0,
      flags: f[2]!.split(','),
      linkState: f[7]!,
      slots: [],
      migrating: [],
      importing: [],
    };
    if (f[3] !== '-') entry.masterId = f[3]!;
    for (const s of f.slice(8)) {
      const mig = /^\[(\d+)->-([0-9a-f]{40})\]$/.exec(s);
      const imp = /^\[(\d+)-<-([0-9a-f]{40})\]$/.exec(s);
      if (mig) entry.migrating.push({ slot: Number(mig[1]), to: mig[2]! });
      else if (imp) entry.importing.push({ slot: Number(imp[1]), from: imp[2]! });
      else {
        const [a, b] = s.split('-');
        const start = Number(a);
        const end = b === undefined ? start : Number(b);
        if (Number.isInteger(start) && Number.isInteger(end)) entry.slots.push([start, end]);
      }
    }
    entry.slots.sort((x, y) => x[0] - y[0]);
    out.push(entry);
  }
  return out;
}

/** Parses `CLUSTER INFO` into its fields (`cluster_state`, `cluster_slots_assigned`, …). */
export function parseClusterInfo(text: string): Record<string, string> {
  const f: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) f[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return f;
}

/** How many slots the ranges cover. */
export function slotCount(ranges: ReadonlyArray<readonly [number, number]>): number {
  return ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
}

/** Ranges as Redis prints them: `0-5460,10923` (empty string for none). */
export function formatSlotRanges(ranges: ReadonlyArray<readonly [number, number]>): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}

/** Sorted slot numbers as inclusive ranges. */
export function toRanges(slots: readonly number[]): Array<[number, number]> {
  const sorted = [...slots].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s === last[1] + 1) last[1] = s;
    else if (!last || s > last[1]) out.push([s, s]);
  }
  return out;
}
