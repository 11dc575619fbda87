/**
 * Failover on real pods (kubelet, containerd, the real kube-proxy), reconciled by the operator running as a pod
 * from the chart (its sidecar-injection webhook included).
 *
 * 1. A replication CacheCluster of three Redis pods; a writer pod writes through the client Service (its ClusterIP,
 * by DNS name) with `SET` then `WAIT 1 1000` on one connection, as a sidecar with durability replicated
 * acknowledges, and logs each acknowledged write. The primary's redis container is SIGKILLed through the
 * node's containerd: the kubelet restarts it in the same pod (empty, persistence none, as a replica of the
 * placeholder), the operator fails over to the most advanced replica. Asserted: the failover completes, no
 * acknowledged write is lost or older, never two pods labelled primary (sampled), the old primary rejoins as a
 * replica holding the data.
 *
 * 2. Application pods with the webhook-injected sidecar (see the second test's comment): two sidecars, one
 * write-back and one write-through, reaching Redis through the client Service, a PostgreSQL origin on the
 * node's bridge address, the primary's redis container SIGKILLed in several rounds; every key ends in
 * PostgreSQL and in Redis with its last acknowledged value. The apps reach their sidecar only over its Unix
 * sockets on the injected emptyDir (HTTP and RESP).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheCluster,
  cacheClusterYaml,
  type CacheClusterModifier,
  inNamespace,
  withDurability,
  withEviction,
  withImage,
  withReplicas,
  withResources,
  withSidecar,
  withSpec,
  withTopology,
} from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { installOperatorChart, nodeChart, type NodeChart } from '../harness/node-chart.js';
import {
  LOCAL_NODE_NETWORK as NET,
  controlPlaneOptionsForLocalNode,
  startLocalNode,
  type LocalNode,
} from '../harness/node.js';
import { waitFor } from '../harness/ports.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { samplePrimaries } from '../harness/replication.js';

const run = promisify(execFile);
const NS = 'e2e-failover';
const NAME = 'fo';
const WRITES = 300;
const KEYS = 50;

interface Pod {
  metadata: { uid: string; name: string; labels?: Record<string, string> };
  spec?: {
    initContainers?: { name: string; restartPolicy?: string; image: string }[];
    containers: { name: string; env?: { name: string; value?: string }[]; volumeMounts?: VolumeMount[] }[];
    volumes?: { name: string; emptyDir?: Record<string, unknown> }[];
  };
  status: {
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; containerID?: string; ready: boolean; restartCount: number }[];
    initContainerStatuses?: { name: string; ready: boolean; restartCount: number }[];
  };
}
interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

let cp: ControlPlane;
let node: LocalNode;
let chart: NodeChart;
let pgServer: PostgresServer | undefined;

/**
 * A replication CacheCluster in NS on the node's redis image (3 pods, failover after 2 s, small resources),
 * then `more` modifiers.
 */
const replicationOnNode = (name: string, ...more: CacheClusterModifier[]) =>
  cacheCluster(
    name,
    inNamespace(NS),
    // withSpec replaces the spec: first.
    withSpec({ failover: { afterSeconds: 2 } }),
    withImage(node.images.redis),
    withResources({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }),
    withTopology('replication'),
    withReplicas(2),
    ...more,
  );

