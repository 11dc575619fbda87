/**
 * Reads a bridge's `/v1/peers` (sidecar/src/bridge/bridge-app.ts) for the PeersReachable condition. The
 * only HTTP client of the operator besides the API server's; plain `fetch`, time-boxed.
 */
import type { BridgeReport } from '../status/peers-condition.js';

/** The report, or undefined when the bridge does not answer in `timeoutMs` or answers nonsense. */
export async function fetchBridgeReport(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<BridgeReport | undefined> {
  try {
    const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/v1/peers`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return undefined;
    const doc = (await res.json()) as Partial<BridgeReport>;
    if (typeof doc.subscribed !== 'boolean' || !Array.isArray(doc.peers)) return undefined;
    return {
      subscribed: doc.subscribed,
      peers: doc.peers
        .filter((p) => typeof p?.name === 'string' && typeof p.up === 'boolean')
        .map((p) => ({
          name: p.name,
          up: p.up,
          ...(typeof p.lastError === 'string' ? { lastError: p.lastError.slice(0, 256) } : {}),
          ...(typeof p.since === 'string' ? { since: p.since } : {}),
          ...(typeof p.repairPending === 'string' ? { repairPending: p.repairPending } : {}),
        })),
    };
  } catch {
    return undefined;
  }
}
