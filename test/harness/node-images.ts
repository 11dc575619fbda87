import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A container image made on this machine, without a registry: a root filesystem holding host binaries and
 * the shared libraries `ldd` names for them, packed as a single-layer docker-archive tar that
 * `ctr images import` reads. The Dockerfiles in images/ stay the images users build; these run the same
 * entrypoints as the same users.
 */
export interface LocalImageSpec {
  /** The image reference, e.g. `localhost/ripplecache/redis:e2e-local`. */
  name: string;
  /** Host files copied to the same path in the image (symlinks followed), with their libraries. */
  binaries: { from: string; to?: string }[];
  /** Host directories copied (recursively, symlinks followed) to a path in the image. */
  trees?: { from: string; to: string }[];
  /** Extra files: path in the image → content. */
  files?: Record<string, string>;
  /** Empty directories to create (mode 1777 for /tmp). */
  dirs?: string[];
  entrypoint?: string[];
  cmd?: string[];
  /** `uid:gid`. */
  user: string;
  workingDir?: string;
  env?: string[];
}

/** The shared libraries (and the dynamic loader) a dynamically linked binary needs, from `ldd`. */
async function libraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run('ldd', [binary])).stdout;
  } catch {
    return []; // "not a dynamic executable": a static binary needs nothing
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

async function copyInto(root: string, from: string, to: string): Promise<void> {
  const dest = join(root, to);
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(from, dest); // copyFile follows symlinks
  await chmod(dest, (await stat(from)).mode & 0o777);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Builds the image's docker-archive tar in `workDir` and returns its path. */
export async function buildLocalImage(spec: LocalImageSpec, workDir: string): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'image-'));
  const root = join(dir, 'rootfs');
  await mkdir(root);
  const copied = new Set<string>();
  for (const b of spec.binaries) {
    const to = b.to ?? b.from;
    await copyInto(root, b.from, to);
    for (const lib of await libraries(b.from)) {
      if (copied.has(lib)) continue;
      copied.add(lib);
      await copyInto(root, lib, lib);
    }
  }
  for (const t of spec.trees ?? []) {
    await mkdir(dirname(join(root, t.to)), { recursive: true });
    await run('cp', ['-rL', t.from, join(root, t.to)]);
  }
  for (const d of spec.dirs ?? []) {
    await mkdir(join(root, d), { recursive: true });
    if (d === '/tmp') await chmod(join(root, d), 0o1777);
  }
  for (const [path, content] of Object.entries(spec.files ?? {})) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  const out = join(dir, 'out');
  await mkdir(out);
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', join(out, 'layer.tar'), '.']);
  const diffId = `sha256:${await sha256File(join(out, 'layer.tar'))}`;
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: spec.user,
      Entrypoint: spec.entrypoint ?? null,
      Cmd: spec.cmd ?? null,
      WorkingDir: spec.workingDir ?? '/',
      Env: spec.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin'],
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'test/harness/node-images.ts' }],
  };
  const configJson = JSON.stringify(config);
  const configName = `${createHash('sha256').update(configJson).digest('hex')}.json`;
  await writeFile(join(out, configName), configJson);
  await writeFile(
    join(out, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: [spec.name], Layers: ['layer.tar'] }]),
  );
  const tarPath = join(workDir, `${spec.name.replace(/[^a-zA-Z0-9.-]+/g, '_')}.tar`);
  await run('tar', ['-C', out, '-cf', tarPath, '.']);
  await rm(dir, { recursive: true, force: true });
  return tarPath;
}

/** Minimal /etc/passwd and /etc/group naming root, the given users and nobody. */
function accounts(users: { name: string; uid: number; gid: number; home: string }[]): Record<string, string> {
  const passwd = [
    'root:x:0:0:root:/root:/bin/sh',
    ...users.map((u) => `${u.name}:x:${u.uid}:${u.gid}::${u.home}:/bin/sh`),
  ];
  const group = ['root:x:0:', ...users.map((u) => `${u.name}:x:${u.gid}:`)];
  return {
    '/etc/passwd': `${[...passwd, 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false'].join('\n')}\n`,
    '/etc/group': `${[...group, 'nogroup:x:65534:'].join('\n')}\n`,
  };
}

/** Names of the images the local node provides. */
export const LOCAL_IMAGES = {
  pause: 'localhost/ripplecache/pause:e2e-local',
  redis: 'localhost/ripplecache/redis:e2e-local',
  operator: 'localhost/ripplecache/operator:e2e-local',
  sidecar: 'localhost/ripplecache/sidecar:e2e-local',
  helmTest: 'localhost/ripplecache/helm-test:e2e-local',
} as const;

