import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ControlPlane, ControlPlaneOptions } from './control-plane.js';
import { apiRecords, startClusterDns } from './node-dns.js';
import { buildLocalImage, LOCAL_IMAGES, pauseImage, redisImage, type LocalImageSpec } from './node-images.js';
import { freePort, waitFor } from './ports.js';
import {
  logTail,
  progressLog,
  removeTempDir,
  repoRoot,
  spawnManaged,
  terminate,
  trackTempDir,
  waitForProcess,
  type ManagedProcess,
} from './tools.js';

const run = promisify(execFile);

/**
 * The local node's network. Nothing here may reach another machine:
 * - pods get a link-local IPv4 and an IPv6 ULA address (the API server rejects link-local endpoint addresses,
 *   so the ULA one is the primary); the node's InternalIP is the bridge's ULA address;
 * - the Service range is routed `unreachable` on the host (kube-proxy DNATs served ClusterIPs before routing,
 *   so pods reach them; nothing unserved is ever sent to the default route);
 * - a guard nft table drops anything from the pod or Service ranges, or to the Service range, that would leave
 *   by an interface other than the bridge or loopback;
 * - pods and the node's own processes resolve names only through the node's DNS (node-dns.ts), which answers
 *   cluster names and forwards nothing.
 */
export const LOCAL_NODE_NETWORK = {
  nodeName: 'ripplecache-e2e-node',
  bridge: 'rcnode0',
  nodeIp: 'fd00:10:244::1',
  podCidr6: 'fd00:10:244::/64',
  podCidr4: '169.254.100.0/24',
  gateway4: '169.254.100.1',
  serviceCidr: 'fd00:96::/112',
  firstServiceIp: 'fd00:96::1',
  guardTable: 'ripplecache-node-guard',
  clusterDomain: 'cluster.local',
} as const;
const NET = LOCAL_NODE_NETWORK;

/** Host paths the kubelet, containerd and the CNI plugins use regardless of their configuration. */
const HARD_CODED_PATHS = ['/run/containerd', '/var/lib/cni', '/var/lib/kubelet', '/var/log/containers'];
/** Global sysctls the kubelet and the bridge plugin write; inside the node's mount namespace they are files. */
const CONTAINED_SYSCTLS = [
  'kernel/panic',
  'kernel/panic_on_oops',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
];

/** Which of HARD_CODED_PATHS the running node created (removed at stop; read after a killed run). */
const CREATED_DIRS_FILE = '/run/ripplecache-e2e-node.created-dirs';

function removeEmptyDir(p: string): void {
  try {
    rmdirSync(p);
  } catch {
    /* not empty (or gone): leave it, the snapshot test will say so */
  }
}

/**
 * Control-plane options a local node needs: an IPv6 ULA Service range (see LOCAL_NODE_NETWORK); the node IP
 * as the API server's advertised address, so that the `kubernetes` Service leads pods to the API server
 * (through kube-proxy to `[node IP]:<API port>`, which the node forwards to the API server on 127.0.0.1: it
 * listens on no other address); and `--enable-aggregator-routing`, so that the API server calls webhooks
 * (and aggregated APIs) on their Service's endpoint IPs: a ClusterIP is routed `unreachable` on the host and
 * kube-proxy's DNAT never sees a connection the host's routing refused.
 */
export function controlPlaneOptionsForLocalNode(): ControlPlaneOptions {
  return {
    serviceCidr: { cidr: NET.serviceCidr, firstIp: NET.firstServiceIp },
    advertiseAddress: NET.nodeIp,
    apiserverArgs: ['--enable-aggregator-routing=true'],
  };
}

/**
 * Forwards TCP `[host]:port` to `127.0.0.1:port` (the API server) until closed: the API server's address
 * on the node's bridge, the `kubernetes` Service's endpoint. Bound to the bridge's address only.
 */
async function startApiForwarder(host: string, port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Whether this machine can run the local node, and if not why: root, Linux, cgroup v1 or v2 mounted, and the
 * commands the harness uses. `make e2e-local` and `.ci/run` skip with this reason.
 */
export function localNodeSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (kubelet, containerd, runc, nft, ip)' };
  for (const cmd of ['ip', 'nft', 'unshare', 'nsenter', 'mount', 'setpriv', 'ldd', 'tar']) {
    if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, cmd))))
      return { ok: false, reason: `needs the ${cmd} command (scripts/ensure-tools.sh installs nftables)` };
  }
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers'))
    return { ok: false, reason: 'no cgroup hierarchy under /sys/fs/cgroup' };
  if (!existsSync('/proc/sys/net/bridge') && !existsSync('/sys/module/br_netfilter'))
    return { ok: false, reason: 'needs the br_netfilter module (Services on the bridge are bridged after DNAT)' };
  return { ok: true };
}

