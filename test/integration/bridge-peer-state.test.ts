/**
 * What the cross-cluster bridge says about its peers and its own Redis, with real redis-server and bridge
 * processes (no sidecars, no database: see bridge.test.ts for the relaying itself).
 *
 * - A peer that cannot be reached (connection refused, a host that does not resolve, a wrong password) shows
 *   the error in /v1/peers, in `ripplecache_bridge_errors_total{op="connect"}` and in the log (once per
 *   episode, not per reconnect attempt), never a password; the operator's PeersReachable condition names it.
 * - A wrong local password is logged as JSON (no ioredis stack on stderr) and counted.
 * - A repair of a reachable peer (a local invalidate-all, a malformed local message) leaves it up.
 * - A relayed message whose route has no room for every unvisited peer goes to those that fit; the others
 *   are counted and logged.
 * - The command line the operator renders for peer lists that used to name two peers alike runs.
 * - Bad `--log-level` and `--cluster`: one line, exit 2.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchBridgeReport } from '../../operator/src/bridge/bridge-client.js';
import { bridgeArgs, resolvePeers } from '../../operator/src/desired/bridge.js';
import { peersCondition } from '../../operator/src/status/peers-condition.js';
import { parseInvalidation, type InvalidationMessage } from '../../common/src/invalidation-message.js';
import { cacheCluster, withPeers } from '../fixtures/cache-cluster.js';
import { startBridge, stopAllBridges } from '../harness/bridge.js';
import { freePort, waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHANNEL = 'ripplecache:invalidations';

const redises: RedisProcess[] = [];
const clients: Redis[] = [];

afterAll(async () => {
  await stopAllBridges();
  for (const c of clients) c.disconnect();
  await Promise.all(redises.map((r) => r.stop()));
});

async function redis(password?: string): Promise<RedisProcess> {
  const r = await startRedis(password ? { password } : {});
  redises.push(r);
  return r;
}

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

/** Every message on a channel of a Redis, parsed, in arrival order (resolves once subscribed). */
async function listen(url: string, channel = CHANNEL): Promise<InvalidationMessage[]> {
  const seen: InvalidationMessage[] = [];
  const sub = client(url);
  sub.on('message', (ch: string, raw: string) => {
    if (ch === channel) seen.push(parseInvalidation(raw));
  });
  await sub.subscribe(channel);
  return seen;
}

/** The bridge's output lines, each parsed as a pino JSON line (throws on anything else). */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });
}

