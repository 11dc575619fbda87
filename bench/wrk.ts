/**
 * What the benches share: driving wrk (C, Debian's `wrk` package) with a Lua script and reading its result,
 * CPU seconds of processes from /proc, the machine's load average, and median / range formatting.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * wrk's `done` hook printing one `WRK-RESULT {json}` line: requests, duration (µs), non-2xx answers, socket
 * errors (connect + read + write + timeout), p50 and p99 latency (µs). Append it to a request script.
 */
export const WRK_DONE_LUA = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nWRK-RESULT {"requests":%d,"duration_us":%d,"status":%d,"socket":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/**
 * A wrk script sending `method` to `/v1/cache/bench-<i>`, i cycling over `keys` keys (each thread starting
 * elsewhere), with a body of `valueBytes` for PUT.
 */
export function cyclingKeysScript(method: 'GET' | 'PUT', keys: number, valueBytes: number): string {
  const request =
    method === 'PUT'
      ? 'return wrk.format("PUT", "/v1/cache/bench-" .. i, headers, body)'
      : 'return wrk.format("GET", "/v1/cache/bench-" .. i)';
  return `
local n = ${keys}
local body = string.rep("v", ${valueBytes})
local headers = { ["Content-Type"] = "text/plain" }
local threads = 0
local i = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) i = (tid or 0) * 7919 % n end
function request()
  i = i + 1
  if i >= n then i = 0 end
  ${request}
end
${WRK_DONE_LUA}`;
}

export interface WrkResult {
  requests: number;
  /** Non-2xx answers. */
  status: number;
  /** Socket errors: connect, read, write, timeout. */
  socket: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds wrk itself used (it is a waited-for child of this process). */
  wrkCpuSeconds: number;
}

export interface WrkRun {
  url: string;
  threads: number;
  connections: number;
  seconds: number;
  /** The Lua script; it must end with WRK_DONE_LUA. */
  script: string;
  /** Optional data file passed to the script's `init` as args[1]. */
  data?: string;
}

/** True when wrk is installed. */
export const hasWrk = (): boolean => !spawnSync('wrk', ['--version']).error;

/** CPU seconds used so far by this process's exited (waited-for) children. */
export function childrenCpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** Runs wrk once (bounded by `seconds`) and parses the WRK-RESULT line its script prints. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-wrk-'));
  try {
    writeFileSync(join(dir, 'script.lua'), run.script);
    const args = [
      `-t${run.threads}`,
      `-c${run.connections}`,
      `-d${run.seconds}s`,
      '--timeout',
      '10s',
      '-s',
      join(dir, 'script.lua'),
      run.url,
    ];
    if (run.data !== undefined) {
      writeFileSync(join(dir, 'data'), run.data);
      args.push('--', join(dir, 'data'));
    }
    const cpuBefore = childrenCpuSeconds();
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
    const m = /WRK-RESULT (\{.*\})/.exec(stdout);
    if (code !== 0 || !m) throw new Error(`wrk exited with ${code}: ${stdout}`);
    const r = JSON.parse(m[1] as string) as {
      requests: number;
      duration_us: number;
      status: number;
      socket: number;
      p50_us: number;
      p99_us: number;
    };
    return {
      requests: r.requests,
      status: r.status,
      socket: r.socket,
      seconds: r.duration_us / 1e6,
      p50Ms: r.p50_us / 1000,
      p99Ms: r.p99_us / 1000,
      wrkCpuSeconds: childrenCpuSeconds() - cpuBefore,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc; NaN when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks / 100 : NaN;
  } catch {
    return NaN;
  }
}

/** The sum of cpuSeconds over `pids`. */
export const cpuSecondsOf = (pids: readonly number[]): number => pids.reduce((a, p) => a + cpuSeconds(p), 0);

/** Load average (1 / 5 / 15 min) from /proc/loadavg; "n/a" where there is none. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' / ');
  } catch {
    return 'n/a';
  }
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** `n` with thousands separators and `digits` decimals (en-US). */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** "min–max" of `xs`. */
export const range = (xs: readonly number[], digits = 0): string =>
  `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`;
