/**
 * The API server itself (OpenAPI schema + CEL rules from crds/) rejects bad CacheClusters with a
 * readable message, and stores nothing for them.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIME_ZONES } from '../../operator/src/api/v1alpha1/time-zones.js';
import { cacheCluster as cacheClusterObject, inNamespace, withEviction, withFlush } from '../fixtures/cache-cluster.js';
import { prng } from '../fixtures/prng.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';

let cp: ControlPlane;
let objects: k8s.KubernetesObjectApi;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.applyCrds();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  objects = k8s.KubernetesObjectApi.makeApiClient(kc);
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
    'durability replicated on a standalone cluster (no replica to wait for)',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\ndurability: { mode: replicated }',
    /durability\.mode replicated waits for a replica: it needs topology replication with replicas >= 1/,
  ],
  [
    'durability replicated with replicas: 0',
    'topology: replication\nreplicas: 0\neviction: { policy: allkeys-lru, maxMemory: 64Mi }\ndurability: { mode: replicated }',
    /durability\.mode replicated waits for a replica/,
  ],
  [
    'durability timeoutMs of 0',
    'topology: replication\neviction: { policy: allkeys-lru, maxMemory: 64Mi }\ndurability: { timeoutMs: 0 }',
    /spec\.durability\.timeoutMs: Invalid value: 0: .*greater than or equal to 1/,
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
    'day of week 7 (the CronJob API allows 0-6)',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "0 2 * * 7" }',
    /flush\.schedule must be a cron expression/,
  ],
  [
    'a reversed cron range',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "0 5-1 * * *" }',
    /flush\.schedule must be a cron expression/,
  ],
  ...['Mars/Olympus', 'Europe/Berlinn', 'Local', 'UTC+5'].map((zone): [string, string, RegExp] => [
    `unknown time zone ${zone}`,
    `eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nflush: { schedule: "0 2 * * *", timeZone: "${zone}" }`,
    /flush\.timeZone must be a time zone name of the IANA database/,
  ]),
  [
    'maxMemory of 100Ei',
    'eviction: { policy: allkeys-lru, maxMemory: 100Ei }',
    /eviction\.maxMemory must be below 8Pi/,
  ],
  [
    'a negative memory limit',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { limits: { memory: -512Mi } }',
    /resources\.limits and resources\.requests must not be negative/,
  ],
  [
    'a negative cpu request',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { requests: { cpu: -100m } }',
    /resources\.limits and resources\.requests must not be negative/,
  ],
  [
    'a 1Ki memory limit with maxMemoryPercent (512 bytes, below 1Mi)',
    'eviction: { policy: allkeys-lru, maxMemoryPercent: 50 }\nresources: { limits: { memory: 1Ki } }',
    /must be at least 1Mi: raise the memory limit or the percentage/,
  ],
  [
    'a 1Mi memory limit with the default eviction (75 %, below 1Mi)',
    'resources: { limits: { memory: 1Mi } }',
    /maxmemory, 75% of resources\.limits\.memory when eviction sets neither maxMemory nor maxMemoryPercent, must be at least 1Mi/,
  ],
  [
    'a memory limit of 10Ei',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { limits: { memory: 10Ei } }',
    /resources\.limits\.memory must be below 8Pi/,
  ],
  [
    'requests.memory above limits.memory',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { limits: { memory: 512Mi }, requests: { memory: 1Gi } }',
    /resources\.requests must not exceed resources\.limits/,
  ],
  [
    'an image with a leading space',
    'image: " redis:7.2-alpine"\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /spec\.image: Invalid value/,
  ],
  [
    'an image with upper case in its path',
    'image: "Redis:7"\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /spec\.image: Invalid value/,
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
    'a Redis Cluster of fewer than 3 shards',
    'topology: cluster\nshards: 2\neviction: { policy: allkeys-lru, maxMemory: 64Mi }',
    /spec\.shards: Invalid value: 2: spec\.shards in body should be greater than or equal to 3/,
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
  // ---- persistence ----
  [
    'persistence mode aof without storage',
    'persistence: { mode: aof }',
    /persistence\.mode rdb and aof write to a volume: set persistence\.storage\.size/,
  ],
  [
    'persistence mode rdb without storage',
    'persistence: { mode: rdb }',
    /persistence\.mode rdb and aof write to a volume/,
  ],
  [
    'an unknown persistence mode',
    'persistence: { mode: always }',
    /spec\.persistence\.mode: Unsupported value: "always"/,
  ],
  [
    'storage without a size',
    'persistence: { mode: aof, storage: { className: fast } }',
    /spec\.persistence\.storage\.size: Required value/,
  ],
  [
    'a storage size of 0',
    'persistence: { mode: aof, storage: { size: "0" } }',
    /persistence\.storage\.size must be a positive quantity of bytes/,
  ],
  [
    'a storage size in millibytes',
    'persistence: { mode: aof, storage: { size: 256m } }',
    /spec\.persistence\.storage\.size: Invalid value/,
  ],
  [
    'a retention policy without storage',
    'persistence: { persistentVolumeClaimRetentionPolicy: { whenDeleted: Retain } }',
    /persistentVolumeClaimRetentionPolicy applies only with persistence\.storage/,
  ],
  [
    'an unknown retention policy',
    'persistence: { mode: aof, storage: { size: 1Gi }, persistentVolumeClaimRetentionPolicy: { whenScaled: Keep } }',
    /whenScaled: Unsupported value: "Keep"/,
  ],
  // ---- podTemplate ----
  ...[
    'cache.ripplecache.io/role',
    'cache.ripplecache.io/cluster',
    'app.kubernetes.io/component',
    'app.kubernetes.io/instance',
    'statefulset.kubernetes.io/pod-name',
  ].map((key): [string, string, RegExp] => [
    `a pod label ${key}`,
    `podTemplate: { metadata: { labels: { "${key}": x } } }`,
    /podTemplate\.metadata\.labels must not set the labels the operator and the StatefulSet controller set/,
  ]),
  [
    'the restart-hash pod annotation',
    'podTemplate: { metadata: { annotations: { "cache.ripplecache.io/restart-hash": "0" } } }',
    /podTemplate\.metadata\.annotations must not set the operator's annotations/,
  ],
  [
    'a pod label key with a space',
    'podTemplate: { metadata: { labels: { "bad key": x } } }',
    /keys of podTemplate labels, annotations, nodeSelector and matchLabels must be label keys/,
  ],
  [
    'a pod label value with a space',
    'podTemplate: { metadata: { labels: { team: "a b" } } }',
    /spec\.podTemplate\.metadata\.labels\.team: Invalid value/,
  ],
  [
    'a nodeSelector key with a name part over 63 characters',
    `podTemplate: { spec: { nodeSelector: { "example.com/${'n'.repeat(64)}": x } } }`,
    /must be label keys/,
  ],
  [
    'a toleration operator Maybe',
    'podTemplate: { spec: { tolerations: [{ key: k, operator: Maybe }] } }',
    /spec\.podTemplate\.spec\.tolerations\[0\]\.operator: Unsupported value: "Maybe"/,
  ],
  [
    'a pod anti-affinity term without topologyKey',
    'podTemplate: { spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { a: b } } }] } } } }',
    /topologyKey: Required value/,
  ],
  [
    'a preferred node affinity weight of 0',
    'podTemplate: { spec: { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 0, preference: {} }] } } } }',
    /weight: Invalid value: 0: .*greater than or equal to 1/,
  ],
  [
    'a topology spread constraint with maxSkew 0',
    'podTemplate: { spec: { topologySpreadConstraints: [{ maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule }] } }',
    /maxSkew: Invalid value: 0/,
  ],
  [
    // The message names the percentage that was set, not the default.
    'maxMemoryPercent 10 of a 5Mi memory limit (below 1Mi)',
    'eviction: { policy: allkeys-lru, maxMemoryPercent: 10 }\nresources: { limits: { memory: 5Mi } }',
    /Invalid value: maxmemory, eviction\.maxMemoryPercent of resources\.limits\.memory, must be at least 1Mi/,
  ],
  [
    'a maxMemory of fractional bytes',
    'eviction: { policy: allkeys-lru, maxMemory: "1048576.5" }',
    /spec\.eviction\.maxMemory: Invalid value: eviction\.maxMemory must be a whole number of bytes/,
  ],
  [
    'a maxMemory of 1.3Ki (1331.2 bytes)',
    'eviction: { policy: allkeys-lru, maxMemory: 1.3Ki }',
    /eviction\.maxMemory must be a whole number of bytes/,
  ],
  [
    'a toleration with operator Exists and a value',
    'podTemplate: { spec: { tolerations: [{ key: k, operator: Exists, value: v }] } }',
    /spec\.podTemplate\.spec\.tolerations\[0\]\.value: Forbidden: a toleration with operator Exists matches every value/,
  ],
  [
    'a toleration with tolerationSeconds and effect NoSchedule',
    'podTemplate: { spec: { tolerations: [{ key: k, operator: Exists, effect: NoSchedule, tolerationSeconds: 5 }] } }',
    /tolerations\[0\]\.tolerationSeconds: Forbidden: tolerationSeconds applies only to effect NoExecute/,
  ],
  [
    'a toleration with tolerationSeconds and no effect',
    'podTemplate: { spec: { tolerations: [{ key: k, operator: Exists, tolerationSeconds: 5 }] } }',
    /tolerationSeconds applies only to effect NoExecute/,
  ],
  [
    'a toleration without key and with operator Equal',
    'podTemplate: { spec: { tolerations: [{ operator: Equal, value: v }] } }',
    /tolerations\[0\]\.operator: Invalid value: .*needs operator Exists/,
  ],
  [
    'a toleration key that is not a label key',
    'podTemplate: { spec: { tolerations: [{ key: "a b", operator: Exists }] } }',
    /tolerations\[0\]\.key: Invalid value: .*must be a label key/,
  ],
  [
    'a toleration value that is not a label value',
    'podTemplate: { spec: { tolerations: [{ key: k, value: "a b" }] } }',
    /tolerations\[0\]\.value: Invalid value: "a b"/,
  ],
  [
    'a node affinity requirement In without values',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: k, operator: In }] }] } } } } }',
    /nodeSelectorTerms\[0\]\.matchExpressions\[0\]\.values: Required value: operator In and NotIn need values/,
  ],
  [
    'a node affinity requirement NotIn with empty values',
    'podTemplate: { spec: { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: k, operator: NotIn, values: [] }] } }] } } } }',
    /matchExpressions\[0\]\.values: Required value: operator In and NotIn need values/,
  ],
  [
    'a node affinity requirement Exists with values',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: k, operator: Exists, values: [a] }] }] } } } } }',
    /matchExpressions\[0\]\.values: Forbidden: operator Exists and DoesNotExist take no values/,
  ],
  [
    'a node affinity requirement Gt with two values',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: k, operator: Gt, values: ["1", "2"] }] }] } } } } }',
    /matchExpressions\[0\]\.values: Invalid value: .*operator Gt and Lt need exactly one value, an integer/,
  ],
  [
    'a node affinity requirement Lt with a value that is not an integer',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: k, operator: Lt, values: ["1.5"] }] }] } } } } }',
    /operator Gt and Lt need exactly one value, an integer/,
  ],
  [
    'a node affinity requirement with a key that is not a label key',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "-k", operator: Exists }] }] } } } } }',
    /matchExpressions\[0\]\.key: Invalid value: .*must be a label key/,
  ],
  [
    'a node field requirement on another field than metadata.name',
    'podTemplate: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: spec.unschedulable, operator: In, values: ["false"] }] }] } } } } }',
    /matchFields supports only key metadata\.name, with operator In or NotIn and exactly one value/,
  ],
  [
    'a pod anti-affinity label requirement In without values',
    'podTemplate: { spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: zone, labelSelector: { matchExpressions: [{ key: app, operator: In }] } }] } } } }',
    /labelSelector\.matchExpressions\[0\]\.values: Required value: operator In and NotIn need values/,
  ],
  [
    'a spread constraint label requirement DoesNotExist with values',
    'podTemplate: { spec: { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: { matchExpressions: [{ key: app, operator: DoesNotExist, values: [a] }] } }] } }',
    /matchExpressions\[0\]\.values: Forbidden: operator Exists and DoesNotExist take no values/,
  ],
  [
    'a resource limit named gpu (not a standard resource, no domain prefix)',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { limits: { gpu: 1 } }',
    /spec\.resources\.limits: Invalid value: .*'gpu' alone is not a resource/,
  ],
  [
    'a resource request named storage',
    'eviction: { policy: allkeys-lru, maxMemory: 64Mi }\nresources: { requests: { storage: 1Gi } }',
    /spec\.resources\.requests: Invalid value: .*or an extended resource with a domain prefix/,
  ],
  [
    'a priorityClassName with upper case',
    'podTemplate: { spec: { priorityClassName: High_Priority } }',
    /spec\.podTemplate\.spec\.priorityClassName: Invalid value/,
  ],
];

describe('CacheCluster schema validation by the API server', () => {
  it.each(invalid)('rejects %s with a readable message', async (_what, spec, message) => {
    const res = await cp.kubectl(['apply', '-f', '-'], cacheCluster('bad', spec));
    try {
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/is invalid/);
      expect(res.stderr).toMatch(message);
      const get = await cp.kubectl(['get', 'cachecluster', 'bad', '-n', 'default']);
      expect(get.code).not.toBe(0); // nothing was stored
    } finally {
      // A wrongly accepted object must not fail the cases after this one.
      await cp.kubectl(['delete', 'cachecluster', 'bad', '-n', 'default', '--ignore-not-found']);
    }
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
    const durability = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      cacheCluster(
        'durable',
        'topology: replication\neviction: { policy: allkeys-lru, maxMemory: 64Mi }\n' +
          'durability: { mode: replicated, timeoutMs: 250, maxLagSeconds: 2 }',
      ),
    );
    expect(durability.code, durability.stderr).toBe(0);
    const edges = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      cacheCluster(
        'edges',
        `
image: registry.example.com:5000/team/redis@sha256:${'a'.repeat(64)}
eviction: { policy: allkeys-lru, maxMemoryPercent: 50 }
resources: { limits: { memory: 2Mi, cpu: 500m }, requests: { memory: 2Mi, cpu: 100m } }
flush: { schedule: "@every 6h", timeZone: Etc/GMT+5 }
`,
      ),
    );
    expect(edges.code, edges.stderr).toBe(0);
    // What core/v1 accepts in tolerations, node affinity and resources, and a maxMemory of whole bytes.
    const core = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      cacheCluster(
        'core',
        `
eviction: { policy: allkeys-lru, maxMemory: 1.5Gi }
resources:
  limits: { memory: 2Gi, nvidia.com/gpu: 1, hugepages-2Mi: 4Mi, ephemeral-storage: 1Gi }
  requests: { cpu: 100m, memory: 2Gi, nvidia.com/gpu: 1 }
podTemplate:
  spec:
    tolerations:
      - { operator: Exists }
      - { key: k, operator: Exists, effect: NoExecute, tolerationSeconds: 5 }
      - { key: example.com/dedicated, value: cache, effect: NoSchedule }
      - { key: k, operator: Exists, value: "" }
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions:
                - { key: example.com/cores, operator: Gt, values: ["4"] }
                - { key: example.com/cores, operator: Lt, values: ["-1"] }
                - { key: example.com/spot, operator: DoesNotExist }
                - { key: kubernetes.io/arch, operator: NotIn, values: [s390x] }
            - matchFields: [{ key: metadata.name, operator: In, values: [node-1] }]
      podAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 10
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector: { matchExpressions: [{ key: app, operator: Exists }, { key: tier, operator: In, values: [web] }] }
`,
      ),
    );
    expect(core.code, core.stderr).toBe(0);
    const placed = await cp.kubectl(
      ['apply', '--dry-run=server', '-f', '-'],
      cacheCluster(
        'placed',
        `
topology: replication
replicas: 2
persistence:
  mode: rdb
  storage: { size: 500M, className: fast-ssd }
  persistentVolumeClaimRetentionPolicy: { whenDeleted: Retain, whenScaled: Delete }
podTemplate:
  metadata:
    labels: { team: checkout, example.com/tier: cache, empty: "" }
    annotations: { example.com/owner: "shop team", "prometheus.io/scrape": "true" }
  spec:
    nodeSelector: { kubernetes.io/os: linux }
    tolerations: [{ key: dedicated, operator: Equal, value: cache, effect: NoSchedule }, { operator: Exists }]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{ matchExpressions: [{ key: kubernetes.io/arch, operator: In, values: [amd64, arm64] }] }]
      podAntiAffinity: {}
    topologySpreadConstraints:
      - { maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway }
    priorityClassName: cache-critical
    imagePullSecrets: [{ name: registry }]
`,
      ),
    );
    expect(placed.code, placed.stderr).toBe(0);
    const examples = await cp.kubectl(['apply', '--dry-run=server', '-f', 'examples/']);
    expect(examples.code, examples.stderr).toBe(0);
    // Each example its own CacheCluster: `kubectl apply -f examples/` (make demo applies some of them) must
    // not turn one example into another.
    const names = examples.stdout.trim().split('\n');
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(new Set(names).size, examples.stdout).toBe(names.length);
    const placement = await cp.kubectl(['apply', '--dry-run=server', '-f', 'examples/placement/']);
    expect(placement.code, placement.stderr).toBe(0);
    expect(placement.stdout).toMatch(/cachecluster\.cache\.ripplecache\.io\/durable-catalog created/);
  });

  it('refuses fields outside the schema by name (renamed persistence fields, pod security fields in podTemplate)', async () => {
    for (const [spec, field] of [
      ['persistence: { mode: aof, size: 1Gi }', 'spec.persistence.size'],
      ['persistence: { storageClassName: fast }', 'spec.persistence.storageClassName'],
      ['podTemplate: { spec: { hostNetwork: true } }', 'spec.podTemplate.spec.hostNetwork'],
      ['podTemplate: { spec: { securityContext: { runAsUser: 0 } } }', 'spec.podTemplate.spec.securityContext'],
      ['podTemplate: { spec: { containers: [{ name: redis, image: x }] } }', 'spec.podTemplate.spec.containers'],
    ]) {
      // kubectl's default field validation (Strict) names the unknown field.
      const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], cacheCluster('unknown', spec!));
      expect(res.code, spec).not.toBe(0);
      expect(res.stderr).toContain(`unknown field "${field}"`);
    }
  });

  it('keeps persistence.storage as created; the persistence mode changes freely', async () => {
    const create = (name: string, persistence: string) =>
      cp.kubectl(['apply', '-f', '-'], cacheCluster(name, `persistence: ${persistence}`));
    try {
      expect((await create('stored', '{ mode: none, storage: { size: 1Gi } }')).code).toBe(0);
      const aof = await create('stored', '{ mode: aof, storage: { size: 1Gi } }');
      expect(aof.code, aof.stderr).toBe(0);
      const immutable = /persistence\.storage cannot be added, removed or changed once the CacheCluster exists/;
      for (const change of [
        '{ mode: aof, storage: { size: 2Gi } }',
        '{ mode: aof, storage: { size: 1Gi, className: fast } }',
        '{ mode: none }',
      ]) {
        const res = await create('stored', change);
        expect(res.code, change).not.toBe(0);
        expect(res.stderr).toMatch(immutable);
      }
      expect((await create('plain', '{ mode: none }')).code).toBe(0);
      const added = await create('plain', '{ mode: aof, storage: { size: 1Gi } }');
      expect(added.code).not.toBe(0);
      expect(added.stderr).toMatch(immutable);
      // The retention policy is the StatefulSet's mutable field: it may change.
      const retention = await create(
        'stored',
        '{ mode: aof, storage: { size: 1Gi }, persistentVolumeClaimRetentionPolicy: { whenDeleted: Retain } }',
      );
      expect(retention.code, retention.stderr).toBe(0);
    } finally {
      await cp.kubectl(['delete', 'cachecluster', 'stored', 'plain', '-n', 'default', '--ignore-not-found']);
    }
  });

  it('has a scale subresource: kubectl scale sets spec.replicas, and the CEL rules still hold', async () => {
    try {
      const created = await cp.kubectl(
        ['apply', '-f', '-'],
        cacheCluster('scaled', 'topology: replication\nreplicas: 1'),
      );
      expect(created.code, created.stderr).toBe(0);
      const scaled = await cp.kubectl(['scale', 'cc/scaled', '-n', 'default', '--replicas=3']);
      expect(scaled.code, scaled.stderr).toBe(0);
      const got = await cp.kubectl(['get', 'cc', 'scaled', '-n', 'default', '-o', 'jsonpath={.spec.replicas}']);
      expect(got.stdout).toBe('3');
      const tooMany = await cp.kubectl(['scale', 'cc/scaled', '-n', 'default', '--replicas=33']);
      expect(tooMany.code).not.toBe(0);
      expect(
        await cp.kubectl(['get', 'cc', 'scaled', '-n', 'default', '-o', 'jsonpath={.spec.replicas}']),
      ).toMatchObject({
        stdout: '3',
      });
      expect((await cp.kubectl(['apply', '-f', '-'], cacheCluster('single', 'topology: standalone'))).code).toBe(0);
      const standalone = await cp.kubectl(['scale', 'cc/single', '-n', 'default', '--replicas=2']);
      expect(standalone.code).not.toBe(0);
      expect(standalone.stderr).toMatch(/topology standalone has no read replicas/);
    } finally {
      await cp.kubectl(['delete', 'cachecluster', 'scaled', 'single', '-n', 'default', '--ignore-not-found']);
    }
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

// ---- The CRD agrees with the CronJob API ----------------------------------------------------------

type Verdict = { ok: true } | { ok: false; message: string };

/** A server-side dry-run create: whether the API server would store the object, and why not. */
async function dryRunCreate(obj: k8s.KubernetesObject): Promise<Verdict> {
  try {
    await objects.create(obj, undefined, 'All');
    return { ok: true };
  } catch (err) {
    if (err instanceof k8s.ApiException && (err.code === 422 || err.code === 400)) {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
      return { ok: false, message: body.message ?? String(err.body) };
    }
    throw err;
  }
}