describe('a peer the bridge cannot reach', () => {
  it('shows the last error in /v1/peers, the metric, the log and the condition; never a password', async () => {
    const local = await redis();
    const guarded = await redis('right-pw-4711');
    const closed = await freePort();
    const secrets = ['right-pw-4711', 'wrong-pw-0815', 'url-pw-2342'];
    const bridge = await startBridge({
      args: [
        '--cluster',
        'test/a',
        '--redis',
        local.url,
        '--peer',
        `test/refused=redis://127.0.0.1:${closed}`,
        '--peer',
        'test/nxdomain=redis://no-such-host.invalid:6379',
        '--peer',
        `test/wrong=redis://127.0.0.1:${guarded.port}`,
        '--peer-password-env',
        'test/wrong=WRONG_PW',
        '--peer',
        `test/inurl=redis://:url-pw-2342@127.0.0.1:${guarded.port}/1`,
        '--peer',
        `test/good=redis://127.0.0.1:${guarded.port}/2`,
        '--peer-password-env',
        'test/good=GOOD_PW',
      ],
      env: { WRONG_PW: 'wrong-pw-0815', GOOD_PW: 'right-pw-4711' },
      wait: 'healthz',
    });
    const bad = {
      'test/refused': /ECONNREFUSED/,
      'test/nxdomain': /getaddrinfo|ENOTFOUND|EAI_AGAIN/,
      'test/wrong': /WRONGPASS/,
      'test/inurl': /WRONGPASS/,
    };
    await waitFor(
      'a last error for every unreachable peer',
      async () => {
        const { peers } = await bridge.peers();
        return Object.keys(bad).every((n) => peers.find((p) => p.name === n)?.lastError !== undefined);
      },
      20_000,
      50,
    );
    // Several reconnect attempts later (50 ms doubling to 2 s).
    await new Promise((r) => setTimeout(r, 3000));
    const { peers } = await bridge.peers();
    for (const [name, error] of Object.entries(bad)) {
      const p = peers.find((x) => x.name === name)!;
      expect(p, name).toMatchObject({ up: false, lastError: expect.stringMatching(error) });
      expect(await bridge.metric('ripplecache_bridge_peer_up', { peer: name }), name).toBe(0);
    }
    expect(peers.find((p) => p.name === 'test/good')).toMatchObject({ up: true });
    expect(peers.find((p) => p.name === 'test/good')).not.toHaveProperty('lastError');

    const lines = jsonLines(bridge.output());
    for (const name of Object.keys(bad)) {
      const errors = await bridge.metric('ripplecache_bridge_errors_total', { peer: name, op: 'connect' });
      const logged = lines.filter((l) => l.peer === name && l.msg === 'Failed to connect to a peer');
      // Counted at every attempt, logged once (the same message every time).
      expect(errors, name).toBeGreaterThanOrEqual(3);
      expect(logged, name).toHaveLength(1);
      expect(logged[0], name).toMatchObject({
        level: 40,
        op: 'connect',
        error: { message: expect.stringMatching(bad[name as keyof typeof bad]) },
      });
    }
    expect(await bridge.metric('ripplecache_bridge_errors_total', { peer: 'test/good' })).toBe(0);

    // What the operator makes of it, through its own client of /v1/peers.
    const report = await fetchBridgeReport('127.0.0.1', bridge.port, 5000);
    const condition = peersCondition({
      problems: [],
      expected: ['test/refused', 'test/nxdomain', 'test/wrong', 'test/inurl', 'test/good'],
      report,
      bridge: 'a-bridge',
    });
    expect(condition).toMatchObject({ status: 'False', reason: 'PeerUnreachable' });
    expect(condition.message).toMatch(/^peer test\/refused not reachable since \S+: connect ECONNREFUSED/);
    expect(condition.message).toMatch(/peer test\/wrong not reachable since \S+: WRONGPASS/);

    const metricsText = await (await fetch(`${bridge.url}/metrics`)).text();
    // Process metrics unprefixed, as the operator's and the sidecar's; the version on record.
    expect(metricsText).toMatch(/^process_cpu_seconds_total \d/m);
    expect(metricsText).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(metricsText).not.toContain('ripplecache_bridge_process_');
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(metricsText).toContain(
      `ripplecache_bridge_build_info{version="${version}",node_version="${process.versions.node}"} 1`,
    );
    const everything = bridge.output() + JSON.stringify(await bridge.peers()) + metricsText;
    for (const s of secrets) expect(everything).not.toContain(s);
    expect(bridge.output()).not.toContain('[ioredis]');
    await bridge.stop();
  });

  it('logs a wrong local password as JSON, counted, with nothing outside the log', async () => {
    const local = await redis('local-pw-9999');
    const peer = await redis();
    const bridge = await startBridge({
      args: ['--cluster', 'test/a', '--redis', `redis://127.0.0.1:${local.port}`, '--peer', `test/b=${peer.url}`],
      env: { RIPPLECACHE_REDIS_PASSWORD: 'not-local-pw-1234' },
      wait: 'healthz',
    });
    await waitFor(
      'local connection errors counted',
      async () => (await bridge.metric('ripplecache_bridge_errors_total', { peer: 'local', op: 'connect' })) >= 6,
      20_000,
      100,
    );
    const lines = jsonLines(bridge.output());
    const logged = lines.filter((l) => l.msg === 'Failed to connect to the local Redis');
    // One line per connection (commands, subscription), not one per reconnect attempt.
    expect(logged.map((l) => l.connection).sort()).toEqual(['commands', 'subscription']);
    for (const l of logged)
      expect(l).toMatchObject({ level: 40, error: { message: expect.stringMatching(/WRONGPASS/) } });
    expect(bridge.output()).not.toContain('[ioredis]');
    expect(bridge.output()).not.toContain('not-local-pw-1234');
    expect((await bridge.peers()).subscribed).toBe(false);
    await bridge.stop();
  });
});

