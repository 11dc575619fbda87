import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic next to the source, no I/O, no real timers) and `integration`
// (real control plane, real redis-server processes, real PostgreSQL; see test/harness/).
// A third, `e2e-local` (real pods on a local kubelet/containerd node, root only; test/harness/node.ts), exists
// only when RIPPLECACHE_E2E_LOCAL=1 (`make e2e-local` sets it), so that a plain `vitest run` never starts it.
const e2eLocal = process.env.RIPPLECACHE_E2E_LOCAL === '1';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'common/src/**/*.test.ts',
            'operator/src/**/*.test.ts',
            'sidecar/src/**/*.test.ts',
            'scripts/**/*.test.ts',
          ],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['test/harness/file-cleanup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Integration files each start their own servers; run them one at a time on two cores.
          fileParallelism: false,
          pool: 'forks',
        },
      },
      ...(e2eLocal
        ? [
            {
              test: {
                name: 'e2e-local',
                include: ['test/e2e-local/**/*.test.ts'],
                environment: 'node',
                setupFiles: ['test/harness/file-cleanup.ts'],
                testTimeout: 180_000,
                hookTimeout: 300_000,
                // One kubelet per machine: the files share the node's bridge, ports and cgroups.
                fileParallelism: false,
                pool: 'forks' as const,
              },
            },
          ]
        : []),
    ],
  },
});
