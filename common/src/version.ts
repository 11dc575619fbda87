/**
 * The programs' version, for `--version` and the `*_build_info` metrics: the `version` of the ripplecache
 * package.json above this module. `common/` holds what both programs share.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Walks up from this module (common/src in a checkout, dist/common/src when compiled, /app/dist/... in
 * the image, which ships package.json) to the first package.json named `ripplecache`.
 */
export function packageVersion(moduleUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'ripplecache' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