describe('a repair of a reachable peer', () => {
  it('leaves it up (a local invalidate-all, a malformed local message): repairPending shows the repair', async () => {
    const [local, peer] = await Promise.all([redis(), redis()]);
    const b = client(peer.url);
    // Enough records in the peer for a repair to take a while (they are newer than any threshold: kept).
    for (let c = 0; c < 4; c++) {
      await b.eval(
        "for i=1,50000 do redis.call('HSET','rc:r'..ARGV[1]..':'..i,'v','x','ver','9000000000000000') " +
          "redis.call('PEXPIRE','rc:r'..ARGV[1]..':'..i,600000) end return 1",
        0,
        String(c),
      );
    }
    const bridge = await startBridge({
      args: ['--cluster', 'test/a', '--redis', local.url, '--peer', `test/b=${peer.url}`],
    });
    const a = client(local.url);
    for (const [what, raw] of [
      ['a local invalidate-all', JSON.stringify({ v: 1, sender: 'flush-cronjob', seq: 1, all: true })],
      ['a malformed local message', 'not json'],
    ] as const) {
      await bridge.waitReady();
      const before = (await bridge.peers()).peers[0]!;
      expect(before.up).toBe(true);
      await a.publish(CHANNEL, raw);
      let sawRepair = false;
      let sawDown = false;
      await waitFor(
        `the repair after ${what}`,
        async () => {
          const report = await fetchBridgeReport('127.0.0.1', bridge.port, 5000);
          const p = report?.peers[0];
          if (p?.up === false) sawDown = true;
          if (p?.repairPending !== undefined) {
            sawRepair = true;
            // The operator's condition stays True meanwhile.
            expect(peersCondition({ problems: [], expected: ['test/b'], report, bridge: 'a-bridge' })).toMatchObject({
              status: 'True',
              message: expect.stringMatching(/repairing test\/b/),
            });
          }
          return (await bridge.peers()).peers[0]!.repairs > before.repairs;
        },
        30_000,
        5,
      );
      const after = (await bridge.peers()).peers[0]!;
      expect(sawDown, what).toBe(false);
      expect(sawRepair, what).toBe(true);
      // `since` is when `up` last changed: it did not.
      expect((after as { since?: string }).since, what).toBe((before as { since?: string }).since);
      expect(await bridge.metric('ripplecache_bridge_peer_up', { peer: 'test/b' })).toBe(1);
      expect(await bridge.metric('ripplecache_bridge_peer_repair_pending', { peer: 'test/b' })).toBe(0);
    }
    expect(await bridge.metric('ripplecache_bridge_repairs_total', { reason: 'invalidate-all' })).toBe(1);
    expect(await bridge.metric('ripplecache_bridge_repairs_total', { reason: 'malformed-message' })).toBe(1);
    await bridge.stop();
  });
});

