import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { waitFor } from './ports.js';

/** The repository root (this file lives in test/harness/). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

let binDir: Promise<string> | undefined;

/**
 * The directory holding etcd, kube-apiserver, kube-controller-manager, kubectl and helm: `$RIPPLECACHE_KUBE_BIN`
 * when set, else the last stdout line of `tools/kube/build.sh` (a no-op when the cache is warm; a cold build
 * takes many minutes and shows its progress on stderr). Memoised per process.
 */
export function kubeBinDir(): Promise<string> {
  binDir ??= resolveKubeBinDir().catch((err: unknown) => {
    binDir = undefined;
    throw err;
  });
  return binDir;
}

async function resolveKubeBinDir(): Promise<string> {
  const fromEnv = process.env.RIPPLECACHE_KUBE_BIN;
  if (fromEnv) return fromEnv;
  const script = join(repoRoot, 'tools/kube/build.sh');
  const child = spawn('bash', [script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const last = out.trim().split('\n').pop()?.trim() ?? '';
  if (code !== 0 || last === '')
    throw new Error(`tools/kube/build.sh failed (exit code ${code}); its output: ${out.slice(-2000)}`);
  return last;
}

// ---------------------------------------------------------------------------------------------------------
// Long-running helper processes (etcd, kube-apiserver, postgres, ...) shared by the harness modules.

export interface ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  /** True once the process has exited (for any reason). */
  readonly exited: boolean;
  /** Resolves when the process has exited. */
  readonly exit: Promise<void>;
}

export interface ManagedSpawnOptions {
  /** Appended to; stdout and stderr both go here. */
  logPath: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

const live = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let hasSetpriv: boolean | undefined;

/**
 * Removes every directory registered with `trackTempDir` (unless RIPPLECACHE_KEEP_TMP=1). Runs on process exit
 * and, because vitest's worker processes are not always let reach `exit`, after every integration test file
 * (`test/harness/file-cleanup.ts`, a vitest setup file).
 */
export function removeTrackedTempDirs(): void {
  if (process.env.RIPPLECACHE_KEEP_TMP === '1') return;
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    } catch {
      /* best effort */
    }
  }
}

process.on('exit', () => {
  // A crashed or interrupted test run must not leave servers behind: SIGKILL is all that works synchronously.
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  removeTrackedTempDirs();
});

/** Registers a temporary directory to remove on process exit (unless RIPPLECACHE_KEEP_TMP=1). */
export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
}

/** Removes a temporary directory now (unless RIPPLECACHE_KEEP_TMP=1, in which case it says where it is). */
export function removeTempDir(dir: string, what: string): void {
  tempDirs.delete(dir);
  if (process.env.RIPPLECACHE_KEEP_TMP === '1') {
    process.stderr.write(`[${what}] kept ${dir} (RIPPLECACHE_KEEP_TMP=1)\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Spawns a long-running server with its output in `logPath`. Where util-linux `setpriv` exists the child is
 * started with a parent-death signal, so even a SIGKILLed test worker leaves no orphan behind; a normal exit
 * of this process kills it too (see the 'exit' handler above).
 */
export function spawnManaged(name: string, command: string, args: string[], opts: ManagedSpawnOptions): ManagedProcess {
  hasSetpriv ??= commandExists('setpriv');
  const [cmd, argv] = hasSetpriv ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', command, ...args]] : [command, args];
  const fd = openSync(opts.logPath, 'a');
  const spawnOpts: SpawnOptions = { stdio: ['ignore', fd, fd], cwd: opts.cwd, env: opts.env ?? process.env };
  if (opts.uid !== undefined) spawnOpts.uid = opts.uid;
  if (opts.gid !== undefined) spawnOpts.gid = opts.gid;
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, spawnOpts);
  } finally {
    closeSync(fd);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const proc: ManagedProcess = {
    name,
    logPath: opts.logPath,
    child,
    exit,
    get exited() {
      return exited;
    },
  };
  live.add(proc);
  void exit.then(() => {
    exited = true;
    live.delete(proc);
  });
  return proc;
}

/** Sends `signal` (SIGTERM by default), then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function terminate(
  proc: ManagedProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 5_000,
): Promise<void> {
  if (proc.exited) return;
  proc.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      proc.child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([proc.exit, killed]);
  clearTimeout(timer);
  await proc.exit;
}

/** The last `lines` lines of a log file ('' when it cannot be read). */
export function logTail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Throws an error naming the process, its exit status and the tail of its log if it has exited. */
export function assertRunning(proc: ManagedProcess): void {
  if (!proc.exited) return;
  const { exitCode, signalCode } = proc.child;
  throw new Error(
    `${proc.name} exited (code ${exitCode}, signal ${signalCode}); last lines of ${proc.logPath}:\n${logTail(proc.logPath)}`,
  );
}

/**
 * Waits until `check` resolves true while `proc` keeps running. Fails at once, with the tail of the process's
 * log, if it exits; on timeout the error carries the log tail too.
 */
export async function waitForProcess(
  proc: ManagedProcess,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 200,
): Promise<void> {
  try {
    await waitFor(what, async () => proc.exited || (await check()), timeoutMs, everyMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last lines of ${proc.logPath}:\n${logTail(proc.logPath)}`, {
      cause: err,
    });
  }
  assertRunning(proc);
}

/**
 * Start-up progress for a person watching the test run, on stderr so it shows next to vitest's output:
 * returns a logger that prefixes each line with `what` and the seconds since the logger was made.
 */
export function progressLog(what: string): (message: string) => void {
  const t0 = Date.now();
  return (message) => {
    process.stderr.write(`[${what} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${message}\n`);
  };
}

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