let toolsDir: Promise<string> | undefined;

/** The directory tools/node/build.sh printed (bin/, cni-bin/); a no-op when its cache is warm. */
export function nodeToolsDir(): Promise<string> {
  toolsDir ??= (async () => {
    const fromEnv = process.env.RIPPLECACHE_NODE_TOOLS;
    if (fromEnv) return fromEnv;
    const child = spawn('bash', [join(repoRoot, 'tools/node/build.sh')], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    const last = out.trim().split('\n').pop()?.trim() ?? '';
    if (code !== 0 || last === '') throw new Error(`tools/node/build.sh failed (exit code ${code})`);
    return last;
  })().catch((err: unknown) => {
    toolsDir = undefined;
    throw err;
  });
  return toolsDir;
}

/** A real kubelet + containerd + runc + kube-proxy + kube-scheduler next to a harness control plane. */
export interface LocalNode {
  readonly name: string;
  readonly dir: string;
  readonly toolsDir: string;
  /** The images imported into the node's containerd, by role. */
  readonly images: typeof LOCAL_IMAGES;
  /** The resolv.conf given to the kubelet (and bind-mounted over /etc/resolv.conf inside the node). */
  readonly resolvConfPath: string;
  /** PIDs of the node's long-running processes (holder, containerd, kubelet, kube-scheduler, kube-proxy). */
  pids(): number[];
  /**
   * A command prefix that runs a host process inside the node's mount namespace, where /etc/resolv.conf names
   * only the node's DNS: a process run with it (e.g. the operator) resolves `*.svc` names to pod IPs. It runs
   * in `cwd` (default: the repository root).
   */
  hostCommandPrefix(cwd?: string): string[];
  /** Builds (from host binaries) and imports one more image. */
  importImage(spec: LocalImageSpec): Promise<void>;
  /** Runs `ctr -n k8s.io <args>` against the node's containerd. */
  ctr(args: string[]): Promise<string>;
  /** Stops everything and restores the machine (processes, bridge, nft tables, routes, cgroups, mounts, dirs). */
  stop(): Promise<void>;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
}
async function shQuiet(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args).catch(() => undefined);
}

function kubeconfigJson(server: string, caPem: string, cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: 'user', user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'user' } }],
    'current-context': 'local',
  });
}

/** The admin credentials of a harness kubeconfig (JSON, written by control-plane.ts). */
function adminTls(cp: ControlPlane): { ca: string; cert: string; key: string } {
  const kc = JSON.parse(readFileSync(cp.kubeconfigPath, 'utf8')) as {
    users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
  };
  const u = kc.users[0]!.user;
  const d = (s: string) => Buffer.from(s, 'base64').toString('utf8');
  return { ca: cp.caCert, cert: d(u['client-certificate-data']), key: d(u['client-key-data']) };
}

