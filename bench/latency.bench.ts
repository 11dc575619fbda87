/**
 * `npm run bench:latency` (= `npx tsx bench/latency.bench.ts`; needs root for the network namespace).
 *
 * App-perceived latency with Redis 0.5 ms away. A network namespace of its own (`rc-lat-<pid>`) joined to
 * this one by a veth pair holds redis-server and two delay lines in front of it (bench/delay-line.ts):
 * one holding each chunk 250 µs each way (Redis 0.5 ms away), one holding nothing (to measure what the
 * delay line itself costs, which is subtracted). A sidecar process in this namespace uses Redis through
 * the 250 µs line. Measured from this process, one request in flight at a time, in alternated rounds:
 *
 *   direct   ioredis GET of Redis through the 250 µs delay line (the baseline)
 *   http/tcp undici GET of an L1 hit on the sidecar's HTTP API over 127.0.0.1
 *   http/unix  the same over the sidecar's Unix socket
 *   resp/tcp ioredis GET of an L1 hit on the sidecar's RESP front over 127.0.0.1
 *   resp/unix  the same over the RESP front's Unix socket
 *
 * Each round measures every path (order rotated per round) for BENCH_LATENCY_OPS requests; the report
 * gives per path the median over rounds of the round's p50 and p99 (with the range of p50s), the ratio of
 * p50 to the direct GET's corrected p50, and CPU per request of this process and of the sidecar (from
 * /proc). Target (issue 16): resp/unix p50 ≤ 0.1× direct.
 *
 * Also: the RESP request parser (sidecar/src/resp/resp-parser.ts) against node-redis' RESP decoder on the
 * same pipelined command stream, the measurement behind writing our own parser.
 *
 * Environment: BENCH_LATENCY_OPS (default 2000), BENCH_LATENCY_ROUNDS (default 7), BENCH_LATENCY_SECTIONS
 * (`parser,latency`, the default, or either one), BENCH_HALT_POLL_NS (the guest's idle polling during the
 * latency section, default 1000000, `keep` to leave it: see {@link setHaltPoll}).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder } from '@redis/client/dist/lib/RESP/decoder.js';
import { Redis } from 'ioredis';
import { Client } from 'undici';
import { RespRequestParser } from '../sidecar/src/resp/resp-parser.js';
import { freePort, waitFor } from '../test/harness/ports.js';
import { startSidecar, stopAllSidecars, type SidecarProcess } from '../test/harness/sidecar.js';

const OPS = Number(process.env.BENCH_LATENCY_OPS ?? 2000);
const ROUNDS = Number(process.env.BENCH_LATENCY_ROUNDS ?? 7);
const DELAY_US = 250;
const SECTIONS = new Set((process.env.BENCH_LATENCY_SECTIONS ?? 'parser,latency').split(',').map((x) => x.trim()));

const out = (line = '') => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 1) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;

// ------------------------------------------------------------------------------------------------
// The namespace

const NS = `rc-lat-${process.pid}`;
const VETH_HOST = `rcl${process.pid % 100000}h`;
const VETH_NS = `rcl${process.pid % 100000}n`;
/** A /30 of our own in 10.213.0.0/16, picked from the pid. */
const SUBNET = `10.213.${process.pid % 250}`;
const HOST_IP = `${SUBNET}.1`;
const NS_IP = `${SUBNET}.2`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const children: ChildProcess[] = [];

