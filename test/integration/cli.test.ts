/**
 * The two programs as a user runs them: the real processes (from source, through tsx), their exit codes,
 * what they print when they cannot start, `--version`, and that every line they log is one JSON object with
 * each key once (against a real control plane and a real redis-server).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheCluster, cacheClusterYaml, inNamespace, withEviction } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator } from '../harness/operator.js';
import { PodSimulator } from '../harness/pod-simulator.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';
import { startSidecar, stopAllSidecars } from '../harness/sidecar.js';
import { repoRoot, trackTempDir } from '../harness/tools.js';

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time until the process exited, ms. */
  ms: number;
  /** True when the process had to be killed because it did not exit within the limit. */
  killed: boolean;
}

/** Runs a program to completion with exactly `env` (no inherited KUBECONFIG, HOME or in-cluster variables). */
function run(program: 'operator' | 'sidecar', args: string[], env: NodeJS.ProcessEnv, limitMs = 30_000) {
  return new Promise<CliResult>((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', `${program}/src/main.ts`, ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started, killed });
    });
  });
}

/** An environment with no Kubernetes credentials at all: HOME is an empty directory. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), 'ripplecache-cli-home-'));
  trackTempDir(home);
  return { PATH: process.env.PATH, HOME: home, ...extra };
}

/** A start-up failure: a non-zero exit of its own accord, nothing on stdout, one line on stderr, no stack trace. */
function expectOneLineFailure(r: CliResult, message: RegExp): void {
  const shown = JSON.stringify(r);
  expect(r.killed, `did not exit by itself: ${shown}`).toBe(false);
  expect(r.code, shown).not.toBe(0);
  expect(r.code, shown).not.toBeNull();
  expect(r.stdout, shown).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, shown).toHaveLength(1);
  expect(lines[0], shown).toMatch(message);
  expect(r.stderr, shown).not.toMatch(/^\s+at /m);
}

/** The keys of the top-level object of one JSON text, in order and with repeats (JSON.parse keeps the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

/** Every problem of a log: lines that are not a JSON object, and keys that occur twice in one line. */
function logProblems(log: string): string[] {
  const problems: string[] = [];
  for (const line of log.split('\n')) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      problems.push(`not JSON: ${line}`);
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`not a JSON object: ${line}`);
      continue;
    }
    const keys = topLevelKeys(line);
    const dups = keys.filter((k, i) => keys.indexOf(k) !== i);
    if (dups.length > 0 || keys.length !== Object.keys(parsed).length)
      problems.push(`key(s) ${[...new Set(dups)].join(', ')} twice: ${line}`);
  }
  return problems;
}

describe('the log checker itself', () => {
  it('finds a repeated key, a non-JSON line, and passes a clean line with nested objects', () => {
    expect(logProblems('{"component":"a","x":{"component":"b"},"s":"\\",\\"component\\":"}')).toEqual([]);
    expect(logProblems('{"component":"a","identity":"i","component":"http","msg":"m"}')).toHaveLength(1);
    expect(logProblems('(node:1) [FSTDEP023] FastifyDeprecation: ...')).toHaveLength(1);
    expect(logProblems('[1,2]')).toHaveLength(1);
  });
});

