/**
 * tools/kube/build.sh is never silent for long: while `go build` runs, and while a second caller waits on
 * the lock of a build in progress, it logs a heartbeat line with the elapsed time. A fake `go` (which sleeps,
 * then writes an executable where `-o` or $GOBIN points) and a short heartbeat interval keep this fast; the
 * cache is a temporary directory (RIPPLECACHE_TOOLS_CACHE), never the real one.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, trackTempDir } from '../harness/tools.js';

const FAKE_GO = `#!/bin/sh
# Stands in for go build -o FILE / go install (GOBIN): sleeps $FAKE_GO_SECONDS, then writes an executable.
sleep "\${FAKE_GO_SECONDS:-0}"
out=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out=$a
  prev=$a
done
[ "$1" = install ] && out="$GOBIN/helm"
printf '#!/bin/sh\\n' > "$out"
chmod +x "$out"
`;

let dir: string;
let env: NodeJS.ProcessEnv;

function build(extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, 'tools/kube/build.sh')], {
      env: { ...env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ripplecache-build-sh-'));
  trackTempDir(dir);
  writeFileSync(join(dir, 'go'), FAKE_GO);
  chmodSync(join(dir, 'go'), 0o755);
  env = {
    PATH: `${dir}:${process.env.PATH}`,
    HOME: dir,
    RIPPLECACHE_TOOLS_CACHE: join(dir, 'cache'),
    RIPPLECACHE_BUILD_HEARTBEAT_SECONDS: '1',
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tools/kube/build.sh progress', () => {
  let binDir: string;

  it('a build with an instant go: every tool built, the bin directory on the last stdout line', async () => {
    const r = await build({ FAKE_GO_SECONDS: '0' });
    expect(r.code, r.stderr).toBe(0);
    binDir = r.stdout.trim().split('\n').pop()!;
    expect(binDir.startsWith(join(dir, 'cache'))).toBe(true);
    for (const tool of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl', 'helm'])
      expect(r.stderr).toContain(`${tool}: built in`);
    // Honest estimates up front.
    expect(r.stderr).toMatch(/kube-apiserver: building .*about 8 min/);
  });

  it('logs a heartbeat with the elapsed time while go build runs', async () => {
    rmSync(join(binDir, 'kube-apiserver'));
    const r = await build({ FAKE_GO_SECONDS: '3.5' });
    expect(r.code, r.stderr).toBe(0);
    const beats = r.stderr
      .split('\n')
      .filter((l) => /kube-apiserver: go build: still running \(\d+s elapsed\)/.test(l));
    expect(beats.length, r.stderr).toBeGreaterThanOrEqual(2);
    // The heartbeat stops with the build: nothing after "built in".
    const lines = r.stderr.trim().split('\n');
    const built = lines.findIndex((l) => l.includes('kube-apiserver: built in'));
    expect(lines.slice(built).some((l) => l.includes('still running'))).toBe(false);
  });

  it('logs a heartbeat while it waits for another caller that holds the lock', async () => {
    // Another caller: holds the build's lock for 3.5 s (flock(1) on the same lock file).
    const lock = join(binDir, '..', '.lock');
    const holder = spawn('flock', [lock, 'sleep', '3.5'], { stdio: 'ignore' });
    const released = new Promise((resolve) => holder.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const r = await build({ FAKE_GO_SECONDS: '0' });
    await released;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/another build of .* is running \(a cold build takes about 20 minutes on two cores\)/);
    const waits = r.stderr
      .split('\n')
      .filter((l) => /waiting for the other build: still running \(\d+s elapsed\)/.test(l));
    expect(waits.length, r.stderr).toBeGreaterThanOrEqual(2);
    expect(r.stdout.trim().split('\n').pop()).toBe(binDir);
  });
});
