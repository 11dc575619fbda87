/**
 * The API server itself (OpenAPI schema + CEL rules from crds/) rejects bad CacheClusters with a
 * readable message, and stores nothing for them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
});
afterAll(async () => {
  await cp?.stop();
});

function cacheCluster(name: string, spec: string): string {
  return `apiVersion: cache.ripplecache.io/v1alpha1
kind: CacheCluster
metadata: { name: ${name}, namespace: default }
spec:
${spec
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;
}

const invalid: Array<[string, string, RegExp]> = [
  [
    'unknown eviction policy',
    'eviction: { policy: allkeys-fifo, maxMemory: 64Mi }',
    /spec\.eviction\.policy: Unsupported value: "allkeys-fifo"/,
  ],
  [
    'both maxMemory and maxMemoryPercent',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi, maxMemoryPercent: 50 }\nresources: { limits: { memory: 256Mi } }',
    /set exactly one of eviction\.maxMemory and eviction\.maxMemoryPercent/,
  ],
  [
    'neither maxMemory nor maxMemoryPercent',
    'eviction: { policy: allkeys-lru }',
    /set exactly one of eviction\.maxMemory and eviction\.maxMemoryPercent/,
  ],
  [
    'maxMemoryPercent without a memory limit',
    'eviction: { policy: allkeys-lru, maxMemoryPercent: 75 }',
    /maxMemoryPercent is a percentage of resources\.limits\.memory/,
  ],
  [
    'maxMemoryPercent above 95',
    'eviction: { policy: allkeys-lru, maxMemoryPercent: 99 }\nresources: { limits: { memory: 256Mi } }',
    /maxMemoryPercent: Invalid value: 99: .*95/,
  ],
  [
    'maxMemoryPercent below 10',
    'eviction: { policy: allkeys-lru, maxMemoryPercent: 5 }\nresources: { limits: { memory: 256Mi } }',
    /maxMemoryPercent: Invalid value: 5: .*10/,
  ],
  [
    'maxMemory larger than the memory limit',
    'eviction: { policy: allkeys-lru, maxMemory: 1Gi }\nresources: { limits: { memory: 256Mi } }',
    /maxMemory must not exceed resources\.limits\.memory/,
  ],
  [
    'negative replicas',
    'topology: replication\nreplicas: -1\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /spec\.replicas: Invalid value: -1: .*greater than or equal to 0/,
  ],
  [
    'malformed cron schedule',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "every day" }',
    /flush\.schedule must be a cron expression/,
  ],
  [
    'out-of-range cron minute',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "61 * * * *" }',
    /flush\.schedule must be a cron expression/,
  ],
  [
    'malformed time zone',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "0 2 * * *", timeZone: "not a zone!" }',
    /timeZone/,
  ],
  [
    'shards outside topology cluster',
    'topology: replication\nshards: 3\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /shards applies only to topology: cluster/,
  ],
  [
    'write-back with an allkeys-* eviction policy',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nsidecar: { writePolicy: write-back }',
    /write-back keeps acknowledged writes in Redis until the database has them/,
  ],
  [
    'write-back with the default eviction policy',
    'sidecar: { writePolicy: write-back }',
    /eviction\.policy to noeviction or a volatile-\* policy/,
  ],
  [
    'an L1 of 0 bytes',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nsidecar: { l1: { maxBytes: "0" } }',
    /sidecar\.l1\.maxBytes must be between 1 byte and 256Ti/,
  ],
  [
    'an L1 above 256Ti',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nsidecar: { l1: { maxBytes: 1Pi } }',
    /sidecar\.l1\.maxBytes must be between 1 byte and 256Ti/,
  ],
  [
    'a table name part over 63 characters',
    `eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nsidecar: { origin: { postgres: { secretRef: { name: db, key: url }, table: ${'t'.repeat(64)} } } }`,
    /spec\.sidecar\.origin\.postgres\.table: Invalid value/,
  ],
  [
    'unknown topology',
    'topology: sentinel\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /spec\.topology: Unsupported value: "sentinel"/,
  ],
];

describe('CacheCluster schema validation by the API server', () => {
  it.each(invalid)('rejects %s with a readable message', async (_what, spec, message) => {
    const res = await cp.kubectl(['apply', '-f', '-'], cacheCluster('bad', spec));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/is invalid/);
    expect(res.stderr).toMatch(message);
    const get = await cp.kubectl(['get', 'cachecluster', 'bad', '-n', 'default']);
    expect(get.code).not.toBe(0); // nothing was stored
  });

  it('accepts the examples and the valid edge cases', async () => {
    const ok = await cp.kubectl(
      ['apply', '-f', '-'],
      cacheCluster(
        'good',
        `
topology: replication
replicas: 2
eviction: { policy: volatile-lfu, maxMemoryPercent: 95 }
resources: { limits: { memory: 256Mi } }
flush: { schedule: "*/15 * * * *", timeZone: America/New_York }
`,
      ),
    );
    expect(ok.code, ok.stderr).toBe(0);
    const writeBack = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      cacheCluster('wb', 'eviction: { policy: volatile-lru, maxMemory: 64Mi }\nsidecar: { writePolicy: write-back }'),
    );
    expect(writeBack.code, writeBack.stderr).toBe(0);
    const examples = await cp.kubectl(['apply', '--dry-run=server', '-f', 'examples/']);
    expect(examples.code, examples.stderr).toBe(0);
  });

  it('documents its fields for kubectl explain and shows printer columns', async () => {
    const explain = await cp.kubectl(['explain', 'cachecluster.spec.eviction']);
    expect(explain.code, explain.stderr).toBe(0);
    expect(explain.stdout).toMatch(/policy/);
    expect(explain.stdout).toMatch(/maxMemoryPercent/);
    const policy = await cp.kubectl(['explain', 'cachecluster.spec.eviction.policy']);
    expect(policy.stdout).toMatch(/allkeys-lru/);
    const wide = await cp.kubectl(['get', 'cc', '-n', 'default', '-o', 'wide']);
    expect(wide.code, wide.stderr).toBe(0);
    expect(wide.stdout.split('\n')[0]).toMatch(/TOPOLOGY\s+POLICY\s+READY\s+PHASE\s+MAXMEMORY\s+PRIMARY\s+AGE/);
    expect(wide.stdout).toMatch(/good\s+replication\s+volatile-lfu/);
  });
});
