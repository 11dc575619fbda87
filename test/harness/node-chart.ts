/**
 * The chart on a local node (test/e2e-local): `helm` against a harness control plane with a private helm
 * home, and `helm install` of the operator as a real pod (its sidecar-injection webhook included) from the
 * images the node imported.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ControlPlane } from './control-plane.js';
import type { LocalNode } from './node.js';
import { programImage } from './node-images.js';
import { waitFor } from './ports.js';
import { kubeBinDir, removeTempDir, repoRoot, trackTempDir } from './tools.js';

const run = promisify(execFile);

export interface NodeChart {
  /** Runs helm with `--kubeconfig` of the control plane; never throws for a non-zero exit. */
  helm(args: string[]): Promise<{ code: number; out: string }>;
  /** Removes the private helm home. */
  cleanUp(): void;
}

export function nodeChart(cp: ControlPlane): NodeChart {
  const home = mkdtempSync(join(tmpdir(), 'ripplecache-helm-e2e-'));
  trackTempDir(home);
  return {
    helm: async (args) => {
      const bin = join(await kubeBinDir(), 'helm');
      try {
        const r = await run(bin, [...args, '--kubeconfig', cp.kubeconfigPath], {
          maxBuffer: 16 * 1024 * 1024,
          env: {
            ...process.env,
            HELM_CACHE_HOME: join(home, 'cache'),
            HELM_CONFIG_HOME: join(home, 'config'),
            HELM_DATA_HOME: join(home, 'data'),
          },
        });
        return { code: 0, out: `${r.stdout}${r.stderr}` };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    },
    cleanUp: () => removeTempDir(home, 'helm'),
  };
}

/**
 * Imports the operator and sidecar images into the node and installs the chart (one operator replica, the
 * webhook on) into `namespace` (created here), then waits until the webhook's caBundle is in place, so that
 * the next pod annotated `cache.ripplecache.io/inject` gets the sidecar. `set` adds `--set` values.
 */
export async function installOperatorChart(
  cp: ControlPlane,
  node: LocalNode,
  chart: NodeChart,
  opts: { release: string; namespace: string; set?: string[] },
): Promise<void> {
  for (const spec of [await programImage('operator', repoRoot), await programImage('sidecar', repoRoot)])
    await node.importImage(spec);
  const created = await cp.kubectl(['create', 'namespace', opts.namespace]);
  if (created.code !== 0) throw new Error(`kubectl create namespace ${opts.namespace}: ${created.stderr}`);
  const [opRepo, opTag] = node.images.operator.split(/:(?=[^:]+$)/) as [string, string];
  const [scRepo, scTag] = node.images.sidecar.split(/:(?=[^:]+$)/) as [string, string];
  const install = await chart.helm([
    'install',
    opts.release,
    join(repoRoot, 'charts/ripplecache'),
    '--namespace',
    opts.namespace,
    '--set',
    `image.repository=${opRepo},image.tag=${opTag},image.pullPolicy=Never`,
    '--set',
    `sidecar.image.repository=${scRepo},sidecar.image.tag=${scTag}`,
    '--set',
    'replicaCount=1,crds.keep=false',
    ...(opts.set ?? []).flatMap((s) => ['--set', s]),
    '--wait',
    '--timeout',
    '180s',
  ]);
  if (install.code !== 0) throw new Error(`helm install failed:\n${install.out}`);
  await cp.waitForCrdsServed(['cacheclusters.cache.ripplecache.io']);
  await waitFor(
    'the webhook caBundle',
    async () => {
      const r = await cp.kubectl([
        'get',
        'mutatingwebhookconfiguration',
        `${opts.release}-ripplecache-sidecar-injector`,
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ]);
      return r.code === 0 && r.stdout.length > 0;
    },
    60_000,
    500,
  );
}