function cacheClusterWithFlush(flush: { schedule: string; timeZone?: string }): k8s.KubernetesObject {
  // The CacheCluster type's metadata (creationTimestamp a string) is not client-node's: go through unknown.
  return cacheClusterObject(
    'probe',
    inNamespace('default'),
    withEviction({ policy: 'allkeys-lru', maxMemory: '64Mi' }),
    withFlush(flush),
  ) as unknown as k8s.KubernetesObject;
}

function cronJob(schedule: string, timeZone?: string): k8s.KubernetesObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'probe', namespace: 'default' },
    spec: {
      schedule,
      ...(timeZone !== undefined ? { timeZone } : {}),
      jobTemplate: {
        spec: {
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'flush', image: 'redis:7.2-alpine' }] } },
        },
      },
    },
  } as k8s.KubernetesObject;
}

/** Runs `fn` over `items`, `width` at a time. */
async function mapBatched<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

/** Compares both verdicts for every case; returns the disagreements. */
async function disagreements(
  cases: Array<{ schedule: string; timeZone?: string }>,
): Promise<{ list: string[]; accepted: number; rejected: number }> {
  const list: string[] = [];
  let accepted = 0;
  let rejected = 0;
  await mapBatched(cases, 8, async (c) => {
    const [cc, cj] = await Promise.all([
      dryRunCreate(cacheClusterWithFlush(c)),
      dryRunCreate(cronJob(c.schedule, c.timeZone)),
    ]);
    if (cj.ok) accepted++;
    else rejected++;
    if (cc.ok !== cj.ok) {
      list.push(
        `${JSON.stringify(c)}: CacheCluster ${cc.ok ? 'accepted' : `rejected (${cc.message})`}, ` +
          `CronJob ${cj.ok ? 'accepted' : `rejected (${cj.message})`}`,
      );
    } else if (!cc.ok) {
      // Rejected for the field under test, not for something else in the probe.
      expect(cc.message).toMatch(c.timeZone !== undefined ? /spec\.flush\.timeZone/ : /spec\.flush\.schedule/);
    }
  });
  return { list, accepted, rejected };
}

