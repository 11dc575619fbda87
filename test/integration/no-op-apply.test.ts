/**
 * A reconcile of an unchanged CacheCluster sends no write, even when the API server stored its quantities in
 * another form than the operator wrote them (`0.5` → `500m`, `1024Mi` → `1Gi`): the operator compares
 * quantities by amount (`isSubset`, `sameQuantity`). Before, it compared them as text and applied the
 * StatefulSet again on every reconcile. Real control plane, real operator process; counted with the operator's
 * own request metric (a server-side apply that changes nothing keeps the resourceVersion, and the controller's
 * status writes change it anyway, so the resourceVersion would not show it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheCluster, cacheClusterYaml, inNamespace, withResources } from '../fixtures/cache-cluster.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startOperator, type OperatorProcess } from '../harness/operator.js';
import { waitFor } from '../harness/ports.js';

const NS = 'default';
let cp: ControlPlane;
let operator: OperatorProcess;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  operator = await startOperator({
    kubeconfigPath: cp.kubeconfigPath,
    identity: 'no-op-apply',
    extraArgs: ['--resync-seconds', '1'],
  });
});

afterAll(async () => {
  await operator?.stop().catch(() => undefined);
  await cp?.stop();
});

describe('a no-op reconcile', () => {
  it('applies nothing again when the API server rewrote the quantities it stores', async () => {
    const yaml = cacheClusterYaml(
      cacheCluster(
        'quant',
        inNamespace(NS),
        withResources({ requests: { cpu: '0.5', memory: '1024Mi' }, limits: { memory: '1024Mi' } }),
      ),
    );
    const applied = await cp.kubectl(['apply', '-f', '-'], yaml);
    expect(applied.code, applied.stderr).toBe(0);
    let sts: any;
    await waitFor(
      'the StatefulSet',
      async () => {
        const r = await cp.kubectl(['get', 'statefulset', 'quant', '-n', NS, '-o', 'json']);
        sts = r.code === 0 ? JSON.parse(r.stdout) : undefined;
        return sts !== undefined;
      },
      60_000,
      250,
    );
    // The API server stores them canonically: what the operator sent differs as text.
    const redis = sts.spec.template.spec.containers.find((c: any) => c.name === 'redis');
    expect(redis.resources.requests).toMatchObject({ cpu: '500m', memory: '1Gi' });
    expect(redis.resources.limits).toMatchObject({ memory: '1Gi' });

    const applies = () =>
      operator.metric('ripplecache_operator_kube_api_requests_total', { verb: 'apply', resource: 'StatefulSet' });
    // Let the first reconciles settle (the StatefulSet applied once, maybe twice while the cache caught up).
    const reconcilesAt = async () => operator.metric('ripplecache_operator_reconcile_total');
    const r0 = await reconcilesAt();
    await waitFor('two more reconciles', async () => (await reconcilesAt()) >= r0 + 2, 30_000, 250);
    const before = await applies();
    const r1 = await reconcilesAt();
    await waitFor('four more reconciles', async () => (await reconcilesAt()) >= r1 + 4, 30_000, 250);
    expect(await applies()).toBe(before);
    expect(before).toBeGreaterThanOrEqual(1);
  });
});
