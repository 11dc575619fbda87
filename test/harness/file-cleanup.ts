// A vitest setup file of the integration and e2e-local projects: after each test file (after the file's own
// afterAll hooks, which stop its servers), remove the temporary directories it registered. Without it they were
// left for process exit, which vitest's worker processes do not always reach (dozens of empty
// /tmp/ripplecache-helm-* directories were found after a day of runs).
import { afterAll } from 'vitest';
import { removeTrackedTempDirs } from './tools.js';

afterAll(() => {
  removeTrackedTempDirs();
});
