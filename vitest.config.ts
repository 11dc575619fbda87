import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic next to the source, no I/O, no real timers) and `integration`
// (real control plane, real redis-server processes, real PostgreSQL; see test/harness/).
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
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Integration files each start their own servers; run them one at a time on two cores.
          fileParallelism: false,
          pool: 'forks',
        },
      },
    ],
  },
});