describe('a route with no room left', () => {
  it('is forwarded to the peers that fit; the others are counted and logged once', async () => {
    const [local, one, two] = await Promise.all([redis(), redis(), redis()]);
    const bridge = await startBridge({
      args: [
        '--cluster',
        'test/m',
        '--redis',
        local.url,
        '--peer',
        `test/one=${one.url}`,
        '--peer',
        `test/two=${two.url}`,
      ],
    });
    const [seenOne, seenTwo] = await Promise.all([listen(one.url), listen(two.url)]);
    const a = client(local.url);
    // Relayed here by another bridge: 62 clusters visited, with this one 63: room for one more (64 at most).
    const visited = ['o/x', ...Array.from({ length: 61 }, (_, i) => `v/c${i}`)];
    const relayed = (seq: number) =>
      JSON.stringify({ v: 1, sender: 'bridge/o/x', seq, keys: [`k${seq}`], vers: [1], origin: 'o/x', visited });
    await a.publish(CHANNEL, relayed(1));
    await waitFor('the forward to test/one', async () => seenOne.some((m) => m.origin === 'o/x'), 10_000, 20);
    const forwarded = seenOne.find((m) => m.origin === 'o/x')!;
    expect(forwarded.visited).toHaveLength(64);
    expect(forwarded.visited).toEqual(expect.arrayContaining(['test/m', 'test/one', 'o/x']));
    expect(await bridge.metric('ripplecache_bridge_forwards_dropped_total', { peer: 'test/two' })).toBe(1);
    expect(await bridge.metric('ripplecache_bridge_forwards_dropped_total', { peer: 'test/one' })).toBe(0);
    await a.publish(CHANNEL, relayed(2));
    await waitFor(
      'the second drop counted',
      async () => (await bridge.metric('ripplecache_bridge_forwards_dropped_total', { peer: 'test/two' })) === 2,
      10_000,
      20,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(seenTwo.filter((m) => m.origin === 'o/x')).toEqual([]);
    const warnings = jsonLines(bridge.output()).filter((l) => String(l.msg).includes('more than 64 clusters'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, origin: 'o/x', visited: 62, dropped: ['test/two'] });
    await bridge.stop();
  });
});

describe("the operator's command line", () => {
  it('runs for peer lists that used to name two peers alike, and relays to each peer', async () => {
    const [local, ext, other] = await Promise.all([redis(), redis(), redis()]);
    const url = (db: number) => `redis://127.0.0.1:${ext.port}/${db}`;
    const cc = cacheCluster(
      'a',
      withPeers(
        { cacheCluster: { name: 'b' } },
        { cacheCluster: { name: 'b', namespace: 'shop' } },
        { redis: { url: url(0) } },
        { redis: { url: url(1) } },
        { redis: { url: url(2), channel: 'a' } },
        { redis: { url: url(2), channel: 'b' } },
      ),
    );
    const b = cacheCluster('b');
    const { peers, problems } = resolvePeers(cc, (ns, name) => (ns === 'shop' && name === 'b' ? b : undefined));
    expect(problems).toEqual([]);
    expect(peers).toHaveLength(5);
    const args = bridgeArgs(cc, peers)
      .args.map((x) => x.replace('redis://a.shop.svc:6379', local.url).replace('redis://b.shop.svc:6379', other.url))
      .filter((x, i, all) => x !== '--listen' && all[i - 1] !== '--listen');
    const listening = await Promise.all([
      listen(ext.url),
      listen(ext.url, 'a'),
      listen(ext.url, 'b'),
      listen(other.url),
    ]);
    const bridge = await startBridge({ args });
    expect((await bridge.peers()).peers.map((p) => p.name)).toEqual(peers.map((p) => p.name));
    const a = client(local.url);
    await a.hset('rc:shared', 'v', 'x', 'ver', '5');
    await a.publish(CHANNEL, JSON.stringify({ v: 1, sender: 's', seq: 1, keys: ['shared'] }));
    const relayed = (seen: InvalidationMessage[]) =>
      seen.filter((m) => m.origin === 'shop/a' && 'keys' in m && m.keys.includes('shared')).length;
    // Databases 0 and 1 share the server's channel (Pub/Sub ignores databases): two messages there.
    await waitFor('the relays to every peer', async () => listening.map(relayed).join() === '2,1,1,1', 10_000, 20);
    await bridge.stop();
  });
});

describe('bad flags', () => {
  function runBridge(args: string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'sidecar/src/bridge/main.ts', ...args], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
  }

  it('refuses an unknown --log-level and a --cluster that is not NAMESPACE/NAME: one line, exit 2', async () => {
    const base = ['--redis', 'redis://127.0.0.1:1', '--peer', 'test/b=redis://127.0.0.1:2'];
    const level = await runBridge(['--cluster', 'test/a', ...base, '--log-level', 'verbose']);
    expect(level).toEqual({
      code: 2,
      stderr:
        'ripplecache-bridge: --log-level: "verbose" is not one of fatal, error, warn, info, debug, trace, silent\n' +
        'Run with --help for the flags.\n',
    });
    const cluster = await runBridge(['--cluster', 'not a name', ...base]);
    expect(cluster.code).toBe(2);
    expect(cluster.stderr).toMatch(/^ripplecache-bridge: --cluster: "not a name" is not NAMESPACE\/NAME/);
    expect(cluster.stderr.split('\n')).toHaveLength(3);
  });
});