describe('ripplecache-operator without usable credentials', () => {
  it('no $KUBECONFIG, no ~/.kube/config, not in a pod: one line and exit 2 within seconds', async () => {
    // A machine that is itself a pod with a service account would be in-cluster: nothing to test there.
    if (existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) return;
    // What starting the program costs here (tsx compiles the sources): the failure must come soon after that.
    const baseline = await run('operator', ['--version'], bareEnv());
    expect(baseline.code).toBe(0);
    const r = await run('operator', ['--metrics-listen', '127.0.0.1:0'], bareEnv(), baseline.ms + 20_000);
    expectOneLineFailure(r, /^ripplecache-operator: no Kubernetes credentials: pass --kubeconfig, set \$KUBECONFIG/);
    expect(r.code).toBe(2);
    expect(r.ms, `start-up alone took ${baseline.ms} ms`).toBeLessThan(baseline.ms + 5_000);
  });

  it('--kubeconfig naming a file that does not exist', async () => {
    const r = await run('operator', ['--kubeconfig', '/nonexistent', '--metrics-listen', '127.0.0.1:0'], bareEnv());
    expectOneLineFailure(r, /^ripplecache-operator: cannot read the kubeconfig \/nonexistent .*no such file$/);
    expect(r.code).toBe(2);
  });

  it('$KUBECONFIG naming a file that does not exist', async () => {
    const r = await run('operator', ['--metrics-listen', '127.0.0.1:0'], bareEnv({ KUBECONFIG: '/nonexistent' }));
    expectOneLineFailure(r, /^ripplecache-operator: cannot read the kubeconfig \/nonexistent \(from \$KUBECONFIG\)/);
  });

  it('a kubeconfig that is not valid YAML, and one with no current context', async () => {
    const env = bareEnv();
    const bad = join(env.HOME!, 'bad.yaml');
    writeFileSync(bad, 'clusters: [\n  - name: x\n');
    const noContext = join(env.HOME!, 'no-context.yaml');
    writeFileSync(
      noContext,
      'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "https://127.0.0.1:1"}\nusers: []\ncontexts: []\n',
    );
    const r1 = await run('operator', ['--kubeconfig', bad, '--metrics-listen', '127.0.0.1:0'], env);
    expectOneLineFailure(r1, /^ripplecache-operator: the kubeconfig .*bad\.yaml .* is not valid YAML: /);
    const r2 = await run('operator', ['--kubeconfig', noContext, '--metrics-listen', '127.0.0.1:0'], env);
    expectOneLineFailure(r2, /^ripplecache-operator: the kubeconfig .*no-context\.yaml has no current-context/);
  });

  it('~/.kube/config is used when present (an unusable one is reported by its path)', async () => {
    const env = bareEnv();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(env.HOME!, '.kube'));
    writeFileSync(join(env.HOME!, '.kube', 'config'), 'apiVersion: v1\nkind: Config\n');
    const r = await run('operator', ['--metrics-listen', '127.0.0.1:0'], env);
    expectOneLineFailure(r, /^ripplecache-operator: the kubeconfig .*\/\.kube\/config has no current-context/);
  });
});

describe('flags of both programs', () => {
  it('--version prints the package version and exits 0', async () => {
    const op = await run('operator', ['--version'], bareEnv());
    expect(op).toMatchObject({ code: 0, stdout: `ripplecache-operator ${version}\n`, stderr: '' });
    const sc = await run('sidecar', ['--listen', '127.0.0.1:0', '--version'], bareEnv());
    expect(sc).toMatchObject({ code: 0, stdout: `ripplecache-sidecar ${version}\n`, stderr: '' });
  });

  it('--help of both documents --version', async () => {
    expect((await run('operator', ['--help'], bareEnv())).stdout).toMatch(/--version\s+print the version/);
    expect((await run('sidecar', ['--help'], bareEnv())).stdout).toMatch(/--version\n\s+print the version/);
  });

  it('the operator does not load ioredis nor the webhook libraries at start (they load on first use)', async () => {
    // NODE_DEBUG=module traces every CommonJS module Node loads, also those an ES module imports. --help
    // exits after the start-up imports (every static import of main.ts) and before anything runs.
    const r = await run('operator', ['--help'], bareEnv({ NODE_DEBUG: 'module' }));
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    // The trace works: it shows what the Kubernetes client loads (ws). fastify is the webhook's only: the
    // probe and metrics server is node:http.
    expect(r.stderr).toContain('node_modules/ws');
    for (const heavy of ['ioredis', '@peculiar', 'reflect-metadata', 'tsyringe', 'fastify', 'avvio'])
      expect(r.stderr.includes(`node_modules/${heavy}`), `${heavy} loaded at start`).toBe(false);
  });

  it('the sidecar names an unknown flag as unknown, also as the last argument (exit 2)', async () => {
    for (const args of [['--bogus-flag'], ['--listen', '127.0.0.1:0', '--bogus-flag'], ['--bogus-flag=1']]) {
      const r = await run('sidecar', args, bareEnv());
      expect(r.code, JSON.stringify(r)).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe('ripplecache-sidecar: unknown flag --bogus-flag');
    }
  });

  it('the sidecar refuses a --redis database that is not a number (exit 2), and one Redis does not have', async () => {
    const bad = await run('sidecar', ['--listen', '127.0.0.1:0', '--redis', 'redis://127.0.0.1:1/abc'], bareEnv());
    expect(bad.code, JSON.stringify(bad)).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe(
      'ripplecache-sidecar: --redis: the database "abc" is not a number (redis://host:port/0)',
    );
    // A real redis-server has 16 databases: /99 is refused at the first connection, before anything is
    // served (ioredis would otherwise go on over database 0).
    const redis = await startRedis();
    try {
      const r = await run('sidecar', ['--listen', '127.0.0.1:0', '--redis', `${redis.url}/99`], bareEnv());
      expect(r.code, JSON.stringify(r)).toBe(2);
      expect(r.stderr).toContain('has no database of that number (Redis: ERR DB index is out of range)');
    } finally {
      await redis.stop();
    }
  });
});

