import { describe, expect, it } from 'vitest';
import type { CacheCluster, CacheClusterSpec } from '../api/v1alpha1/types.js';
import { FLUSH_INVALIDATION_MESSAGE, desiredFlushCronJob } from './flush-cron-job.js';
import { selectorLabels } from './labels.js';
import { cacheCluster, withSpec, withUid } from '../../../test/fixtures/cache-cluster.js';

const cc = (spec: CacheClusterSpec): CacheCluster => cacheCluster('sessions', withUid('uid-1'), withSpec(spec));

describe('desiredFlushCronJob', () => {
  it('is undefined without spec.flush', () => {
    expect(desiredFlushCronJob(cc({}))).toBeUndefined();
  });

  it('flushes the primary and publishes an all-keys invalidation on schedule', () => {
    const cj = desiredFlushCronJob(
      cc({ image: 'valkey/valkey:8', flush: { schedule: '0 2 * * *', timeZone: 'Europe/Berlin' } }),
    )!;
    expect(cj).toMatchObject({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'sessions-flush', namespace: 'shop' },
    });
    expect(cj.metadata.ownerReferences[0]).toMatchObject({ kind: 'CacheCluster', uid: 'uid-1', controller: true });
    expect(cj.spec.schedule).toBe('0 2 * * *');
    expect(cj.spec.timeZone).toBe('Europe/Berlin');
    expect(cj.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cj.spec.jobTemplate.spec.template;
    const c = pod.spec.containers[0]!;
    expect(c.image).toBe('valkey/valkey:8');
    const script = c.command?.[2] ?? '';
    expect(script).toContain(`redis-cli -h 'sessions.shop.svc' -p 6379 EVAL`);
    expect(script).toContain(`'rc:*'`);
    expect(script).not.toMatch(/FLUSHALL|FLUSHDB/); // would destroy the write-back journal
    expect(script).toContain(
      `PUBLISH 'ripplecache:invalidations' '{"v":1,"sender":"flush-cronjob","seq":1,"all":true}'`,
    );
    expect(JSON.parse(FLUSH_INVALIDATION_MESSAGE)).toEqual({ v: 1, sender: 'flush-cronjob', seq: 1, all: true });
    expect(c.env).toBeUndefined();
  });

  it('meets Pod Security restricted, and is not BestEffort', () => {
    const pod = desiredFlushCronJob(cc({ flush: { schedule: '@daily' } }))!.spec.jobTemplate.spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 999,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.containers[0]!.resources?.requests).toEqual({ cpu: '10m', memory: '16Mi' });
  });

  it('leaves timeZone out when not set', () => {
    expect(desiredFlushCronJob(cc({ flush: { schedule: '@daily' } }))!.spec).not.toHaveProperty('timeZone');
  });

  it('authenticates redis-cli from the Secret', () => {
    const cj = desiredFlushCronJob(
      cc({ flush: { schedule: '@daily' }, auth: { secretRef: { name: 'sessions-auth', key: 'password' } } }),
    )!;
    expect(cj.spec.jobTemplate.spec.template.spec.containers[0]!.env).toEqual([
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'sessions-auth', key: 'password' } } },
    ]);
  });

  it('labels its pods so that no Redis Service or PDB selects them', () => {
    const labels = desiredFlushCronJob(cc({ flush: { schedule: '@daily' } }))!.spec.jobTemplate.spec.template.metadata
      .labels;
    const selector = selectorLabels(cc({}));
    const selected = Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(selected).toBe(false);
    expect(labels['app.kubernetes.io/component']).toBe('flush');
  });

  it('gives deep-equal output for equal input', () => {
    const spec: CacheClusterSpec = { flush: { schedule: '@daily', timeZone: 'UTC' } };
    expect(desiredFlushCronJob(cc(spec))).toEqual(desiredFlushCronJob(cc(structuredClone(spec))));
  });
});