function apiGet(cp: ControlPlane, path: string): Promise<{ items: unknown[] }> {
  const tls = adminTls(cp);
  return new Promise((resolve, reject) => {
    const req = request(`${cp.server}${path}`, { ...tls, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        else resolve(JSON.parse(body) as { items: unknown[] });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** True when an HTTPS health endpoint with a self-signed certificate answers 200. */
function insecureHealthz(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 3_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Every cgroup directory named `name` directly under a hierarchy's root (v1 controllers and unified). */
function topLevelCgroups(name: string): string[] {
  const root = '/sys/fs/cgroup';
  const dirs: string[] = [];
  if (existsSync(join(root, 'cgroup.controllers'))) {
    if (existsSync(join(root, name))) dirs.push(join(root, name));
    return dirs;
  }
  for (const h of readdirSync(root)) {
    const d = join(root, h, name);
    if (existsSync(d)) dirs.push(d);
  }
  return dirs;
}

/** Depth-first list of the cgroup directories under `dir` (children before parents). */
function cgroupTree(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) out.push(...cgroupTree(join(dir, e.name)));
  out.push(dir);
  return out;
}

function pidsOfCgroups(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const top of dirs) {
    if (!existsSync(top)) continue;
    for (const d of cgroupTree(top)) {
      try {
        for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
      } catch {
        /* gone meanwhile */
      }
    }
  }
  return [...pids];
}

function mountNamespace(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** PIDs of the processes in mount namespace `ns` (the node's processes and the shims they started). */
function pidsInMountNamespace(ns: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    if (mountNamespace(Number(e)) === ns) pids.push(Number(e));
  }
  return pids;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Starts the node next to `cp` (which must have been started with `controlPlaneOptionsForLocalNode()`): checks
 * that the machine allows it, sets up the bridge, the guard table and the Service route, a private mount
 * namespace holding the node's sysctl writes and hard-coded paths, containerd with the local images, the
 * kubelet (until its Node is Ready), kube-scheduler, kube-proxy (nftables) and the node's DNS. On any failure
 * everything started so far is undone before the error is thrown.
 */
export async function startLocalNode(cp: ControlPlane): Promise<LocalNode> {
  const support = localNodeSupport();
  if (!support.ok) throw new Error(`the local node cannot run here: ${support.reason}`);
  const log = progressLog('node');
  const tools = await nodeToolsDir();
  const bin = (n: string) => join(tools, 'bin', n);
  const dir = await mkdtemp(join(tmpdir(), 'ripplecache-node-'));
  trackTempDir(dir);
  const procs: ManagedProcess[] = [];
  const undo: (() => Promise<void> | void)[] = [];
  let holder: ManagedProcess | undefined;
  let holderNs: string | undefined;
  let dns: { close(): Promise<void> } | undefined;
  const sock = join(dir, 'containerd/containerd.sock');

  // Set once the bridge (the machine-wide lock) is ours: only then may teardown touch machine-wide state.
  let ownsMachine = false;
  const teardown = async () => {
    const stopLog = progressLog('node stop');
    if (!ownsMachine) {
      removeTempDir(dir, 'node');
      return;
    }
    if (dns) await dns.close().catch(() => undefined);
    // The API-facing processes first, so that nothing restarts containers while they are being killed.
    for (const p of [...procs].reverse()) await terminate(p, 'SIGTERM', 5_000);
    // Shims and anything else left in the node's namespace, then every container process (pod cgroups).
    for (let i = 0; i < 20; i++) {
      const left = [
        ...(holderNs ? pidsInMountNamespace(holderNs).filter((p) => p !== holder?.child.pid) : []),
        ...pidsOfCgroups(topLevelCgroups('kubepods')),
      ];
      if (left.length === 0) break;
      left.forEach(kill);
      await new Promise((r) => setTimeout(r, 250));
    }
    // The holder last: its namespace, and with it every mount the node made, go away with it.
    if (holder) await terminate(holder, 'SIGKILL', 1_000);
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (err) {
        stopLog(`clean-up step failed: ${(err as Error).message}`);
      }
    }
    // Pod cgroups: rmdir depth-first, retrying while the last processes exit.
    await waitFor(
      'the kubepods cgroups to be removed',
      () => {
        for (const top of topLevelCgroups('kubepods')) {
          for (const d of cgroupTree(top)) {
            try {
              rmdirSync(d);
            } catch {
              /* busy: retry */
            }
          }
        }
        return Promise.resolve(topLevelCgroups('kubepods').length === 0);
      },
      20_000,
      250,
    ).catch((err: unknown) => stopLog((err as Error).message));
    // Pod network namespaces go with their last process; wait until their veths have left the host.
    await waitFor(
      'the pods’ veth interfaces to disappear',
      async () => !(await sh('ip', ['-o', 'link', 'show', 'type', 'veth'])).includes(`master ${NET.bridge}`),
      10_000,
      250,
    ).catch(() => undefined);
    removeTempDir(dir, 'node');
    stopLog('node stopped');
  };

  try {
    // --- network: bridge (also the machine-wide lock: one node per machine), guard, Service route ---------
    if (existsSync(`/sys/class/net/${NET.bridge}`)) await cleanUpAfterACrashedNode(tools, log);
    try {
      await sh('ip', ['link', 'add', NET.bridge, 'type', 'bridge']);
    } catch (err) {
      throw new Error(
        `cannot create bridge ${NET.bridge} (another local node running on this machine?): ${(err as Error).message}`,
        { cause: err },
      );
    }
    ownsMachine = true;
    undo.push(() => shQuiet('ip', ['link', 'del', NET.bridge]));
    await sh('ip', ['addr', 'add', `${NET.nodeIp}/64`, 'dev', NET.bridge, 'nodad']);
    await sh('ip', ['addr', 'add', `${NET.gateway4}/24`, 'dev', NET.bridge]);
    await sh('ip', ['link', 'set', NET.bridge, 'up']);
    await sh('ip', ['-6', 'route', 'add', 'unreachable', NET.serviceCidr]);
    undo.push(() => shQuiet('ip', ['-6', 'route', 'del', 'unreachable', NET.serviceCidr]));
    const guard = [
      `table inet ${NET.guardTable} {`,
      '  chain postrouting {',
      '    type filter hook postrouting priority 0; policy accept;',
      `    ip6 saddr { ${NET.podCidr6}, ${NET.serviceCidr} } oifname != { "${NET.bridge}", "lo" } counter drop`,
      `    ip6 daddr ${NET.serviceCidr} oifname != { "${NET.bridge}", "lo" } counter drop`,
      `    ip saddr ${NET.podCidr4} oifname != { "${NET.bridge}", "lo" } counter drop`,
      '  }',
      '}',
    ].join('\n');
    await writeFile(join(dir, 'guard.nft'), `${guard}\n`);
    undo.push(() => shQuiet('nft', ['delete', 'table', 'inet', NET.guardTable]));
    await sh('nft', ['-f', join(dir, 'guard.nft')]);
    undo.push(async () => {
      await shQuiet('nft', ['delete', 'table', 'ip', 'kube-proxy']);
      await shQuiet('nft', ['delete', 'table', 'ip6', 'kube-proxy']);
    });
    log(`bridge ${NET.bridge} (${NET.nodeIp}), guard table, Service range ${NET.serviceCidr} unreachable`);
    // The `kubernetes` Service's endpoint (controlPlaneOptionsForLocalNode): [node IP]:<API port>.
    const apiPort = Number(new URL(cp.server).port);
    const apiForwarder = await startApiForwarder(NET.nodeIp, apiPort);
    undo.push(() => apiForwarder.close());
    log(`API server reachable from pods at [${NET.nodeIp}]:${apiPort} (kubernetes Service ${NET.firstServiceIp}:443)`);

    // --- the private mount namespace ----------------------------------------------------------------------
    // The mountpoints the node needs on the host; the ones made here are listed in CREATED_DIRS_FILE too, so
    // that cleaning up after a killed run knows which to remove.
    const created = HARD_CODED_PATHS.filter((p) => !existsSync(p));
    if (created.length > 0) {
      await writeFile(CREATED_DIRS_FILE, `${created.join('\n')}\n`);
      undo.push(() => rmSync(CREATED_DIRS_FILE, { force: true }));
    }
    for (const p of created) {
      await mkdir(p, { recursive: true });
      undo.push(() => removeEmptyDir(p));
    }
    holder = spawnManaged(
      'node-holder',
      'unshare',
      ['--mount', '--propagation', 'private', '--', 'sleep', 'infinity'],
      {
        logPath: join(dir, 'holder.log'),
      },
    );
    const hostNs = mountNamespace('self');
    await waitFor(
      'the node’s mount namespace',
      () => Promise.resolve(holder?.child.pid !== undefined && (mountNamespace(holder.child.pid) ?? hostNs) !== hostNs),
      10_000,
      50,
    );
    const holderPid = holder.child.pid!;
    holderNs = mountNamespace(holderPid);
    const inNs = (cmd: string, args: string[]) => sh('nsenter', ['-t', String(holderPid), '-m', '--', cmd, ...args]);
    const resolvConfPath = join(dir, 'resolv.conf');
    await writeFile(resolvConfPath, `nameserver ${NET.nodeIp}\noptions ndots:1 timeout:1 attempts:2\n`);
    const script = ['set -eu'];
    await mkdir(join(dir, 'sysctl'));
    for (const s of CONTAINED_SYSCTLS) {
      const f = join(dir, 'sysctl', s.replace(/\//g, '_'));
      await writeFile(f, await readFile(join('/proc/sys', s), 'utf8'));
      script.push(`mount --bind ${f} /proc/sys/${s}`);
    }
    for (const p of HARD_CODED_PATHS) {
      const private_ = join(dir, 'host', p.replace(/\//g, '_'));
      await mkdir(private_, { recursive: true });
      script.push(`mount --bind ${private_} ${p}`);
    }
    script.push(`mount --bind ${resolvConfPath} /etc/resolv.conf`);
    await inNs('sh', ['-c', script.join('\n')]);
    log('private mount namespace ready (sysctls, hard-coded paths, resolv.conf)');
    const spawnInNs = (name: string, cmd: string, args: string[]) => {
      const p = spawnManaged(name, 'nsenter', ['-t', String(holderPid), '-m', '--', cmd, ...args], {
        logPath: join(dir, `${name}.log`),
        cwd: dir,
        env: { ...process.env, PATH: `${join(tools, 'bin')}:${process.env.PATH ?? ''}` },
      });
      procs.push(p);
      return p;
    };

    // --- containerd ---------------------------------------------------------------------------------------
    const containerdToml = `version = 3
root = '${dir}/containerd/root'
state = '${dir}/containerd/state'
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${LOCAL_IMAGES.pause}'
  [plugins.'io.containerd.cri.v1.runtime']
    netns_mounts_under_state_dir = true
    # This VM's root lacks CAP_SYS_RESOURCE: a negative oom_score_adj would fail every sandbox.
    restrict_oom_score_adj = true
    enable_selinux = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '${bin('runc')}'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['${join(tools, 'cni-bin')}']
      conf_dir = '${dir}/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
  [plugins.'io.containerd.internal.v1.opt']
    path = '${dir}/opt'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.server.v1.grpc']
    address = '${sock}'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '${sock}.ttrpc'
`;
    await mkdir(join(dir, 'cni/net.d'), { recursive: true });
    await writeFile(join(dir, 'containerd.toml'), containerdToml);
    await writeFile(
      join(dir, 'cni/net.d/10-ripplecache.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'ripplecache',
        plugins: [
          {
            type: 'bridge',
            bridge: NET.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              dataDir: join(dir, 'cni/ipam'),
              ranges: [
                [{ subnet: NET.podCidr4, gateway: NET.gateway4 }],
                [{ subnet: NET.podCidr6, gateway: NET.nodeIp }],
              ],
              routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
            },
          },
          { type: 'loopback' },
        ],
      }),
    );
    const containerd = spawnInNs('containerd', bin('containerd'), ['--config', join(dir, 'containerd.toml')]);
    const ctr = (args: string[]) => inNs(bin('ctr'), ['--address', sock, '-n', 'k8s.io', ...args]);
    await waitForProcess(
      containerd,
      'containerd',
      async () => (await ctr(['version'])).includes('Server'),
      30_000,
      200,
    );
    log('containerd ready');
    const importImage = async (spec: LocalImageSpec) => {
      const tar = await buildLocalImage(spec, dir);
      await ctr(['images', 'import', '--local', tar]);
    };
    await Promise.all([importImage(pauseImage(bin('pause'))), importImage(redisImage())]);
    log(`images imported: ${LOCAL_IMAGES.pause}, ${LOCAL_IMAGES.redis}`);

    // --- kubelet ------------------------------------------------------------------------------------------
    const [kubeletClient, kubeletServing] = await Promise.all([
      cp.issueCertificate({
        commonName: `system:node:${NET.nodeName}`,
        organizations: ['system:nodes'],
        usage: 'client',
      }),
      cp.issueCertificate({
        commonName: NET.nodeName,
        usage: 'server',
        ipAddresses: [NET.nodeIp],
        dnsNames: [NET.nodeName],
      }),
    ]);
    await writeFile(join(dir, 'ca.crt'), cp.caCert);
    await writeFile(join(dir, 'kubelet.crt'), kubeletServing.cert);
    await writeFile(join(dir, 'kubelet.key'), kubeletServing.key, { mode: 0o600 });
    await writeFile(
      join(dir, 'kubelet.kubeconfig'),
      kubeconfigJson(cp.server, cp.caCert, kubeletClient.cert, kubeletClient.key),
      { mode: 0o600 },
    );
    const healthzPort = await freePort();
    const kubeletYaml = {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false,
      failSwapOn: false,
      cgroupDriver: 'cgroupfs',
      containerRuntimeEndpoint: `unix://${sock}`,
      staticPodPath: join(dir, 'manifests'),
      podLogsDir: join(dir, 'pod-logs'),
      volumePluginDir: join(dir, 'volume-plugins'),
      address: NET.nodeIp,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort,
      tlsCertFile: join(dir, 'kubelet.crt'),
      tlsPrivateKeyFile: join(dir, 'kubelet.key'),
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: join(dir, 'ca.crt') },
      },
      authorization: { mode: 'Webhook' },
      // The writes land in the namespace's files (CONTAINED_SYSCTLS), not in the host's kernel settings.
      protectKernelDefaults: false,
      resolvConf: resolvConfPath,
      clusterDNS: [NET.nodeIp],
      clusterDomain: NET.clusterDomain,
      evictionHard: {
        'memory.available': '100Mi',
        'nodefs.available': '1%',
        'imagefs.available': '1%',
        'nodefs.inodesFree': '1%',
      },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      maxPods: 60,
      rotateCertificates: false,
      serializeImagePulls: false,
    };
    await mkdir(join(dir, 'manifests'));
    await writeFile(join(dir, 'kubelet.yaml'), JSON.stringify(kubeletYaml, null, 2));
    const kubelet = spawnInNs('kubelet', bin('kubelet'), [
      '--config',
      join(dir, 'kubelet.yaml'),
      '--kubeconfig',
      join(dir, 'kubelet.kubeconfig'),
      '--root-dir',
      join(dir, 'kubelet'),
      '--hostname-override',
      NET.nodeName,
      '--node-ip',
      NET.nodeIp,
    ]);
    await waitForProcess(
      kubelet,
      `Node ${NET.nodeName} Ready`,
      async () => {
        const r = await cp.kubectl([
          'get',
          'node',
          NET.nodeName,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ]);
        return r.stdout.trim() === 'True';
      },
      90_000,
      500,
    );
    log(`kubelet ready: Node ${NET.nodeName}`);

    // --- kube-scheduler, kube-proxy, DNS -------------------------------------------------------------------
    const schedulerPort = await freePort();
    const scheduler = spawnInNs('kube-scheduler', bin('kube-scheduler'), [
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--authentication-kubeconfig=${cp.kubeconfigPath}`,
      `--authorization-kubeconfig=${cp.kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
    ]);
    const [proxyHealth, proxyMetrics] = [await freePort(), await freePort()];
    await writeFile(
      join(dir, 'kube-proxy.yaml'),
      JSON.stringify({
        apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
        kind: 'KubeProxyConfiguration',
        mode: 'nftables',
        clientConnection: { kubeconfig: cp.kubeconfigPath },
        hostnameOverride: NET.nodeName,
        clusterCIDR: `${NET.podCidr6},${NET.podCidr4}`,
        healthzBindAddress: `127.0.0.1:${proxyHealth}`,
        metricsBindAddress: `127.0.0.1:${proxyMetrics}`,
        nodePortAddresses: [`${NET.nodeIp}/128`],
        // 0: leave the machine's conntrack sysctls alone.
        conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      }),
    );
    const proxy = spawnInNs('kube-proxy', bin('kube-proxy'), ['--config', join(dir, 'kube-proxy.yaml')]);
    dns = await startClusterDns(
      NET.nodeIp,
      apiRecords((path) => apiGet(cp, path)),
    );
    await waitForProcess(
      proxy,
      'kube-proxy healthz',
      async () => (await fetch(`http://127.0.0.1:${proxyHealth}/healthz`)).ok,
      60_000,
      500,
    );
    await waitForProcess(
      scheduler,
      'kube-scheduler healthz',
      () => insecureHealthz(`https://127.0.0.1:${schedulerPort}/healthz`),
      60_000,
      500,
    );
    log('kube-scheduler, kube-proxy (nftables) and the node DNS ready');

    let stopped = false;
    return {
      name: NET.nodeName,
      dir,
      toolsDir: tools,
      images: LOCAL_IMAGES,
      resolvConfPath,
      pids: () => [holderPid, ...procs.map((p) => p.child.pid ?? 0)].filter((p) => p > 0),
      hostCommandPrefix: (cwd = repoRoot) => ['nsenter', '-t', String(holderPid), '-m', `--wd=${cwd}`, '--'],
      importImage,
      ctr,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await teardown();
      },
    };
  } catch (err) {
    log(`start-up failed (set RIPPLECACHE_KEEP_TMP=1 to keep the logs in ${dir}): ${(err as Error).message}`);
    for (const p of procs) if (p.exited) log(`${p.name} exited; last lines:\n${logTail(p.logPath, 20)}`);
    await teardown();
    throw err;
  }
}

/**
 * A test run killed with SIGKILL cannot tear its node down: the parent-death signal stops the node's own
 * processes, but the shims, the containers, the bridge, the nft tables, the route and the pod cgroups stay.
 * When the bridge exists but no kubelet or containerd of ours runs, this removes all of that, so that the
 * next run starts clean. With a live node it does nothing (the caller then fails on the bridge).
 */
async function cleanUpAfterACrashedNode(tools: string, log: (m: string) => void): Promise<void> {
  const ours = (): { pid: number; exe: string }[] => {
    const found: { pid: number; exe: string }[] = [];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const exe = readlinkSync(`/proc/${e}/exe`);
        if (exe.startsWith(`${tools}/`)) found.push({ pid: Number(e), exe });
      } catch {
        /* gone or kernel thread */
      }
    }
    return found;
  };
  if (ours().some((p) => /\/(kubelet|containerd)$/.test(p.exe))) return;
  log(`bridge ${NET.bridge} exists but no node of ours runs: cleaning up after a crashed run`);
  for (let i = 0; i < 20; i++) {
    const left = [...ours().map((p) => p.pid), ...pidsOfCgroups(topLevelCgroups('kubepods'))];
    if (left.length === 0) break;
    left.forEach(kill);
    await new Promise((r) => setTimeout(r, 250));
  }
  await shQuiet('ip', ['link', 'del', NET.bridge]);
  await shQuiet('ip', ['-6', 'route', 'del', 'unreachable', NET.serviceCidr]);
  for (const [family, table] of [
    ['inet', NET.guardTable],
    ['ip', 'kube-proxy'],
    ['ip6', 'kube-proxy'],
  ] as const)
    await shQuiet('nft', ['delete', 'table', family, table]);
  for (let i = 0; i < 40 && topLevelCgroups('kubepods').length > 0; i++) {
    for (const top of topLevelCgroups('kubepods')) {
      for (const d of cgroupTree(top)) {
        try {
          rmdirSync(d);
        } catch {
          /* busy: retry */
        }
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (existsSync(CREATED_DIRS_FILE)) {
    for (const p of readFileSync(CREATED_DIRS_FILE, 'utf8').split('\n'))
      if (HARD_CODED_PATHS.includes(p)) removeEmptyDir(p);
    rmSync(CREATED_DIRS_FILE, { force: true });
  }
}

/** What a local node could leave behind on the machine; compared before and after a run. */
export interface MachineSnapshot {
  links: string[];
  nftTables: string[];
  routes: string[];
  mounts: string[];
  cgroups: string[];
  sysctls: Record<string, string>;
  paths: string[];
  nodeProcesses: string[];
}

/** Takes a MachineSnapshot. `toolsDir` is where the node binaries live: any process running one counts. */
export async function machineSnapshot(toolsDir: string): Promise<MachineSnapshot> {
  const links = (await sh('ip', ['-o', 'link', 'show']))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!);
  const nftTables = (await sh('nft', ['list', 'tables'])).split('\n').filter(Boolean);
  const routes = [
    ...(await sh('ip', ['route', 'show', 'table', 'all'])).split('\n'),
    ...(await sh('ip', ['-6', 'route', 'show', 'table', 'all'])).split('\n'),
  ].filter(Boolean);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!);
  const cgroups: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h);
    if (!statSync(d).isDirectory()) continue;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) cgroups.push(`${h}/${e.name}`);
  }
  const sysctls: Record<string, string> = {};
  for (const s of [
    ...CONTAINED_SYSCTLS,
    'net/netfilter/nf_conntrack_max',
    'net/ipv4/conf/all/route_localnet',
    'net/bridge/bridge-nf-call-iptables',
    'net/bridge/bridge-nf-call-ip6tables',
  ]) {
    try {
      sysctls[s] = readFileSync(join('/proc/sys', s), 'utf8').trim();
    } catch {
      sysctls[s] = '(absent)';
    }
  }
  const paths = [
    ...HARD_CODED_PATHS,
    '/var/log/pods',
    '/etc/cni',
    '/opt/cni',
    '/var/lib/containerd',
    '/run/netns',
  ].filter((p) => existsSync(p));
  const nodeProcesses: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const exe = readlinkSync(`/proc/${e}/exe`);
      if (exe.startsWith(toolsDir)) nodeProcesses.push(`${e} ${exe}`);
    } catch {
      /* gone or kernel thread */
    }
  }
  return { links, nftTables, routes, mounts, cgroups: cgroups.sort(), sysctls, paths, nodeProcesses };
}
