import { describe, expect, it } from 'vitest';
import { peersCondition } from './peers-condition.js';

const base = { problems: [], expected: ['shop/b', 'ext'], bridge: 'a-bridge' };

describe('peersCondition', () => {
  it('is True when the bridge reports every peer up', () => {
    const c = peersCondition({
      ...base,
      report: {
        subscribed: true,
        peers: [
          { name: 'shop/b', up: true },
          { name: 'ext', up: true },
        ],
      },
    });
    expect(c).toMatchObject({ type: 'PeersReachable', status: 'True', reason: 'AllPeersReachable' });
  });

  it('is False naming an unreachable peer and its error', () => {
    const c = peersCondition({
      ...base,
      report: {
        subscribed: true,
        peers: [
          { name: 'shop/b', up: false, lastError: 'connect ECONNREFUSED', since: '2026-01-01T00:00:00.000Z' },
          { name: 'ext', up: true },
        ],
      },
    });
    expect(c).toMatchObject({ status: 'False', reason: 'PeerUnreachable' });
    expect(c.message).toBe('peer shop/b not reachable since 2026-01-01T00:00:00.000Z: connect ECONNREFUSED');
  });

  it('puts peers the operator cannot use first, then an absent bridge, a bridge on an older peer list, an unsubscribed one', () => {
    expect(
      peersCondition({
        ...base,
        problems: [{ peer: 'shop/d', reason: 'PeerUnsupported', message: 'm' }],
        report: undefined,
      }),
    ).toMatchObject({ status: 'False', reason: 'PeerUnsupported', message: 'm' });
    expect(peersCondition({ ...base, report: undefined })).toMatchObject({
      status: 'Unknown',
      reason: 'BridgeNotReporting',
    });
    expect(
      peersCondition({ ...base, report: { subscribed: true, peers: [{ name: 'shop/b', up: true }] } }),
    ).toMatchObject({
      status: 'Unknown',
      reason: 'BridgeRollingOut',
    });
    expect(
      peersCondition({
        ...base,
        report: {
          subscribed: false,
          peers: [
            { name: 'shop/b', up: true },
            { name: 'ext', up: true },
          ],
        },
      }),
    ).toMatchObject({ status: 'False', reason: 'BridgeNotSubscribed' });
  });

  it('keeps a reachable peer under repair True (a flush, a malformed message): it names the repair', () => {
    const c = peersCondition({
      ...base,
      report: {
        subscribed: true,
        peers: [
          { name: 'shop/b', up: true, repairPending: 'invalidate-all', since: '2026-01-01T00:00:00.000Z' },
          { name: 'ext', up: true },
        ],
      },
    });
    expect(c).toEqual({
      type: 'PeersReachable',
      status: 'True',
      reason: 'AllPeersReachable',
      message: '2 peer(s) reachable: shop/b, ext; repairing shop/b (invalidate-all)',
    });
    // An unreachable peer waiting for its repair is still unreachable.
    expect(
      peersCondition({
        ...base,
        report: {
          subscribed: true,
          peers: [
            { name: 'shop/b', up: false, repairPending: 'peer-reconnected', since: '2026-01-01T00:00:00.000Z' },
            { name: 'ext', up: true },
          ],
        },
      }),
    ).toMatchObject({
      status: 'False',
      reason: 'PeerUnreachable',
      message: 'peer shop/b not reachable since 2026-01-01T00:00:00.000Z (repair pending: peer-reconnected)',
    });
  });

  it('reports a peer list the bridge could not use as PeerConflict', () => {
    expect(
      peersCondition({
        ...base,
        problems: [{ peer: 'shop/b', reason: 'PeerConflict', message: 'peer shop/b is listed 2 times' }],
        report: undefined,
      }),
    ).toMatchObject({ status: 'False', reason: 'PeerConflict', message: 'peer shop/b is listed 2 times' });
  });
});
