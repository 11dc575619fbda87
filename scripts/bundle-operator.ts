/**
 * Bundles the compiled operator (dist/operator/src/main.js, from `tsc -p tsconfig.build.json`) into one
 * minified ES module, dist/operator/bundle/main.mjs (with its source map beside it), which the operator
 * image runs.
 *
 * Why (issue 11): most of an idle operator's memory is the code it loads, and almost all of that is
 * @kubernetes/client-node (its dist/config.js imports the whole generated API: every model and API class,
 * ~11 MiB of JavaScript in ~1,500 files). V8 keeps each module's source text and builds its records; one
 * minified file is a third of the text and one module. README "Operator at scale" has the figures.
 *
 * Not bundled: the `yaml` package (the operator loads it with createRequire on its first rendering of a
 * sidecar config, so that an idle operator never pays for it; it resolves from node_modules, which the
 * image keeps), and the optional native add-ons of `ws` (bufferutil, utf-8-validate), which it loads in a
 * try/catch. Node built-ins are left to Node; `require` inside the bundled CommonJS packages is a real
 * `require` (createRequire), for the built-ins they ask for.
 */
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/operator/bundle/main.mjs');
const started = Date.now();
await build({
  entryPoints: [join(root, 'dist/operator/src/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  // Class and function names survive minification, so stack traces and `err.name` checks still read well.
  keepNames: true,
  sourcemap: 'external',
  external: ['yaml', 'bufferutil', 'utf-8-validate'],
  banner: {
    js: "import { createRequire as __rcCreateRequire } from 'node:module'; const require = __rcCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
const size = statSync(outfile).size;
console.log(`[bundle-operator] ${outfile} (${(size / 1024 / 1024).toFixed(1)} MiB) in ${Date.now() - started} ms`);
