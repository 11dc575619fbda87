import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseReplicationInfo, readReplication } from './replication.js';

describe('parseReplicationInfo', () => {
  it('reads a master: offset, replication id, connected replicas', () => {
    const text =
      '# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=0\r\n' +
      'master_failover_state:no-failover\r\nmaster_replid:abc\r\nmaster_replid2:0000\r\nmaster_repl_offset:42\r\n';
    expect(parseReplicationInfo('c-0', text)).toEqual({
      pod: 'c-0',
      reachable: true,
      role: 'master',
      offset: 42,
      replid: 'abc',
      connectedReplicas: 2,
    });
  });

  it('reads a replica with its link down: master address, processed offset, down since, sync state', () => {
    const text = [
      '# Replication',
      'role:slave',
      'master_host:c-0.c-headless.ns.svc',
      'master_port:6379',
      'master_link_status:down',
      'master_last_io_seconds_ago:-1',
      'master_sync_in_progress:0',
      'slave_read_repl_offset:120',
      'slave_repl_offset:118',
      'master_link_down_since_seconds:3',
      'master_replid:abc',
      'master_repl_offset:118',
    ].join('\n');
    expect(parseReplicationInfo('c-1', text)).toEqual({
      pod: 'c-1',
      reachable: true,
      role: 'replica',
      offset: 118,
      replid: 'abc',
      masterHost: 'c-0.c-headless.ns.svc',
      masterPort: 6379,
      linkUp: false,
      linkDownSinceSeconds: 3,
      syncInProgress: false,
    });
  });

  it('treats a negative link-down time (never connected) as absent, and a sync in progress as such', () => {
    const r = parseReplicationInfo(
      'c-2',
      'role:slave\nmaster_host:h\nmaster_port:1\nmaster_link_status:up\nmaster_sync_in_progress:1\nmaster_link_down_since_seconds:-1\n',
    );
    expect(r).toMatchObject({ linkUp: true, syncInProgress: true, offset: 0 });
    expect(r).not.toHaveProperty('linkDownSinceSeconds');
  });
});

describe('readReplication against a frozen Redis (connections accepted, nothing ever answered)', () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise((res) => server?.close(res) ?? res(undefined));
    server = undefined;
  });

  it('reports it unreachable after the time box, never later (the handshake included)', async () => {
    server = createServer((s) => void sockets.push(s));
    await new Promise<void>((res) => server!.listen(0, '127.0.0.1', res));
    const port = (server.address() as { port: number }).port;
    const ep = { pod: 'c-0', host: '127.0.0.1', port };
    for (const password of [undefined, 'secret']) {
      const started = performance.now();
      const info = await readReplication(ep, { password, timeoutMs: 300 });
      const took = performance.now() - started;
      expect(info).toMatchObject({
        pod: 'c-0',
        reachable: false,
        message: expect.stringMatching(/timed out after 300 ms/),
      });
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(1000);
    }
  });
});