/** A random schedule, valid or not, made of the pieces the cron parser treats specially. */
function randomSchedule(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number) => rand() < p;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  // Half the schedules use only what the parser accepts (in all its spellings), half may go wrong anywhere.
  const sloppy = chance(0.5);
  const bad = (p: number) => sloppy && chance(p);
  if (chance(0.08)) {
    return pick([
      '@hourly',
      '@daily',
      '@weekly',
      '@monthly',
      '@yearly',
      '@annually',
      '@midnight',
      '@Daily',
      '@HOURLY',
      '@daily ',
      ' @daily',
      '@fortnightly',
      '@every 1h30m',
      '@every 90s',
      '@every 0',
      '@every -5m',
      '@every 1.5h',
      '@every .5h',
      '@every 1',
      '@every 1x',
      '@every  1h',
      '@every 99999999999h',
      '@every',
      'TZ=UTC 0 2 * * *',
      'CRON_TZ=Europe/Berlin 0 2 * * *',
    ]);
  }
  const bounds = [
    [0, 59, []],
    [0, 23, []],
    [1, 31, []],
    [1, 12, ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']],
    [0, 6, ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']],
  ] as const;
  const value = (f: number): string => {
    const [lo, hi, names] = bounds[f]!;
    if (names.length && chance(0.3)) {
      const n = bad(0.2) ? pick(['january', 'mo', 'xyz', 'sunday']) : pick(names);
      return pick([n, n.toUpperCase(), n[0]!.toUpperCase() + n.slice(1)]);
    }
    const v = bad(0.3) ? pick([lo - 1, hi + 1, hi + 2, 7, 60, 24, 32, 13, 100]) : int(lo, hi);
    const text = String(v);
    if (chance(0.1)) return pick([`0${text}`, `+${text}`, `00${text}`]);
    return bad(0.03) ? `-${text}` : text;
  };
  const step = () =>
    bad(0.3) ? pick(['0', '00', '', 'x', '9223372036854775808', '1/2']) : pick([String(int(1, 30)), '+2', '100']);
  const range = (f: number): string => {
    const [a, b] = [value(f), value(f)];
    const n = (x: string) => Number(x.replace(/^\+/, '')); // names compare as NaN: left as they come
    // Ascending unless sloppy (then as drawn, so reversed about half the time).
    return !sloppy && n(a) > n(b) ? `${b}-${a}` : `${a}-${b}`;
  };
  const item = (f: number): string => {
    const r = rand();
    if (r < 0.2) return bad(0.5) ? pick(['**', '*5', '*x']) : pick(['*', '*', '*', '?', '*-5', '*-x']);
    if (r < 0.35) return `*/${step()}`;
    if (r < 0.65) return value(f);
    if (r < 0.9) return chance(0.3) ? `${range(f)}/${step()}` : range(f);
    return bad(0.5) ? pick(['', '5-', '-5', '1-2-3', 'a', '1..2']) : `${value(f)}/${step()}`;
  };
  const field = (f: number): string => {
    const n = chance(0.7) ? 1 : int(2, 3);
    const items = Array.from({ length: n }, () => item(f));
    let text = items.join(chance(0.05) ? ',,' : ',');
    if (chance(0.03)) text = `,${text}`;
    return text;
  };
  const count = bad(0.15) ? pick([3, 4, 6, 7]) : 5;
  const fields = Array.from({ length: count }, (_, i) => field(Math.min(i, 4)));
  const sep = () => (chance(0.93) ? ' ' : pick(['  ', '\t', '\u00a0', ' \n ', '\u2003']));
  let text = fields.map((f, i) => (i === 0 ? f : `${sep()}${f}`)).join('');
  if (chance(0.05)) text = `${pick([' ', '\t', '  '])}${text}${pick(['', ' ', '\n'])}`;
  return text;
}

describe('flush.schedule: the CRD says what the CronJob API says', () => {
  it('agrees on the edge cases and on 400 generated schedules', async () => {
    const fixed = [
      '0 2 * * 7',
      '0 5-1 * * *',
      '0 2 * * 0',
      '0 2 * * 6',
      '0 0 * * SAT-SUN',
      '0 0 * * MON-FRI',
      '0 0 * * FRI-MON',
      '0 0 * DEC-JAN *',
      '0 0 1-31/2 * *',
      '59-0 * * * *',
      '* * * * ?',
      '*-9-1 * * * *',
      '0 0 * * FRİ',
      '1,,2 * * * *',
      ', * * * *',
      '+5 * * * *',
      '0 0 * * */7',
      '*/0 * * * *',
      '*/9223372036854775807 * * * *',
      '*/9223372036854775808 * * * *',
      '0 2 * * *',
      '@every 2562047h',
      '@every 2562048h',
      '@every -2562047h47m16.854775808s',
      '@every 1µs',
    ];
    const rand = prng(0x5c4ed01e);
    const generated: string[] = [];
    while (generated.length < 400) {
      const s = randomSchedule(rand);
      if (s.length >= 1 && s.length <= 128) generated.push(s); // the CRD bounds the length (CEL cost)
    }
    const result = await disagreements([...fixed, ...generated].map((schedule) => ({ schedule })));
    expect(result.list).toEqual([]);
    // Not a vacuous agreement: both verdicts occur often.
    expect(result.accepted).toBeGreaterThan(100);
    expect(result.rejected).toBeGreaterThan(100);
  }, 240_000);
});

describe('flush.timeZone: what the CRD accepts, the CronJob API accepts', () => {
  it('agrees on every listed IANA name and on unknown ones', async () => {
    const unknown = [
      'Mars/Olympus',
      'Europe/Berlinn',
      'Local',
      'local',
      'UTC+5',
      'GMT+01:00',
      'europe/berlin',
      'EUROPE/BERLIN',
      'Europe/Berlin/',
      '/Europe/Berlin',
      'Europe//Berlin',
      'Etc/GMT+15',
      'Etc/GMT+5 ',
      'Europe/../UTC',
      'Asia/Kolkata2',
      'America/Argentina/Buenos Aires',
      'zone.tab',
      'CEST',
    ];
    // Not here: names only some hosts' /usr/share/zoneinfo has (e.g. posix/Europe/Berlin on Debian): the API
    // server reads the host's files before its embedded tzdata, so it accepts them there; the CRD does not.
    const cases = [...TIME_ZONES, ...unknown].map((timeZone) => ({ schedule: '0 2 * * *', timeZone }));
    const result = await disagreements(cases);
    expect(result.list).toEqual([]);
    expect(result.accepted).toBe(TIME_ZONES.length);
  }, 240_000);

  it('leaves out only America/Coyhaique of the names the API server knows (new in tzdata 2025b)', async () => {
    const cc = await dryRunCreate(cacheClusterWithFlush({ schedule: '0 2 * * *', timeZone: 'America/Coyhaique' }));
    const cj = await dryRunCreate(cronJob('0 2 * * *', 'America/Coyhaique'));
    expect(cc.ok).toBe(false);
    expect(cj.ok).toBe(true);
  });
});
