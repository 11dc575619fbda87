/**
 * The version of the ripplecache package this process runs (its `package.json`), for
 * `ripplecache_operator_build_info`. The file is looked for upwards from this module: the repository root
 * from a source checkout (`operator/src/`), `/app` in the image (`dist/operator/src/`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in the nearest `package.json` named `ripplecache` above `from`, or `unknown`. */
export function packageVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'ripplecache' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No (readable) package.json here: look further up.
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