async function k(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const podReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const getPod = async (name: string) => JSON.parse(await k(['get', 'pod', name, '-n', NS, '-o', 'json'])) as Pod;
const podIp = (p: Pod) => p.status.podIPs?.map((x) => x.ip).find((ip) => ip.includes(':')) ?? '';
async function redisCli(ip: string, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-h', ip, '-p', '6379', ...args], { timeout: 10_000 })).stdout.trim();
}
async function getCc(name = NAME): Promise<any> {
  return JSON.parse(await k(['get', 'cachecluster', name, '-n', NS, '-o', 'json']));
}
async function roleLabels(cluster = NAME): Promise<Record<string, string | undefined>> {
  const list = JSON.parse(
    await k(['get', 'pods', '-n', NS, '-l', `cache.ripplecache.io/cluster=${cluster}`, '-o', 'json']),
  ) as { items: Pod[] };
  return Object.fromEntries(list.items.map((p) => [p.metadata.name, p.metadata.labels?.['cache.ripplecache.io/role']]));
}

/**
 * The writer: SET k<i mod KEYS> <i> then WAIT 1 1000 on one connection through the client Service; a write is
 * acknowledged (and logged `ACK key seq`) only when WAIT answers 1 or more. Stops after WRITES acknowledged
 * writes (or 20000 attempts), then logs DONE and exits (the image has
 * redis-cli, sh and grep only: no sleep, so a refused attempt is retried at once).
 */
const WRITER_SCRIPT = `
i=0; acked=0
while [ "$acked" -lt ${WRITES} ] && [ "$i" -lt 20000 ]; do
  i=$((i+1)); key="k$((i % ${KEYS}))"
  out="$(printf 'SET %s %s\\nWAIT 1 1000\\n' "$key" "$i" | redis-cli -h ${NAME} -p 6379 2>&1)"
  set -- $out
  if [ "\${1:-}" = "OK" ] && [ "\${2:-0}" -ge 1 ] 2>/dev/null; then acked=$((acked+1)); echo "ACK $key $i"; fi
done
echo "DONE $acked $i"
`;

// ---- the second test: application pods with the webhook-injected sidecar ------------------------------------

const SC = 'fs';
/** The third test's peer CacheCluster (issue 17). */
const PEER = 'pb';
const TABLE = 'failover_entries';
/** SIGKILL rounds; RIPPLECACHE_E2E_FAILOVER_ROUNDS=10 runs the ten (about 3 minutes more). */
const ROUNDS = Number(process.env.RIPPLECACHE_E2E_FAILOVER_ROUNDS ?? 3);
const PER_ROUND = 1000;
const SC_KEYS = 1000;
const SC_WORKERS = 16;
/** The app's own port on its pod IP: the test's way in (the sidecar's API is on the pod's loopback and sockets). */
const APP_PORT = 8080;

/**
 * The application (Node, in the sidecar image, which has it): an HTTP server on the pod IP that relays
 * `/v1/...` to the sidecar over its HTTP Unix socket (RIPPLECACHE_HTTP_SOCKET, set by the webhook), status and
 * body as they came (a relay error is 502: not acknowledged); `POST /resp` sends one command (a JSON array of
 * strings) over the RESP Unix socket (RIPPLECACHE_RESP_SOCKET) and answers the parsed reply; `GET /sockets`
 * says what the app container sees at the sockets' paths. It never uses 127.0.0.1:7070.
 */
const APP_SCRIPT = String.raw`
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const HTTP_SOCK = process.env.RIPPLECACHE_HTTP_SOCKET;
const RESP_SOCK = process.env.RIPPLECACHE_RESP_SOCKET;
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
function parse(buf, i) {
  if (i >= buf.length) return undefined;
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return undefined;
  const t = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  if (t === '+') return [{ simple: line }, eol + 2];
  if (t === '-') return [{ error: line }, eol + 2];
  if (t === ':') return [{ integer: Number(line) }, eol + 2];
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return [{ bulk: null }, eol + 2];
    if (buf.length < eol + 4 + n) return undefined;
    return [{ bulk: buf.toString('utf8', eol + 2, eol + 2 + n) }, eol + 4 + n];
  }
  if (t === '*') {
    const n = Number(line);
    const out = [];
    let j = eol + 2;
    for (let k = 0; k < n; k++) {
      const r = parse(buf, j);
      if (!r) return undefined;
      out.push(r[0]);
      j = r[1];
    }
    return [{ array: out }, j];
  }
  return [{ unparsed: buf.toString('utf8', i) }, buf.length];
}
function resp(args) {
  return new Promise((resolve, reject) => {
    const s = net.connect(RESP_SOCK);
    let buf = Buffer.alloc(0);
    let done = false;
    s.setTimeout(10000, () => s.destroy(new Error('RESP timeout')));
    s.on('connect', () =>
      s.write('*' + args.length + '\r\n' + args.map((a) => '$' + Buffer.byteLength(a) + '\r\n' + a + '\r\n').join('')),
    );
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, 0);
      if (r && !done) {
        done = true;
        s.end();
        resolve(r[0]);
      }
    });
    s.on('error', (e) => { if (!done) { done = true; reject(e); } });
    s.on('close', () => { if (!done) { done = true; reject(new Error('RESP connection closed')); } });
  });
}
function send(res, code, obj) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}
http
  .createServer((req, res) => {
    if (req.url === '/resp' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => resp(JSON.parse(body)).then((r) => send(res, 200, r), (e) => send(res, 502, { error: String(e.message || e) })));
      return;
    }
    if (req.url === '/sockets') {
      const out = {};
      for (const [name, p] of [['http', HTTP_SOCK], ['resp', RESP_SOCK]]) {
        try {
          const st = fs.statSync(p);
          out[name] = { path: p, socket: st.isSocket(), mode: (st.mode & 0o777).toString(8) };
        } catch (e) {
          out[name] = { path: p, error: e.code };
        }
      }
      return send(res, 200, out);
    }
    const headers = {};
    for (const h of ['content-type', 'content-length']) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    const up = http.request({ socketPath: HTTP_SOCK, agent, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] || 'application/octet-stream' });
      r.pipe(res);
    });
    up.setTimeout(10000, () => up.destroy(new Error('timeout')));
    up.on('error', (e) => {
      if (!res.headersSent) send(res, 502, { error: 'relay: ' + (e.code || e.message) });
      else res.destroy();
    });
    req.pipe(up);
  })
  .listen(${APP_PORT}, '::', () => console.log('app listening'));
`.replace('${APP_PORT}', String(APP_PORT));

/** An application pod asking the webhook for the sidecar of CacheCluster `cluster`. */
function appPod(name: string, cluster = SC): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, annotations: { 'cache.ripplecache.io/inject': cluster } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: node.images.sidecar,
          imagePullPolicy: 'Never',
          command: ['/nodejs/bin/node', '-e', APP_SCRIPT],
          ports: [{ name: 'app', containerPort: APP_PORT }],
          readinessProbe: { httpGet: { path: '/sockets', port: APP_PORT }, periodSeconds: 1 },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

async function waitReady(name: string): Promise<Pod> {
  let pod: Pod | undefined;
  try {
    await waitFor(
      `pod ${NS}/${name} Ready`,
      async () => {
        const r = await cp.kubectl(['get', 'pod', name, '-n', NS, '-o', 'json']);
        if (r.code !== 0) return false;
        pod = JSON.parse(r.stdout) as Pod;
        return podReady(pod);
      },
      180_000,
      1_000,
    );
  } catch (err) {
    const describe = await cp.kubectl(['describe', 'pod', name, '-n', NS]);
    const logs = await Promise.all(
      ['ripplecache-sidecar', 'app'].map((c) => cp.kubectl(['logs', name, '-n', NS, '-c', c, '--tail', '30'])),
    );
    throw new Error(
      `${(err as Error).message}\n${describe.stdout}\n${logs.map((l) => l.stdout + l.stderr).join('\n---\n')}`,
      { cause: err },
    );
  }
  return pod!;
}

/** PUT through the app at `ip`; the HTTP status, or undefined when the request failed. */
/** The last answer of each (pod IP, status) other than 204, for a failure message. */
const refusalBodies = new Map<string, string>();
async function put(ip: string, key: string, value: string): Promise<number | undefined> {
  try {
    const r = await fetch(`http://[${ip}]:${APP_PORT}/v1/cache/${key}`, {
      method: 'PUT',
      body: value,
      headers: { 'content-type': 'text/plain' },
      signal: AbortSignal.timeout(15_000),
    });
    const body = Buffer.from(await r.arrayBuffer()).toString('utf8');
    if (r.status !== 204) refusalBodies.set(`${ip} ${r.status}`, `${new Date().toISOString()} ${body.slice(0, 300)}`);
    return r.status;
  } catch {
    return undefined;
  }
}

/** One RESP command through the app at `ip`, over the sidecar's RESP Unix socket. */
async function resp(ip: string, args: string[]): Promise<unknown> {
  const r = await fetch(`http://[${ip}]:${APP_PORT}/resp`, {
    method: 'POST',
    body: JSON.stringify(args),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`RESP ${args.join(' ')} through ${ip}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/** The sidecar's metrics, from its metrics listener on the pod IP (port 7071). */
async function metrics(ip: string): Promise<string> {
  const r = await fetch(`http://[${ip}]:7071/metrics`, { signal: AbortSignal.timeout(10_000) });
  return r.text();
}
/** The sum of every series of counter `name` (0 when it has none). */
function sum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(' ').at(-1));
  }
  return total;
}