/** The pause image: the static `pause` built by tools/node/build.sh, as uid 65535 like upstream's. */
export function pauseImage(pauseBinary: string): LocalImageSpec {
  return {
    name: LOCAL_IMAGES.pause,
    binaries: [{ from: pauseBinary, to: '/pause' }],
    entrypoint: ['/pause'],
    user: '65535:65535',
  };
}

/**
 * The Redis image for CacheCluster pods: Debian's redis-server and redis-cli, plus the `sh` and `grep` the
 * operator's StatefulSet runs (its entrypoint script and readiness probe), and the `redis` user (uid 999) the
 * pods run as (see operator/src/desired/pod-security.ts).
 */
export function redisImage(): LocalImageSpec {
  return {
    name: LOCAL_IMAGES.redis,
    binaries: [
      { from: '/usr/bin/redis-server' },
      { from: '/usr/bin/redis-cli' },
      { from: '/bin/sh' },
      { from: '/bin/grep' },
    ],
    dirs: ['/tmp', '/data'],
    files: accounts([{ name: 'redis', uid: 999, gid: 1000, home: '/data' }]),
    cmd: ['redis-server'],
    workingDir: '/data',
    user: '999:1000',
  };
}

/**
 * The image of the chart's `helm test` Pod (value `tests.image`, busybox upstream): what its script runs,
 * `sh`, `wget`, `seq`, `grep` and `sleep`, from the host, as the non-root user the Pod runs as.
 */
export function helmTestImage(): LocalImageSpec {
  return {
    name: LOCAL_IMAGES.helmTest,
    binaries: ['/bin/sh', '/usr/bin/wget', '/usr/bin/seq', '/bin/grep', '/bin/sleep'].map((from) => ({ from })),
    dirs: ['/tmp'],
    files: accounts([{ name: 'nonroot', uid: 65532, gid: 65532, home: '/tmp' }]),
    cmd: ['sh'],
    user: '65532:65532',
  };
}

/**
 * The operator or sidecar image, laid out as images/*.Dockerfile lays it out (distroless nodejs20): Node at
 * /nodejs/bin/node, the compiled `dist/common` and `dist/<program>` and the production `node_modules` under
 * /app, user 65532, entrypoint `/nodejs/bin/node dist/<program>/src/main.js` (the operator: its bundle,
 * `dist/operator/bundle/main.mjs`). Needs `dist/` (`npm run build`).
 */
export async function programImage(program: 'operator' | 'sidecar', repo: string): Promise<LocalImageSpec> {
  for (const d of [
    'dist/common',
    `dist/${program}`,
    ...(program === 'operator' ? ['dist/operator/bundle/main.mjs'] : []),
  ]) {
    if (!existsSync(join(repo, d))) throw new Error(`${d} is missing: run \`npm run build\` first`);
  }
  // The production dependency tree, as npm resolves it (the image's `npm prune --omit=dev`).
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: repo,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' })); // npm ls exits 1 on extraneous packages
  const modules = join(repo, 'node_modules');
  const packages = [...new Set(stdout.split('\n').filter((p) => p.startsWith(`${modules}/`)))]
    .map((p) => relative(modules, p))
    // A package nested in another one's node_modules is copied along with it.
    .filter((rel, _, all) => !all.some((other) => other !== rel && rel.startsWith(`${other}/`)));
  return {
    name: LOCAL_IMAGES[program],
    binaries: [{ from: process.execPath, to: '/nodejs/bin/node' }],
    trees: [
      { from: join(repo, 'package.json'), to: '/app/package.json' },
      { from: join(repo, 'dist/common'), to: '/app/dist/common' },
      { from: join(repo, `dist/${program}`), to: `/app/dist/${program}` },
      ...packages.map((rel) => ({ from: join(modules, rel), to: `/app/node_modules/${rel}` })),
    ],
    dirs: ['/tmp'],
    files: accounts([{ name: 'nonroot', uid: 65532, gid: 65532, home: '/home/nonroot' }]),
    // As images/operator.Dockerfile: the operator runs its bundle (scripts/bundle-operator.ts) with a 1 MiB
    // young generation.
    entrypoint: [
      '/nodejs/bin/node',
      ...(program === 'operator'
        ? ['--max-semi-space-size=1', 'dist/operator/bundle/main.mjs']
        : [`dist/${program}/src/main.js`]),
    ],
    workingDir: '/app',
    env: ['NODE_ENV=production', 'PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin'],
    user: '65532:65532',
  };
}
