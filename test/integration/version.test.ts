import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageVersion } from '../../common/src/version.js';

describe('packageVersion', () => {
  it("is this checkout's package.json version", async () => {
    const { default: pkg } = (await import('../../package.json', { with: { type: 'json' } })) as {
      default: { version: string };
    };
    expect(packageVersion()).toBe(pkg.version);
  });

  it('skips package.json files of other packages and says unknown when none is ours', () => {
    const root = mkdtempSync(join(tmpdir(), 'rc-version-'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'ripplecache', version: '9.8.7' }));
    const nested = join(root, 'node_modules', 'other', 'dist');
    mkdirSync(nested, { recursive: true });
    writeFileSync(
      join(root, 'node_modules', 'other', 'package.json'),
      JSON.stringify({ name: 'other', version: '1.0.0' }),
    );
    expect(packageVersion(pathToFileURL(join(nested, 'x.js')).href)).toBe('9.8.7');
    expect(packageVersion(pathToFileURL(join(tmpdir(), 'nowhere', 'x.js')).href)).toBe('unknown');
  });
});
