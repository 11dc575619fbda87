/**
 * The `PeersReachable` condition of a CacheCluster with `spec.invalidation.peers`, from the peers the
 * operator could resolve and what the bridge reports on `/v1/peers`. Pure.
 *
 * A peer is down when the bridge reports it not `up` (not connected, or its last call failed). A peer that
 * is up with `repairPending` is being repaired (a scheduled flush, a malformed local message, a reconnect...):
 * it is reachable, the repair takes a moment, and the condition stays True, naming it in the message.
 */
import { CONDITION_PEERS_REACHABLE } from '../api/v1alpha1/constants.js';
import type { PeerProblem } from '../desired/bridge.js';
import type { ConditionInput } from './conditions.js';

/** The bridge's `/v1/peers` answer (sidecar/src/bridge/bridge-app.ts, peer-link.ts PeerStatus). */
export interface BridgeReport {
  subscribed: boolean;
  peers: Array<{ name: string; up: boolean; lastError?: string; since?: string; repairPending?: string }>;
}

export function peersCondition(input: {
  problems: readonly PeerProblem[];
  /** The peers the bridge is configured with. */
  expected: readonly string[];
  /** Undefined when the bridge did not answer. */
  report: BridgeReport | undefined;
  bridge: string;
  generation?: number;
}): ConditionInput {
  const base = {
    type: CONDITION_PEERS_REACHABLE,
    ...(input.generation !== undefined ? { observedGeneration: input.generation } : {}),
  };
  const first = input.problems[0];
  if (first) {
    return { ...base, status: 'False', reason: first.reason, message: input.problems.map((p) => p.message).join('; ') };
  }
  const { report } = input;
  if (!report) {
    return {
      ...base,
      status: 'Unknown',
      reason: 'BridgeNotReporting',
      message: `the bridge ${input.bridge} does not answer (starting, or down): peers may miss invalidations`,
    };
  }
  const reported = new Map(report.peers.map((p) => [p.name, p]));
  if (input.expected.some((n) => !reported.has(n))) {
    return {
      ...base,
      status: 'Unknown',
      reason: 'BridgeRollingOut',
      message: `the bridge ${input.bridge} does not run the current peer list yet`,
    };
  }
  if (!report.subscribed) {
    return {
      ...base,
      status: 'False',
      reason: 'BridgeNotSubscribed',
      message: `the bridge ${input.bridge} is not subscribed to this CacheCluster's invalidation channel`,
    };
  }
  const down = input.expected.map((n) => reported.get(n)!).filter((p) => !p.up);
  if (down.length > 0) {
    return {
      ...base,
      status: 'False',
      reason: 'PeerUnreachable',
      message: down
        .map(
          (p) =>
            `peer ${p.name} not reachable${p.since ? ` since ${p.since}` : ''}` +
            (p.lastError ? `: ${p.lastError}` : p.repairPending ? ` (repair pending: ${p.repairPending})` : ''),
        )
        .join('; '),
    };
  }
  const repairing = input.expected.map((n) => reported.get(n)!).filter((p) => p.repairPending !== undefined);
  return {
    ...base,
    status: 'True',
    reason: 'AllPeersReachable',
    message:
      `${input.expected.length} peer(s) reachable: ${input.expected.join(', ')}` +
      (repairing.length > 0
        ? `; repairing ${repairing.map((p) => `${p.name} (${p.repairPending ?? ''})`).join(', ')}`
        : ''),
  };
}