function setUpNamespace(): void {
  if (ip('-4', 'addr').includes(`${SUBNET}.`)) throw new Error(`${SUBNET}.0/30 is already in use on this machine`);
  ip('netns', 'add', NS);
  ip('link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS);
  ip('link', 'set', VETH_NS, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', VETH_HOST);
  ip('link', 'set', VETH_HOST, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', VETH_NS);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
}

/**
 * The guest's idle polling (KVM guests whose cpuidle driver is `haltpoll`, as this Firecracker VM with
 * `haltpoll.guest_halt_poll_ns=0`): with no polling, a vCPU that goes idle between two requests halts and its
 * wake-up costs tens of µs, charged to every request of a one-in-flight ping-pong (a bare Node RESP responder:
 * p50 98 µs and 40 µs of CPU per request with 0, 19 µs and 13 µs with 1 ms; under load nothing halts, which is
 * why loaded runs measured lower). Set for the run to BENCH_HALT_POLL_NS (default 1000000: a vCPU polls up to
 * 1 ms before halting, as on a busy node), `keep` leaves it; the previous value is restored at the end.
 */
const HALT_POLL_PATH = '/sys/module/haltpoll/parameters/guest_halt_poll_ns';
const HALT_POLL = process.env.BENCH_HALT_POLL_NS ?? '1000000';
if (HALT_POLL !== 'keep' && !/^\d{1,10}$/.test(HALT_POLL)) {
  throw new Error(`BENCH_HALT_POLL_NS must be a whole number of ns or "keep", got ${JSON.stringify(HALT_POLL)}`);
}
let haltPollBefore: string | undefined;

/** Sets the guest's halt polling for the run; says what it did. */
function setHaltPoll(): string {
  if (!existsSync(HALT_POLL_PATH)) return 'no haltpoll cpuidle driver here: idle polling unchanged';
  const before = readFileSync(HALT_POLL_PATH, 'utf8').trim();
  if (HALT_POLL === 'keep' || HALT_POLL === before) return `guest_halt_poll_ns ${before} (unchanged)`;
  try {
    writeFileSync(HALT_POLL_PATH, HALT_POLL);
  } catch (err) {
    return `guest_halt_poll_ns ${before} (could not set ${HALT_POLL}: ${err instanceof Error ? err.message : String(err)})`;
  }
  haltPollBefore = before;
  return `guest_halt_poll_ns ${HALT_POLL} for the run (was ${before}; restored after)`;
}

function restoreHaltPoll(): void {
  if (haltPollBefore === undefined) return;
  try {
    writeFileSync(HALT_POLL_PATH, haltPollBefore);
  } catch {
    // reported by nothing: the value stays as set (see the header line)
  }
  haltPollBefore = undefined;
}

function tearDown(): void {
  restoreHaltPoll();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  try {
    ip('link', 'del', VETH_HOST);
  } catch {
    // gone with the namespace, or never made
  }
  try {
    ip('netns', 'del', NS);
  } catch {
    // never made
  }
}

function inNamespace(name: string, command: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', NS, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`${name} exited with ${code}: ${tail}\n`);
  });
  children.push(child);
  return child;
}

async function tcpReady(host: string, port: number): Promise<void> {
  await waitFor(
    `${host}:${port}`,
    async () => {
      const r = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    },
    20_000,
    100,
  );
}

// ------------------------------------------------------------------------------------------------
// Measurement

interface Path {
  name: string;
  /** One request; resolves when the whole answer is in. */
  once(): Promise<void>;
  /** The server process whose CPU is reported (default: the sidecar). */
  serverPid?: number;
}

/**
 * The floor of any RESP front in Node: a bare `net` server answering each command with a canned reply (the
 * 100-byte value to a GET, `+OK` to anything else, HELLO included, so ioredis stays on RESP2). No parser
 * beyond finding the commands' names, no cache, no metrics: what a request costs in Node and the kernel.
 */
const BARE_RESPONDER = String.raw`
const net = require('node:net');
const value = Buffer.from('$100\r\n' + 'v'.repeat(100) + '\r\n');
const ok = Buffer.from('+OK\r\n');
net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (d) => {
    // One reply per command of the chunk (ioredis sends its CLIENT SETINFOs together).
    const commands = d.toString('latin1').match(/(?:^|\r\n)\*\d+\r\n\$\d+\r\n[A-Za-z]+/g) ?? [];
    s.write(Buffer.concat(commands.map((c) => (/get$/i.test(c) ? value : ok))));
  });
  s.on('error', () => {});
}).listen(process.argv[1], () => process.stdout.write('ready\n'));
`;

async function startBareResponder(socketPath: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', BARE_RESPONDER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bare responder exited with ${code}`)));
    child.stdout?.once('data', () => resolve());
  });
  return child.pid ?? -1;
}

