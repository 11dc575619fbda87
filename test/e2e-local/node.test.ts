import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import {
  LOCAL_NODE_NETWORK as NET,
  controlPlaneOptionsForLocalNode,
  machineSnapshot,
  nodeToolsDir,
  startLocalNode,
  type LocalNode,
  type MachineSnapshot,
} from '../harness/node.js';
import { waitFor } from '../harness/ports.js';

const run = promisify(execFile);
const sh = async (cmd: string, args: string[]) => (await run(cmd, args)).stdout;

// The local node's network safety rules, and a teardown that leaves the machine exactly as it found it.
describe('local node: network safety and clean teardown', () => {
  let cp: ControlPlane;
  let node: LocalNode | undefined;
  let before: MachineSnapshot;
  let tools: string;

  beforeAll(async () => {
    tools = await nodeToolsDir();
    before = await machineSnapshot(tools);
    cp = await startControlPlane(controlPlaneOptionsForLocalNode());
    node = await startLocalNode(cp);
  });
  afterAll(async () => {
    await node?.stop();
    await cp?.stop();
  });

  it('routes the Service range unreachable on the host', async () => {
    const route = await sh('ip', ['-6', 'route', 'show', NET.serviceCidr]);
    expect(route).toMatch(new RegExp(`^unreachable ${NET.serviceCidr.replace(/\//, '\\/')}`, 'm'));
    // A connection from the host to an unserved Service IP fails at once: it is never sent anywhere.
    const out = await run('ip', ['-6', 'route', 'get', 'fd00:96::99']).catch((e: { stderr: string }) => ({
      stdout: '',
      stderr: e.stderr,
    }));
    expect(`${out.stdout}${'stderr' in out ? out.stderr : ''}`).toMatch(/unreachable|No route to host/);
  });

  it('drops anything from the pod or Service ranges that is not for the bridge or loopback', async () => {
    const esc = (x: string) => x.replace(/[/.]/g, (c) => `\\${c}`);
    const notBridge = `oifname != \\{ "lo", "${NET.bridge}" \\} counter packets (\\d+) bytes \\d+ drop`;
    const rules = {
      podOrServiceSource6: new RegExp(`ip6 saddr \\{ ${esc(NET.podCidr6)}, ${esc(NET.serviceCidr)} \\} ${notBridge}`),
      serviceDestination6: new RegExp(`ip6 daddr ${esc(NET.serviceCidr)} ${notBridge}`),
      podSource4: new RegExp(`ip saddr ${esc(NET.podCidr4)} ${notBridge}`),
    };
    const counters = async () => {
      const table = await sh('nft', ['list', 'table', 'inet', NET.guardTable]);
      expect(table).toContain('hook postrouting');
      return Object.fromEntries(
        Object.entries(rules).map(([k, re]) => [k, Number(re.exec(table)?.[1] ?? Number.NaN)]),
      ) as Record<keyof typeof rules, number>;
    };
    const initial = await counters();
    for (const v of Object.values(initial)) expect(v).not.toBeNaN();

    // A real packet from the pod range towards another interface: an empty bridge of the test's own (it has
    // no port, so even without the rule nothing would leave the machine). The rule's counter must count it.
    const dummy = 'rcguardtest0';
    await sh('ip', ['link', 'add', dummy, 'type', 'bridge']);
    try {
      await sh('ip', ['link', 'set', dummy, 'up']);
      await sh('ip', ['-6', 'route', 'add', 'fd00:dead:beef::/64', 'dev', dummy]);
      // A static neighbour: the datagram goes out at once, without neighbour discovery.
      await sh('ip', ['-6', 'neigh', 'add', 'fd00:dead:beef::1', 'lladdr', '02:00:00:00:00:01', 'dev', dummy]);
      const sock = createSocket('udp6');
      await new Promise<void>((resolve, reject) => sock.bind(0, NET.nodeIp, resolve).once('error', reject));
      await new Promise<void>((resolve) => sock.send('x', 9, 'fd00:dead:beef::1', () => resolve()));
      sock.close();
      await waitFor(
        'the guard rule to count the packet',
        async () => (await counters()).podOrServiceSource6 > initial.podOrServiceSource6,
        5_000,
        100,
      );
    } finally {
      await run('ip', ['link', 'del', dummy]).catch(() => undefined);
    }
  });

  it('gives the kubelet a resolv.conf with no outside resolver, and pods the node DNS as cluster DNS', () => {
    const resolv = readFileSync(node!.resolvConfPath, 'utf8');
    const servers = [...resolv.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
    expect(servers).toEqual([NET.nodeIp]);
    const kubelet = JSON.parse(readFileSync(`${node!.dir}/kubelet.yaml`, 'utf8')) as {
      resolvConf: string;
      clusterDNS: string[];
    };
    expect(kubelet.resolvConf).toBe(node!.resolvConfPath);
    expect(kubelet.clusterDNS).toEqual([NET.nodeIp]);
  });

  it('has the API server reach the kubelet by InternalIP, the node IP on the bridge', async () => {
    const apiserver = (await sh('pgrep', ['-f', `kube-apiserver.*${cp.dir}`])).trim().split('\n')[0]!;
    const cmdline = readFileSync(`/proc/${apiserver}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain('--kubelet-preferred-address-types=InternalIP');
    const addrs = (await cp.kubectl(['get', 'node', NET.nodeName, '-o', 'jsonpath={.status.addresses}'])).stdout;
    expect(JSON.parse(addrs)).toEqual(expect.arrayContaining([{ type: 'InternalIP', address: NET.nodeIp }]));
    // kubectl logs goes API server -> kubelet: it works only if the API server found the kubelet by that IP.
    expect(
      (
        await cp.kubectl([
          'run',
          'hello',
          '--image',
          node!.images.redis,
          '--image-pull-policy=Never',
          '--restart=Never',
          '--command',
          '--',
          'redis-server',
          '--version',
        ])
      ).code,
    ).toBe(0);
    await waitFor(
      'pod hello to succeed',
      async () => (await cp.kubectl(['get', 'pod', 'hello', '-o', 'jsonpath={.status.phase}'])).stdout === 'Succeeded',
      60_000,
      500,
    );
    expect((await cp.kubectl(['logs', 'hello'])).stdout).toMatch(/Redis server v=/);
  });

  it('leads the kubernetes Service to the node IP, where the API server is forwarded; it listens on loopback only', async () => {
    const apiPort = Number(new URL(cp.server).port);
    const slices = JSON.parse(
      (
        await cp.kubectl([
          'get',
          'endpointslices',
          '-n',
          'default',
          '-l',
          'kubernetes.io/service-name=kubernetes',
          '-o',
          'json',
        ])
      ).stdout,
    ) as { items: { endpoints: { addresses: string[] }[]; ports: { port: number }[] }[] };
    expect(slices.items.flatMap((s) => s.endpoints.flatMap((e) => e.addresses))).toEqual([NET.nodeIp]);
    expect(slices.items.flatMap((s) => s.ports.map((p) => p.port))).toEqual([apiPort]);
    // Who listens on the API port: the API server on 127.0.0.1, the node's forwarder on the bridge address;
    // nothing on a wildcard or an outside address.
    const listening = (await sh('ss', ['-Hltn', `sport = :${apiPort}`]))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/)[3]);
    expect(listening.sort()).toEqual([`127.0.0.1:${apiPort}`, `[${NET.nodeIp}]:${apiPort}`].sort());
    const apiserver = (await sh('pgrep', ['-f', `kube-apiserver.*${cp.dir}`])).trim().split('\n')[0]!;
    const cmdline = readFileSync(`/proc/${apiserver}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain('--bind-address=127.0.0.1');
    expect(cmdline).toContain(`--advertise-address=${NET.nodeIp}`);
  });

  it('leaves the machine as it found it after stop()', async () => {
    const pids = node!.pids();
    expect(pids.length).toBeGreaterThanOrEqual(5);
    await node!.stop();
    node = undefined;
    for (const pid of pids) expect(() => process.kill(pid, 0), `process ${pid} still running`).toThrow();
    const after = await machineSnapshot(tools);
    expect(after.nodeProcesses).toEqual([]);
    expect(after.links).toEqual(before.links);
    expect(after.nftTables).toEqual(before.nftTables);
    expect(after.routes).toEqual(before.routes);
    expect(after.mounts).toEqual(before.mounts);
    expect(after.cgroups).toEqual(before.cgroups);
    expect(after.sysctls).toEqual(before.sysctls);
    expect(after.paths).toEqual(before.paths);
  });
});
