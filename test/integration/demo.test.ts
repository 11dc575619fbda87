/**
 * `make demo` (scripts/demo.ts) as a newcomer sees it: the whole walkthrough against its own control plane,
 * checking that the events it shows are the product's own and that the invalid-spec step shows the intended
 * rejection, without the API server's `<nil>` line.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/tools.js';

function runDemo(limitMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: repoRoot,
      env: { ...process.env, DEMO_KEEP: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), limitMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The lines of the step whose title starts with `title`, up to the next step. */
function section(out: string, title: string): string[] {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`==> ${title}`));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.startsWith('==> '));
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l.trim() !== '');
}

describe('make demo', () => {
  it('shows only the CacheClusters events and the intended rejection message', { timeout: 420_000 }, async () => {
    const r = await runDemo(400_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).not.toContain('<nil>');

    const events = section(r.stdout, 'What the operator recorded');
    expect(events[0]).toMatch(/^\$ kubectl get events --field-selector involvedObject\.kind=CacheCluster/);
    expect(events[1]).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    const rows = events.slice(2);
    // Both example CacheClusters became Ready, and the live eviction change was recorded.
    expect(rows.length).toBeGreaterThan(2);
    for (const row of rows) expect(row, events.join('\n')).toMatch(/\scachecluster\/(sessions|catalog)\s/);
    expect(rows.join('\n')).not.toMatch(/FailedToUpdateEndpoint|loopback/);

    const rejection = section(r.stdout, 'An invalid CacheCluster is rejected');
    expect(rejection.slice(1)).toEqual([
      'The CacheCluster "broken" is invalid: spec.eviction: Invalid value: set exactly one of eviction.maxMemory and eviction.maxMemoryPercent',
    ]);
  });
});