interface RoundResult {
  p50: number;
  p99: number;
  clientCpuUs: number;
  sidecarCpuUs: number;
}

/** utime + stime of a process, µs (clock ticks of 10 ms: read over a whole round). */
function processCpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function measure(path: Path, sidecarPid: number): Promise<RoundResult> {
  for (let i = 0; i < 100; i++) await path.once(); // warm-up
  const times = new Float64Array(OPS);
  const cpu0 = process.cpuUsage();
  const serverPid = path.serverPid ?? sidecarPid;
  const sidecar0 = processCpuUs(serverPid);
  for (let i = 0; i < OPS; i++) {
    const t0 = performance.now();
    await path.once();
    times[i] = (performance.now() - t0) * 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  const sidecarCpu = processCpuUs(serverPid) - sidecar0;
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    clientCpuUs: (cpu.user + cpu.system) / OPS,
    sidecarCpuUs: sidecarCpu / OPS,
  };
}

// ------------------------------------------------------------------------------------------------
// The parser against node-redis' decoder

function parserComparison(): void {
  const parts: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    const key = `user:${i}`;
    parts.push(Buffer.from(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`));
    const value = 'x'.repeat(100);
    parts.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`));
  }
  const stream = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 16 * 1024) chunks.push(stream.subarray(i, i + 16 * 1024));
  const commandsPerPass = 4000;
  const ours = () => {
    const p = new RespRequestParser({
      maxBulkBytes: 1 << 20,
      maxArrayLength: 1 << 20,
      maxInlineBytes: 1 << 16,
      maxCommandBytes: 1 << 24,
    });
    let n = 0;
    for (const c of chunks) p.feed(c, () => n++);
    return n;
  };
  const theirs = () => {
    let n = 0;
    const d = new Decoder({
      onReply: () => n++,
      onErrorReply: () => {},
      onPush: () => {},
      // Bulk strings as Buffers, as a server needs them (values are bytes).
      getTypeMapping: () => ({ 36: Buffer }),
    });
    for (const c of chunks) d.write(c);
    return n;
  };
  if (ours() !== commandsPerPass || theirs() !== commandsPerPass) throw new Error('parsers disagree on the count');
  const rate = (f: () => number) => {
    const t0 = performance.now();
    let passes = 0;
    while (performance.now() - t0 < 400) {
      f();
      passes++;
    }
    return (passes * commandsPerPass) / ((performance.now() - t0) / 1000);
  };
  const oursRates: number[] = [];
  const theirsRates: number[] = [];
  for (let r = 0; r < 5; r++) {
    if (r % 2 === 0) {
      oursRates.push(rate(ours));
      theirsRates.push(rate(theirs));
    } else {
      theirsRates.push(rate(theirs));
      oursRates.push(rate(ours));
    }
  }
  const o = median(oursRates);
  const t = median(theirsRates);
  out('RESP request parsing, 2,000 GET + 2,000 SET (100-byte values) in 16 KiB chunks, 5 alternated rounds:');
  out(
    `  resp-parser.ts          ${fmt(o / 1e6, 2)} M commands/s (range ${fmt(Math.min(...oursRates) / 1e6, 2)}–${fmt(Math.max(...oursRates) / 1e6, 2)})`,
  );
  out(
    `  @redis/client Decoder   ${fmt(t / 1e6, 2)} M commands/s (range ${fmt(Math.min(...theirsRates) / 1e6, 2)}–${fmt(Math.max(...theirsRates) / 1e6, 2)})`,
  );
  out(`  ratio ours / node-redis ${fmt(o / t, 2)}×`);
  out();
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  out(
    `bench:latency — ${new Date().toISOString()}, node ${process.version}, ${cpus().length} CPUs: ${cpus()[0]?.model ?? 'unknown'}, load ${loadavg()
      .map((l) => fmt(l, 2))
      .join(' ')}`,
  );
  out();
  if (SECTIONS.has('parser')) parserComparison();
  if (!SECTIONS.has('latency')) return;
  out(`vCPU idle: ${setHaltPoll()}.`);
  out();

  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-latency-'));
  const httpSock = join(dir, 'http.sock');
  const respSock = join(dir, 'resp.sock');
  const bareSock = join(dir, 'bare.sock');
  let sidecar: SidecarProcess | undefined;
  const clients: { close(): unknown }[] = [];
  setUpNamespace();
  try {
    inNamespace('redis-server', 'redis-server', [
      '--port',
      '6379',
      '--bind',
      '127.0.0.1',
      NS_IP,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ]);
    await tcpReady(NS_IP, 6379);
    const delayed = 6380;
    const undelayed = 6381;
    for (const [port, us] of [
      [delayed, DELAY_US],
      [undelayed, 0],
    ] as const) {
      inNamespace(`delay-line ${us}us`, process.execPath, [
        '--import',
        'tsx',
        'bench/delay-line.ts',
        NS_IP,
        String(port),
        '127.0.0.1',
        '6379',
        String(us),
      ]);
      await tcpReady(NS_IP, port);
    }

    const respPort = await freePort();
    sidecar = await startSidecar({
      name: 'latency-sidecar',
      args: [
        '--redis',
        `redis://${NS_IP}:${delayed}`,
        '--l1-max-ttl',
        '3600',
        '--listen',
        `unix:${httpSock}`,
        '--listen-resp',
        `127.0.0.1:${respPort}`,
        '--listen-resp',
        `unix:${respSock}`,
        '--log-level',
        'warn',
      ],
    });
    const value = Buffer.alloc(100, 'v');
    if ((await sidecar.put('hot', value)).status !== 204) throw new Error('PUT failed');
    await waitFor('an L1 hit', async () => (await sidecar?.get('hot'))?.tier === 'L1', 10_000, 20);

    const redisClient = (o: { host?: string; port?: number; path?: string }) => {
      const r = new Redis({ ...o, enableAutoPipelining: false, maxRetriesPerRequest: 1 });
      r.on('error', () => {});
      clients.push({ close: () => r.disconnect() });
      return r;
    };
    const direct = redisClient({ host: NS_IP, port: delayed });
    const undelayedClient = redisClient({ host: NS_IP, port: undelayed });
    const noLine = redisClient({ host: NS_IP, port: 6379 });
    await direct.set('hot', value);
    const respTcp = redisClient({ host: '127.0.0.1', port: respPort });
    const respUnix = redisClient({ path: respSock });
    const barePid = await startBareResponder(bareSock);
    // No ready check: the bare responder answers INFO with +OK.
    const bareUnix = new Redis({ path: bareSock, enableAutoPipelining: false, enableReadyCheck: false });
    bareUnix.on('error', () => {});
    clients.push({ close: () => bareUnix.disconnect() });
    const httpTcp = new Client(sidecar.url, { pipelining: 1 });
    const httpUnix = new Client('http://localhost', { socketPath: httpSock, pipelining: 1 });
    clients.push(httpTcp, httpUnix);
    const httpGet = (c: Client) => async () => {
      const res = await c.request({ method: 'GET', path: '/v1/cache/hot' });
      const body = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode !== 200 || res.headers['x-cache'] !== 'L1' || body.length !== 100) {
        throw new Error(`not an L1 hit: ${res.statusCode} ${String(res.headers['x-cache'])}`);
      }
    };
    const redisGet = (r: Redis) => async () => {
      const v = await r.getBuffer('hot');
      if (v?.length !== 100) throw new Error('wrong value');
    };
    const paths: Path[] = [
      { name: 'direct Redis GET (250 µs line each way)', once: redisGet(direct) },
      { name: 'line alone: Redis through a 0 µs line', once: redisGet(undelayedClient) },
      { name: 'veth alone: Redis without a line', once: redisGet(noLine) },
      { name: 'L1 hit, HTTP over TCP (undici)', once: httpGet(httpTcp) },
      { name: 'L1 hit, HTTP over Unix (undici)', once: httpGet(httpUnix) },
      { name: 'L1 hit, RESP over TCP (ioredis)', once: redisGet(respTcp) },
      { name: 'L1 hit, RESP over Unix (ioredis)', once: redisGet(respUnix) },
      { name: 'bare Node RESP responder, Unix (floor)', once: redisGet(bareUnix), serverPid: barePid },
    ];
    const results = new Map<string, RoundResult[]>(paths.map((p) => [p.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = paths.map((_, i) => paths[(i + round) % paths.length] as Path);
      for (const p of order) results.get(p.name)?.push(await measure(p, sidecar.pid));
    }

    const summary = (name: string) => {
      const rs = results.get(name) ?? [];
      const p50s = rs.map((r) => r.p50);
      return {
        p50: median(p50s),
        lo: Math.min(...p50s),
        hi: Math.max(...p50s),
        p99: median(rs.map((r) => r.p99)),
        client: median(rs.map((r) => r.clientCpuUs)),
        sidecar: median(rs.map((r) => r.sidecarCpuUs)),
      };
    };
    const directS = summary(paths[0]!.name);
    const lineCost = summary(paths[1]!.name).p50 - summary(paths[2]!.name).p50;
    const baseline = directS.p50 - lineCost;
    out(
      `Latency of one request at a time, ${OPS} per path per round, ${ROUNDS} rounds (path order rotated each round); median of the rounds' p50 and p99, µs:`,
    );
    out(
      '  path                                         p50 (range)              p99     ×direct  client CPU/op  server CPU/op',
    );
    for (const p of paths) {
      const s = summary(p.name);
      const isRedis = p.name.startsWith('direct') || p.name.startsWith('line') || p.name.startsWith('veth');
      out(
        `  ${p.name.padEnd(44)} ${fmt(s.p50).padStart(7)} (${fmt(s.lo)}–${fmt(s.hi)})`.padEnd(74) +
          `${fmt(s.p99).padStart(8)}  ${isRedis && !p.name.startsWith('direct') ? '     —' : `${fmt(s.p50 / baseline, 3).padStart(6)}×`}` +
          `  ${fmt(s.client).padStart(10)} µs  ${isRedis ? '      —' : `${fmt(s.sidecar).padStart(8)} µs`}`,
      );
    }
    out();
    out(
      `The delay line's own cost (0 µs line − no line, p50): ${fmt(lineCost)} µs, subtracted from the direct GET: baseline ${fmt(baseline)} µs ` +
        `(raw ${fmt(directS.p50)} µs). Ratios are p50 / baseline.`,
    );
    const respUnixS = summary('L1 hit, RESP over Unix (ioredis)');
    out(
      `Target: L1 hit over RESP/Unix ≤ 0.1× direct: ${fmt(respUnixS.p50 / baseline, 3)}× (${respUnixS.p50 / baseline <= 0.1 ? 'met' : 'NOT met'}).`,
    );
    out(
      `Load average after: ${loadavg()
        .map((l) => fmt(l, 2))
        .join(' ')} (2 cores, shared).`,
    );
  } finally {
    for (const c of clients) await c.close();
    await stopAllSidecars();
    tearDown();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    tearDown(); // the namespace, its processes and the guest's idle polling
    process.exit(code);
  });
}
main().catch((err: unknown) => {
  tearDown();
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