describe('log lines are JSON objects with each key once', () => {
  const NS = 'default';
  let cp: ControlPlane | undefined;
  let redis: RedisProcess | undefined;
  let sim: PodSimulator | undefined;

  beforeAll(async () => {
    cp = await startControlPlane();
    await cp.applyCrds();
    redis = await startRedis();
    sim = new PodSimulator(cp.kubeconfigPath, NS, new Set(['logs-0']));
    sim.start();
  });

  afterAll(async () => {
    sim?.stop();
    await stopAllSidecars();
    await redis?.stop().catch(() => undefined);
    await cp?.stop();
  });

  it('the operator: start, leader election, a reconcile with children and config, shutdown', async () => {
    const operator = await startOperator({
      kubeconfigPath: cp!.kubeconfigPath,
      identity: 'operator-logs',
      podAddresses: { [`${NS}/logs-0`]: `127.0.0.1:${redis!.port}` },
      extraArgs: ['--lease-duration-seconds', '4', '--log-level', 'debug'],
    });
    try {
      const applied = await cp!.kubectl(
        ['apply', '-f', '-'],
        cacheClusterYaml(
          cacheCluster('logs', inNamespace(NS), withEviction({ policy: 'allkeys-lru', maxMemory: '32Mi' })),
        ),
      );
      expect(applied.code, applied.stderr).toBe(0);
      await waitFor(
        'the CacheCluster to be Ready',
        async () => {
          const r = await cp!.kubectl(['get', 'cachecluster', 'logs', '-n', NS, '-o', 'jsonpath={.status.phase}']);
          return r.stdout === 'Ready';
        },
        90_000,
        300,
      );
      await waitFor('the child log lines', async () => operator.log().includes('"logger":"reconcile"'), 10_000);
    } finally {
      await operator.stop();
    }
    const log = readFileSync(operator.proc.logPath, 'utf8');
    // What the log must have covered: the root logger (the probe server's start), the reconcile logger, and
    // the leader election. (The probe server's own child logger, "http", logs only failed requests.)
    for (const must of [
      '"msg":"Started metrics and probe server"',
      '"logger":"reconcile"',
      'Acquired leadership',
      '"msg":"Stopped"',
    ])
      expect(log).toContain(must);
    expect(logProblems(log)).toEqual([]);
    for (const line of log.trim().split('\n'))
      expect(JSON.parse(line)).toMatchObject({ component: 'ripplecache-operator', identity: 'operator-logs' });
  });

  it('the sidecar: start with Redis and a metrics listener, requests, an error, shutdown', async () => {
    const sidecar = await startSidecar({
      args: ['--redis', `redis://127.0.0.1:${redis!.port}`, '--metrics-listen', '127.0.0.1:0'],
      env: { RIPPLECACHE_LOG_LEVEL: 'debug' },
    });
    expect((await sidecar.put('k', 'v')).status).toBe(204);
    expect((await sidecar.get('k')).status).toBe(200);
    expect((await sidecar.get('missing')).status).toBe(404);
    expect((await sidecar.put('bad', 'v', { ttl: -1 })).status).toBe(400);
    await sidecar.stop();
    const out = sidecar.output();
    expect(out).toContain('"msg":"Stopped"');
    expect(logProblems(out)).toEqual([]);
  });
});
