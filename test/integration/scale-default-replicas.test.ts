/**
 * The scale subresource of a CacheCluster that leaves spec.replicas out (issue 14): without the
 * MutatingAdmissionPolicy of charts/ripplecache/files/policies/replicas-default.yaml the real API server
 * answers GET /scale with an InternalError (".spec.replicas does not exist"), whatever the topology; with it,
 * the topology's default is written into the object. Real kube-apiserver (v1.36, where the API is GA), no
 * operator needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_PATH } from '../../scripts/generate-crds.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { waitFor } from '../harness/ports.js';

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
}, 180_000);
afterAll(async () => {
  await cp?.stop();
});

function cacheCluster(name: string, spec: string): string {
  return `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: ${name}, namespace: default }
spec: { ${spec}, eviction: { policy: allkeys-lru, maxMemory: 64Mi } }
`;
}

async function must(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** spec.replicas of the object ('' when absent) and of its scale subresource. */
async function replicas(name: string): Promise<{ spec: string; scale: number }> {
  const spec = await must(['get', 'cc', name, '-n', 'default', '-o', 'jsonpath={.spec.replicas}']);
  const scale = JSON.parse(await must(['get', 'cc', name, '-n', 'default', '--subresource=scale', '-o', 'json'])) as {
    kind: string;
    spec: { replicas?: number };
  };
  expect(scale.kind).toBe('Scale');
  return { spec, scale: scale.spec.replicas ?? 0 };
}

describe('spec.replicas default for the scale subresource', () => {
  it('without the policy, /scale fails for a CacheCluster that leaves replicas out', async () => {
    await must(['apply', '-f', '-'], cacheCluster('before', 'topology: replication'));
    const scale = await cp.kubectl(['get', 'cc', 'before', '-n', 'default', '--subresource=scale', '-o', 'json']);
    expect(scale.code).not.toBe(0);
    expect(scale.stderr).toMatch(/spec replicas field "\.spec\.replicas" does not exist/);
  });

  it('with the policy, the default is written and /scale reads the replicas that run', async () => {
    await must(['apply', '--server-side', '--field-manager=ripplecache-tests', '-f', POLICY_PATH]);
    // The API server picks a new policy up from its informer: wait until a dry-run create shows the default.
    await waitFor(
      'the MutatingAdmissionPolicy to take effect',
      async () => {
        const r = await cp.kubectl(
          ['create', '--dry-run=server', '-o', 'jsonpath={.spec.replicas}', '-f', '-'],
          cacheCluster('probe', 'topology: replication'),
        );
        return r.code === 0 && r.stdout === '1';
      },
      60_000,
      250,
    );

    await must(['apply', '-f', '-'], cacheCluster('repl', 'topology: replication'));
    expect(await replicas('repl')).toEqual({ spec: '1', scale: 1 });
    await must(['apply', '-f', '-'], cacheCluster('sharded', 'topology: cluster'));
    expect(await replicas('sharded')).toEqual({ spec: '1', scale: 1 });
    await must(['apply', '-f', '-'], cacheCluster('single', 'topology: standalone'));
    expect(await replicas('single')).toEqual({ spec: '0', scale: 0 });
    // A value the user sets is never replaced, 0 included.
    await must(['apply', '-f', '-'], cacheCluster('none', 'topology: replication, replicas: 0'));
    expect(await replicas('none')).toEqual({ spec: '0', scale: 0 });

    // kubectl scale works from the defaulted value, and a re-apply of the manifest without replicas keeps
    // the scaled value (client-side apply: the field is not in its last-applied configuration).
    await must(['scale', 'cc/repl', '-n', 'default', '--current-replicas=1', '--replicas=3']);
    expect(await replicas('repl')).toEqual({ spec: '3', scale: 3 });
    await must(['apply', '-f', '-'], cacheCluster('repl', 'topology: replication'));
    expect((await replicas('repl')).spec).toBe('3');

    // An existing CacheCluster from before the policy gets the default on its next update.
    await must(['label', 'cc', 'before', '-n', 'default', 'touched=yes']);
    expect(await replicas('before')).toEqual({ spec: '1', scale: 1 });
  });

  it("a topology change that leaves replicas as they were gets the new topology's default", async () => {
    await must(['apply', '-f', '-'], cacheCluster('shrink', 'topology: replication'));
    expect((await replicas('shrink')).spec).toBe('1');
    // The user's manifest never named replicas; the policy's 1 stays with a client-side apply.
    await must(['apply', '-f', '-'], cacheCluster('shrink', 'topology: standalone'));
    expect(await replicas('shrink')).toEqual({ spec: '0', scale: 0 });
    // Asking for replicas with standalone is still refused by the CRD's rule.
    const refused = await cp.kubectl(['apply', '-f', '-'], cacheCluster('shrink', 'topology: standalone, replicas: 2'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/topology standalone has no read replicas/);
    // And back: the 0 standalone had becomes replication's default, 1.
    await must(['apply', '-f', '-'], cacheCluster('shrink', 'topology: replication'));
    expect(await replicas('shrink')).toEqual({ spec: '1', scale: 1 });
  });
  it("a malformed spec without replicas gets the schema's message, not the policy's", async () => {
    const doc = (name: string, spec: string) =>
      `apiVersion: cache.ripplecache.io/v1alpha1\nkind: CacheCluster\nmetadata: { name: ${name}, namespace: default }\n${spec}`;
    const refused = async (name: string, spec: string, message: RegExp) => {
      const r = await cp.kubectl(['apply', '-f', '-'], doc(name, spec));
      expect(r.code, r.stdout).not.toBe(0);
      // Neither "error applying patch: failed to convert original object to typed object" nor the CEL text
      // of a match condition with "no such key": the CRD schema's own message.
      expect(r.stderr).not.toMatch(/policy|no such key|typed object/);
      expect(r.stderr).toMatch(message);
    };
    await refused(
      'bad-ttl',
      'spec: { topology: replication, defaultTTLSeconds: "abc" }',
      /spec\.defaultTTLSeconds.*must be of type integer/,
    );
    await refused('bad-eviction', 'spec: { eviction: allkeys-lru }', /spec\.eviction.*must be of type object/);
    await refused(
      'bad-replicas',
      'spec: { topology: replication, replicas: "2" }',
      /spec\.replicas.*must be of type integer/,
    );
    await refused('bad-topology', 'spec: { topology: 3 }', /spec\.topology.*must be of type string/);
    await refused('no-spec', '', /spec: Required value/);
    await refused('list-spec', 'spec: [topology, replication]', /spec.*must be of type object/);

    // An update of an existing CacheCluster too (the topology-change conditions read oldObject as well).
    await must(['apply', '-f', '-'], cacheCluster('updated', 'topology: replication'));
    await refused(
      'updated',
      'spec: { topology: standalone, replicas: 1, defaultTTLSeconds: "abc" }',
      /spec\.defaultTTLSeconds.*must be of type integer/,
    );
    await refused(
      'updated',
      'spec: { topology: standalone, eviction: allkeys-lru }',
      /spec\.eviction.*must be of type object/,
    );

    // And defaulting still works for a well-formed spec.
    await must(['apply', '-f', '-'], cacheCluster('well-formed', 'topology: cluster'));
    expect(await replicas('well-formed')).toEqual({ spec: '1', scale: 1 });
  });
});