beforeAll(async () => {
  cp = await startControlPlane(controlPlaneOptionsForLocalNode());
  try {
    node = await startLocalNode(cp);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  // The operator as a pod from the chart (CRD included), so that its webhook injects the sidecar.
  chart = nodeChart(cp);
  await installOperatorChart(cp, node, chart, {
    release: 'rc',
    namespace: 'ripplecache-system',
    set: ['resyncSeconds=2'],
  });
  await k(['create', 'namespace', NS]);
  await k(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted']);
}, 600_000);

afterAll(async () => {
  await node?.stop();
  await pgServer?.stop();
  await cp?.stop();
  chart?.cleanUp();
});

describe('failover on real pods', () => {
  it('the primary container SIGKILLed under acknowledged writes: failover, nothing lost, one primary, rejoin', async () => {
    await k(['apply', '-f', '-'], cacheClusterYaml(replicationOnNode(NAME)));
    await waitFor(
      'fo-0 primary, fo-1 and fo-2 replicas',
      async () => {
        const l = await roleLabels();
        return l['fo-0'] === 'primary' && l['fo-1'] === 'replica' && l['fo-2'] === 'replica';
      },
      180_000,
      1_000,
    );

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const sampler = samplePrimaries(kc.makeApiClient(k8s.CoreV1Api), NS, NAME);
    const writer = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'writer', namespace: NS },
      spec: {
        restartPolicy: 'Never',
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 999,
          runAsGroup: 999,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'writer',
            image: node.images.redis,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', WRITER_SCRIPT],
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    };
    await k(['apply', '-f', '-'], JSON.stringify(writer));
    const logs = async () => (await cp.kubectl(['logs', 'writer', '-n', NS])).stdout;
    const ackCount = async () => (await logs()).split('\n').filter((l) => l.startsWith('ACK ')).length;
    await waitFor('100 acknowledged writes', async () => (await ackCount()) >= 100, 120_000, 500);

    // SIGKILL the primary's redis container: the kubelet restarts it in the same pod.
    const before = await getPod('fo-0');
    const id = before.status.containerStatuses
      ?.find((c) => c.name === 'redis')
      ?.containerID?.replace(/^containerd:\/\//, '');
    expect(id).toBeTruthy();
    await node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id!]);

    await waitFor('a completed failover', async () => (await getCc()).status?.lastFailover !== undefined, 120_000, 500);
    const status = (await getCc()).status;
    expect(status.lastFailover.from).toBe('fo-0');
    expect(['fo-1', 'fo-2']).toContain(status.primary);
    await waitFor('the writer to finish', async () => /^DONE /m.test(await logs()), 120_000, 1_000);
    const out = await logs();
    const done = /^DONE (\d+) (\d+)$/m.exec(out)!;
    expect(Number(done[1])).toBe(WRITES);
    const lastAcked = new Map<string, number>();
    for (const line of out.split('\n')) {
      const m = /^ACK (\S+) (\d+)$/.exec(line);
      if (m) lastAcked.set(m[1]!, Number(m[2]));
    }
    expect(lastAcked.size).toBe(KEYS);

    // Every acknowledged write is on the new primary, none older.
    const primaryIp = podIp(await getPod(status.primary as string));
    let lost = 0;
    let older = 0;
    for (const [key, seq] of lastAcked) {
      const v = await redisCli(primaryIp, 'GET', key);
      if (v === '') lost++;
      else if (Number(v) < seq) older++;
    }
    expect({ lost, older }).toEqual({ lost: 0, older: 0 });

    // The old primary: the same pod, its container restarted, a replica of the new primary holding the data.
    await waitFor(
      'fo-0 labelled replica again',
      async () => (await roleLabels())['fo-0'] === 'replica',
      120_000,
      1_000,
    );
    const after = await getPod('fo-0');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.status.containerStatuses?.find((c) => c.name === 'redis')?.restartCount).toBeGreaterThanOrEqual(1);
    const info = await redisCli(podIp(after), 'INFO', 'replication');
    expect(info).toMatch(/role:slave/);
    const [someKey, someSeq] = [...lastAcked.entries()][0]!;
    await waitFor(
      'fo-0 to hold the data',
      async () => Number(await redisCli(podIp(after), 'GET', someKey)) >= someSeq,
      60_000,
      500,
    );
    const sampled = await sampler.stop();
    expect(sampled.samples).toBeGreaterThan(10);
    expect(sampled.max).toBe(1);
  }, 300_000);

  it(`webhook-injected sidecar pods: ${ROUNDS} SIGKILL rounds under write-back and write-through writes, 0 lost or older`, async () => {
    const t0 = Date.now();
    const phase = (what: string) =>
      console.log(`[sidecar failover] ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The first test's CacheCluster is not needed any more: its pods go away in the background.
    await cp.kubectl(['delete', 'cachecluster', NAME, '-n', NS, '--wait=false']);

    // The origin: PostgreSQL on loopback and on the node's bridge address, where pods reach it (host
    // authentication by password, from the pod range only).
    pgServer = await startPostgres({ extraListenAddresses: [NET.nodeIp], extraClientCidrs: [NET.podCidr6] });
    const originUrl = `postgres://${pgServer.user}:${encodeURIComponent(pgServer.password)}@[${NET.nodeIp}]:${pgServer.port}/${pgServer.database}`;
    await k(['create', 'secret', 'generic', 'origin', '-n', NS, `--from-literal=url=${originUrl}`]);
    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        replicationOnNode(
          SC,
          withDurability({ mode: 'replicated', timeoutMs: 1000 }),
          // Write-back keeps acknowledged writes in Redis until the database has them: no allkeys-* eviction.
          withEviction({ policy: 'noeviction', maxMemoryPercent: 80 }),
          withSidecar({
            writePolicy: 'write-back',
            writeBack: { flushIntervalMs: 200 },
            origin: { postgres: { secretRef: { name: 'origin', key: 'url' }, table: TABLE } },
          }),
        ),
      ),
    );
    await waitFor(
      `${SC}-0 primary, ${SC}-1 and ${SC}-2 replicas`,
      async () => {
        const l = await roleLabels(SC);
        return l[`${SC}-0`] === 'primary' && l[`${SC}-1`] === 'replica' && l[`${SC}-2`] === 'replica';
      },
      180_000,
      1_000,
    );
    phase('Redis pods up');

    // One app pod per write policy. The policy is the CacheCluster's (sidecar.yaml of its ConfigMap), read
    // by the sidecar when it starts: app-wb starts under write-back, then the CacheCluster is switched to
    // write-through and app-wt starts. Both sidecars are checked below to have kept their policy (no
    // restart; the write-back flusher's metrics on one only).
    await k(['apply', '-f', '-'], JSON.stringify(appPod('app-wb')));
    const wbPod = await waitReady('app-wb');
    await k([
      'patch',
      'cachecluster',
      SC,
      '-n',
      NS,
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { sidecar: { writePolicy: 'write-through' } } }),
    ]);
    await waitFor(
      'sidecar.yaml with writePolicy write-through',
      async () =>
        (await k(['get', 'configmap', `${SC}-config`, '-n', NS, '-o', 'jsonpath={.data.sidecar\\.yaml}'])).includes(
          'writePolicy: write-through',
        ),
      60_000,
      500,
    );
    await k(['apply', '-f', '-'], JSON.stringify(appPod('app-wt')));
    const wtPod = await waitReady('app-wt');
    phase('app pods Ready');

    // Injected by the webhook: the native sidecar, the sockets' emptyDir, mounted read-only in the app.
    for (const p of [wbPod, wtPod]) {
      expect(p.metadata.labels?.['cache.ripplecache.io/sidecar']).toBe('injected');
      expect(p.spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
        ['ripplecache-sidecar', 'Always'],
      ]);
      expect(p.spec?.volumes?.find((v) => v.name === 'ripplecache-sockets')?.emptyDir).toBeDefined();
      const app = p.spec!.containers.find((c) => c.name === 'app')!;
      expect(app.volumeMounts).toContainEqual({
        name: 'ripplecache-sockets',
        mountPath: '/var/run/ripplecache',
        readOnly: true,
      });
      expect(app.env).toContainEqual({ name: 'RIPPLECACHE_HTTP_SOCKET', value: '/var/run/ripplecache/http.sock' });
      expect(app.env).toContainEqual({ name: 'RIPPLECACHE_RESP_SOCKET', value: '/var/run/ripplecache/resp.sock' });
      // What the app container sees there: two Unix sockets, mode 0666.
      const sockets = await (await fetch(`http://[${podIp(p)}]:${APP_PORT}/sockets`)).json();
      expect(sockets).toEqual({
        http: { path: '/var/run/ripplecache/http.sock', socket: true, mode: '666' },
        resp: { path: '/var/run/ripplecache/resp.sock', socket: true, mode: '666' },
      });
    }
    const apps = { wb: podIp(wbPod), wt: podIp(wtPod) };

    // The load: SC_WORKERS workers, each key written by one worker at a time; a write not answered 204 is
    // retried until it is, so "its last acknowledged value" is well defined. Even keys through app-wb,
    // odd keys through app-wt; each PUT goes host → app (pod IP) → sidecar over the Unix socket.
    const last = new Map<string, string>();
    let acknowledged = 0;
    let refusals = 0;
    let target = 0;
    let stopped = false;
    const statuses = new Map<string, number>();
    const worker = async (w: number) => {
      for (let j = 0; !stopped; j++) {
        if (acknowledged >= target) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const n = w + SC_WORKERS * (j % Math.ceil(SC_KEYS / SC_WORKERS));
        if (n >= SC_KEYS) continue;
        const key = `key-${n}`;
        const value = `w${w}-${j}`;
        const ip = n % 2 === 0 ? apps.wb : apps.wt;
        for (;;) {
          const status = await put(ip, key, value);
          if (status === 204) break;
          refusals++;
          statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
          if (stopped) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        last.set(key, value);
        acknowledged++;
      }
    };
    const load = Promise.all(Array.from({ length: SC_WORKERS }, (_, w) => worker(w)));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const sampler = samplePrimaries(kc.makeApiClient(k8s.CoreV1Api), NS, SC);
    let sampled: { max: number; samples: number; elapsedMs: number };
    const failovers: string[] = [];
    const killed = new Set<string>();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const start = acknowledged;
        target = start + PER_ROUND;
        const before = await getCc(SC);
        const primaryPod = before.status.primary as string;
        const previous = JSON.stringify(before.status.lastFailover ?? null);
        const killAfter = start + 100 + Math.floor(Math.random() * (PER_ROUND - 400));
        await waitFor(`round ${round}: writes before the kill`, async () => acknowledged >= killAfter, 180_000, 5);
        const pod = await getPod(primaryPod);
        const id = pod.status.containerStatuses
          ?.find((c) => c.name === 'redis')
          ?.containerID?.replace(/^containerd:\/\//, '');
        expect(id, `the redis container of ${primaryPod}`).toBeTruthy();
        await node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id!]);
        killed.add(primaryPod);
        const killedAt = Date.now();
        await waitFor(
          `round ${round}: a failover away from ${primaryPod}`,
          async () => {
            const cc = await getCc(SC);
            return (
              cc.status?.primary !== primaryPod &&
              cc.status?.lastFailover?.from === primaryPod &&
              JSON.stringify(cc.status.lastFailover) !== previous
            );
          },
          120_000,
          250,
        );
        const cc = await getCc(SC);
        const failedOverAt = Date.now();
        await waitFor(`round ${round}: the round's writes`, async () => acknowledged >= target, 180_000, 20).catch(
          async (err: unknown) => {
            // CI once timed out here (2026-12-02, 1 of 4 runs) with nothing to say why: say it next time.
            const st = (await getCc(SC).catch(() => undefined))?.status;
            throw new Error(
              `${String(err)}; ${acknowledged} acknowledged of ${target}; refusals by status ` +
                `${JSON.stringify(Object.fromEntries(statuses))}; last refusals ${JSON.stringify(Object.fromEntries(refusalBodies))}; ` +
                `role labels ${JSON.stringify(await roleLabels(SC).catch(() => undefined))}; status ${JSON.stringify(st)}`,
            );
          },
        );
        failovers.push(`${cc.status.lastFailover.from} -> ${cc.status.lastFailover.to}`);
        // The old primary: its container restarted by the kubelet (after its crash-loop back-off), made a
        // replica of the new primary before it gets a label.
        await waitFor(
          `round ${round}: ${primaryPod} back as a replica`,
          async () => (await roleLabels(SC))[primaryPod] === 'replica',
          240_000,
          500,
        );
        console.log(
          `round ${round}: ${failovers.at(-1)}, killed ${killAfter - start} writes into the round; ` +
            `failover seen after ${((failedOverAt - killedAt) / 1000).toFixed(1)} s, ` +
            `rejoined after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
        );
      }
      // The rounds count acknowledged writes, not keys: a worker that spent a round retrying refused writes
      // may not have reached all of its keys yet. Let the load run on (bounded) until every key has an
      // acknowledged value, so the checks below cover all SC_KEYS keys.
      target = Number.MAX_SAFE_INTEGER;
      await waitFor('every key written at least once', async () => last.size >= SC_KEYS, 180_000, 20);
    } finally {
      stopped = true;
      await load;
      sampled = await sampler.stop();
    }
    phase(`${ROUNDS} rounds done: ${acknowledged} acknowledged writes, ${refusals} refused and retried`);
    console.log(`refusals by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(failovers).toHaveLength(ROUNDS);
    expect(acknowledged).toBeGreaterThanOrEqual(ROUNDS * PER_ROUND);
    expect(last.size).toBe(SC_KEYS);
    expect(refusals).toBeGreaterThan(0); // the outages were seen and retried
    expect(sampled.samples).toBeGreaterThan(50);
    expect(sampled.max).toBe(1);

    // Every key, in PostgreSQL (the write-back journal flushed) and on the primary, at its last
    // acknowledged value.
    const admin = new pg.Pool({ connectionString: pgServer.url, max: 2 });
    admin.on('error', () => undefined);
    const primaryName = (await getCc(SC)).status.primary as string;
    const redisAt = (ip: string) => {
      const c = new Redis({ host: ip, port: 6379, maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      return c;
    };
    const primary = redisAt(podIp(await getPod(primaryName)));
    const redisValues = async (c: Redis) => {
      const keys = [...last.keys()];
      const pipe = c.pipeline();
      for (const key of keys) pipe.hget(`rc:${key}`, 'v');
      const res = (await pipe.exec()) ?? [];
      return new Map(keys.map((key, i) => [key, (res[i]?.[1] as string | null) ?? null]));
    };
    try {
      const dbRows = async () =>
        new Map(
          (await admin.query<{ key: string; value: Buffer | null }>(`SELECT key, value FROM ${TABLE}`)).rows.map(
            (r) => [r.key, r.value?.toString() ?? null],
          ),
        );
      await waitFor(
        'every key at its last acknowledged value in PostgreSQL',
        async () => {
          const rows = await dbRows();
          return [...last].every(([key, v]) => rows.get(key) === v);
        },
        60_000,
        250,
      ).catch(() => undefined); // counted below
      const rows = await dbRows();
      const inRedis = await redisValues(primary);
      let lost = 0;
      let older = 0;
      const wrong: string[] = [];
      for (const [key, v] of last) {
        for (const got of [inRedis.get(key), rows.get(key)]) {
          if (got === v) continue;
          if (got === undefined || got === null) lost++;
          else older++;
          wrong.push(`${key}: acknowledged ${v}, redis ${inRedis.get(key)}, database ${rows.get(key)}`);
        }
      }
      console.log(
        `checked ${last.size} keys in PostgreSQL and on ${primaryName}: ${lost} lost, ${older} older ` +
          `(failovers: ${failovers.join(', ')}; primary labels sampled ${sampled.samples} times, at most ${sampled.max})`,
      );
      expect({ lost, older, wrong: wrong.slice(0, 10) }).toEqual({ lost: 0, older: 0, wrong: [] });

      // Every pod killed is back as a replica of the primary, holding the new data.
      for (const name of killed) {
        if (name === primaryName) continue;
        const replica = redisAt(podIp(await getPod(name)));
        try {
          expect(await replica.info('replication')).toMatch(/role:slave/);
          let behind = -1;
          await waitFor(
            `${name} to hold every key's last acknowledged value`,
            async () => {
              const got = await redisValues(replica);
              behind = [...last].filter(([key, v]) => got.get(key) !== v).length;
              return behind === 0;
            },
            60_000,
            500,
          ).catch(() => undefined);
          expect({ replica: name, behind }).toEqual({ replica: name, behind: 0 });
        } finally {
          replica.disconnect();
        }
      }
    } finally {
      primary.disconnect();
      await admin.end();
    }

    // The sidecars kept their policy and never restarted; both waited for a replica (durability replicated).
    const wbMetrics = await metrics(apps.wb);
    const wtMetrics = await metrics(apps.wt);
    expect(sum(wbMetrics, 'ripplecache_sidecar_writeback_entries_flushed_total')).toBeGreaterThan(0);
    expect(sum(wtMetrics, 'ripplecache_sidecar_writeback_entries_flushed_total')).toBe(0);
    expect(sum(wbMetrics, 'ripplecache_sidecar_replica_waits_total')).toBeGreaterThan(0);
    expect(sum(wtMetrics, 'ripplecache_sidecar_replica_waits_total')).toBeGreaterThan(0);
    for (const name of ['app-wb', 'app-wt']) {
      const p = await getPod(name);
      expect(p.status.initContainerStatuses?.find((c) => c.name === 'ripplecache-sidecar')?.restartCount).toBe(0);
    }

    // The RESP front over the Unix socket, from the app container: the last acknowledged value of a key of
    // each app, and a SET read back over HTTP (the socket too).
    for (const [app, n] of [
      ['wb', 0],
      ['wt', 1],
    ] as const) {
      const ip = apps[app];
      expect(await resp(ip, ['PING'])).toEqual({ simple: 'PONG' });
      expect(await resp(ip, ['GET', `key-${n}`])).toEqual({ bulk: last.get(`key-${n}`) });
      expect(await resp(ip, ['SET', `resp-${app}`, `over-resp-${app}`])).toEqual({ simple: 'OK' });
      const got = await fetch(`http://[${ip}]:${APP_PORT}/v1/cache/resp-${app}`);
      expect({ status: got.status, body: await got.text() }).toEqual({ status: 200, body: `over-resp-${app}` });
      expect(await resp(ip, ['NOSUCHCOMMAND'])).toHaveProperty('error', expect.stringMatching(/NOSUCHCOMMAND/i));
    }
    phase('checked');
  }, 900_000);

  it('issue 17: the <name>-bridge Deployment as a real pod relays an invalidation to a peer CacheCluster', async () => {
    // A peer CacheCluster over the same database (the same origin Secret and table), one Redis pod, with an
    // app pod of its own. The second test left `fs` and its app pods running.
    expect(pgServer, 'the second test started PostgreSQL').toBeDefined();
    await k(
      ['apply', '-f', '-'],
      cacheClusterYaml(
        cacheCluster(
          PEER,
          inNamespace(NS),
          withImage(node.images.redis),
          withResources({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } }),
          withSidecar({
            writePolicy: 'write-through',
            origin: { postgres: { secretRef: { name: 'origin', key: 'url' }, table: TABLE } },
          }),
        ),
      ),
    );
    await k(['apply', '-f', '-'], JSON.stringify(appPod('app-pb', PEER)));
    const peerApp = podIp(await waitReady('app-pb'));
    const writer = podIp(await getPod('app-wt'));

    await k([
      'patch',
      'cachecluster',
      SC,
      '-n',
      NS,
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { invalidation: { peers: [{ cacheCluster: { name: PEER } }] } } }),
    ]);
    await waitFor(
      `${SC}: PeersReachable=True (its bridge pod up and connected to ${PEER})`,
      async () =>
        ((await getCc(SC)).status?.conditions ?? []).some(
          (c: { type: string; status: string; message: string }) =>
            // A reachable peer under repair (the bridge's start) is True too, named "repairing".
            c.type === 'PeersReachable' && c.status === 'True' && !c.message.includes('repairing'),
        ),
      180_000,
      1_000,
    );
    const bridgePodsNow = async () =>
      (
        JSON.parse(
          await k([
            'get',
            'pods',
            '-n',
            NS,
            '-l',
            `cache.ripplecache.io/cluster=${SC},app.kubernetes.io/component=bridge`,
            '-o',
            'json',
          ]),
        ) as { items: Pod[] }
      ).items;
    // Ready once its /readyz (subscribed, every peer up, no repair pending) answered the kubelet's probe.
    await waitFor(
      'the bridge pod ready',
      async () => (await bridgePodsNow()).filter(podReady).length === 1,
      60_000,
      1_000,
    );
    const bridgePods = { items: await bridgePodsNow() };
    expect(bridgePods.items.filter(podReady)).toHaveLength(1);
    const bridgeIp = podIp(bridgePods.items.find(podReady)!);

    // KEYS17 keys: cached in the peer (read there, so in its Redis and its sidecar's L1), then written
    // through `fs` (write-through): a read through the peer must come to return the new value.
    const KEYS17 = 20;
    for (let i = 0; i < KEYS17; i++) {
      expect(await put(peerApp, `x17-${i}`, `old-${i}`)).toBe(204);
      const got = await fetch(`http://[${peerApp}]:${APP_PORT}/v1/cache/x17-${i}`);
      expect(await got.text()).toBe(`old-${i}`);
    }
    const lags: number[] = [];
    for (let i = 0; i < KEYS17; i++) {
      expect(await put(writer, `x17-${i}`, `new-${i}`)).toBe(204);
      const acked = Date.now();
      await waitFor(
        `x17-${i}: the new value read through ${PEER}`,
        async () => {
          const r = await fetch(`http://[${peerApp}]:${APP_PORT}/v1/cache/x17-${i}`);
          return r.status === 200 && (await r.text()) === `new-${i}`;
        },
        30_000,
        20,
      );
      lags.push(Date.now() - acked);
    }
    const bridgeMetrics = await (await fetch(`http://[${bridgeIp}]:7072/metrics`)).text();
    const invalidated = bridgeMetrics
      .split('\n')
      .filter((l) => l.startsWith('ripplecache_bridge_relayed_keys_total{') && l.includes('outcome="invalidated"'))
      .reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
    lags.sort((a, b) => a - b);
    console.log(
      `issue 17 on real pods: ${KEYS17} writes through ${SC} read back new through ${PEER}; ` +
        `lag to the first new read (20 ms polling) median ${lags[Math.floor(KEYS17 / 2)]} ms, max ${lags.at(-1)} ms; ` +
        `bridge relayed_keys_total{outcome="invalidated"} ${invalidated}`,
    );
    expect(invalidated).toBeGreaterThanOrEqual(KEYS17);
  }, 300_000);
});
