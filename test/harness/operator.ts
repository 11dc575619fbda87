import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import {
  logTail,
  repoRoot,
  spawnManaged,
  terminate,
  trackTempDir,
  waitForProcess,
  type ManagedProcess,
} from './tools.js';

/** A real `ripplecache-operator` process (run from source with tsx) against a test control plane. */
export interface OperatorProcess {
  readonly proc: ManagedProcess;
  readonly metricsUrl: string;
  readonly identity: string;
  /** The operator's log so far (JSON lines). */
  log(): string;
  /** Fetches /metrics and returns the value of one sample (summing over matching label sets), or 0. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface OperatorOptions {
  kubeconfigPath: string;
  identity: string;
  /** `namespace/pod` → `host:port` of the redis-server standing in for that pod. */
  podAddresses?: Record<string, string>;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run the compiled `dist/operator/src/main.js` (after `npm run build`) instead of the sources through tsx. */
  compiled?: boolean;
  /** With `compiled`: the compiled entry point to run instead (e.g. another checkout's dist, for A/B runs). */
  compiledMain?: string;
  /**
   * Runs the operator through this command prefix, e.g. a local node's `hostCommandPrefix()` (its mount
   * namespace, where names resolve through the node's DNS: the operator reaches real pods by their names).
   */
  commandPrefix?: string[];
  /** Flags for node itself, before the program (e.g. V8 flags such as `--optimize-for-size`). */
  nodeArgs?: string[];
}

export async function startOperator(opts: OperatorOptions): Promise<OperatorProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-operator-'));
  trackTempDir(dir);
  const args = [
    ...(opts.nodeArgs ?? []),
    ...(opts.compiled
      ? [opts.compiledMain ?? join(repoRoot, 'dist/operator/src/main.js')]
      : ['--import', 'tsx', join(repoRoot, 'operator/src/main.ts')]),
    '--kubeconfig',
    opts.kubeconfigPath,
    '--metrics-listen',
    `127.0.0.1:${port}`,
    '--identity',
    opts.identity,
    '--leader-election-namespace',
    'default',
    ...Object.entries(opts.podAddresses ?? {}).flatMap(([pod, addr]) => ['--pod-address-override', `${pod}=${addr}`]),
    ...(opts.extraArgs ?? []),
  ];
  const [command, ...prefixArgs] = [...(opts.commandPrefix ?? []), process.execPath];
  const proc = spawnManaged(`operator ${opts.identity}`, command, [...prefixArgs, ...args], {
    logPath: join(dir, 'operator.log'),
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
  });
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await waitForProcess(
    proc,
    `operator ${opts.identity} /readyz`,
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    60_000,
    200,
  );
  return {
    proc,
    metricsUrl,
    identity: opts.identity,
    log: () => logTail(proc.logPath, 100_000),
    async metric(name, labels = {}) {
      const text = await (await fetch(metricsUrl)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const ls = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    stop: (signal = 'SIGTERM') => terminate(proc, signal, 10_000),
  };
}
