import { describe, expect, it } from 'vitest';
import { CATEGORIES, CRD_NAME, EVICTION_POLICIES, GROUP, KIND, PLURAL, SHORT_NAMES, VERSION } from './constants.js';
import {
  CRON_PATTERN,
  CRON_RULE,
  IMAGE_PATTERN,
  RULES,
  atMostDecimal,
  cacheClusterCrd,
  cacheClusterSchema,
} from './schema.js';
import { TIME_ZONES } from './time-zones.js';
import type { JSONSchemaProps } from './schema.js';
import { DEFAULTS } from './types.js';
import type { CacheClusterSpec, LabelSelector, NodeSelectorTerm, PodAffinityTerm } from './types.js';

function walk(s: JSONSchemaProps, path: string, visit: (s: JSONSchemaProps, path: string) => void): void {
  visit(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (s.items) walk(s.items, `${path}[]`, visit);
  if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}{}`, visit);
}

function at(path: string): JSONSchemaProps {
  let s: JSONSchemaProps | undefined = cacheClusterSchema;
  for (const k of path.split('.')) s = s?.properties?.[k];
  if (!s) throw new Error(`no schema at ${path}`);
  return s;
}

describe('cacheClusterCrd', () => {
  const crd = cacheClusterCrd();
  const version = crd.spec.versions[0]!;

  it('names the CRD, its kind, scope, short name and category', () => {
    expect(crd.metadata.name).toBe(CRD_NAME);
    expect(CRD_NAME).toBe('cacheclusters.cache.ripplecache.io');
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({
      kind: KIND,
      plural: PLURAL,
      shortNames: [...SHORT_NAMES],
      categories: [...CATEGORIES],
    });
    expect(crd.spec.names.shortNames).toEqual(['cc']);
    expect(version).toMatchObject({ name: VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('has printer columns, with the extras only under -o wide', () => {
    const cols = version.additionalPrinterColumns;
    const visible = cols.filter((c) => !c.priority).map((c) => [c.name, c.jsonPath]);
    expect(visible).toEqual([
      ['Topology', '.spec.topology'],
      ['Policy', '.spec.eviction.policy'],
      ['Ready', '.status.ready'],
      ['Phase', '.status.phase'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
    expect(cols.filter((c) => c.priority === 1).map((c) => c.name)).toEqual(['MaxMemory', 'Primary']);
  });

  it('returns a fresh object every call', () => {
    const a = cacheClusterCrd();
    a.spec.versions[0]!.schema.openAPIV3Schema.description = 'changed';
    expect(cacheClusterCrd()).toEqual(crd);
  });
});

describe('cacheClusterSchema', () => {
  it('describes every property (kubectl explain teaches)', () => {
    const missing: string[] = [];
    walk(cacheClusterSchema, '', (s, path) => {
      if (path !== '.metadata' && path !== '' && !path.endsWith('{}') && !s.description) missing.push(path);
    });
    expect(missing).toEqual([]);
  });

  it('bounds every string and array under spec (CEL cost)', () => {
    const unbounded: string[] = [];
    walk(at('spec'), 'spec', (s, path) => {
      if (s.type === 'string' && s.enum === undefined && s.maxLength === undefined) unbounded.push(path);
      if (s['x-kubernetes-int-or-string'] && s.maxLength === undefined) unbounded.push(path);
      if (s.type === 'array' && s.maxItems === undefined) unbounded.push(path);
      if (s.type === 'object' && typeof s.additionalProperties === 'object' && s.maxProperties === undefined)
        unbounded.push(path);
    });
    expect(unbounded).toEqual([]);
  });

  it('gives every CEL rule a readable message', () => {
    walk(cacheClusterSchema, '', (s) => {
      for (const r of s['x-kubernetes-validations'] ?? []) {
        expect(r.rule.length).toBeGreaterThan(0);
        expect(r.message.length).toBeGreaterThan(20);
      }
    });
  });

  it('enumerates the eviction policies and quotes the defaults', () => {
    expect(at('spec.eviction.policy').enum).toEqual([...EVICTION_POLICIES]);
    expect(at('spec.eviction.policy').default).toBe(DEFAULTS.eviction.policy);
    expect(at('spec.topology').default).toBe('standalone');
    expect(at('spec.topology').enum).toEqual(['standalone', 'replication', 'cluster']);
    expect(at('spec.eviction.maxMemoryPercent')).toMatchObject({ minimum: 10, maximum: 95 });
    expect(at('spec.replicas').minimum).toBe(0);
    expect(at('spec.eviction.maxMemory')['x-kubernetes-int-or-string']).toBe(true);
    expect(at('spec.resources.limits').additionalProperties).toMatchObject({ 'x-kubernetes-int-or-string': true });
  });

  it('carries the eviction rules where they apply', () => {
    expect(at('spec.eviction')['x-kubernetes-validations']).toContainEqual(RULES.evictionExactlyOne);
    const specRules = at('spec')['x-kubernetes-validations'] ?? [];
    expect(specRules).toContainEqual(RULES.maxMemoryPercentNeedsLimit);
    expect(specRules).toContainEqual(RULES.maxMemoryWithinLimit);
    expect(specRules).toContainEqual(RULES.shardsOnlyWithCluster);
    expect(specRules).toContainEqual(RULES.durabilityReplicatedNeedsReplicas);
    expect(at('spec.durability.mode').enum).toEqual(['replicated', 'primary']);
    expect(at('spec.durability.timeoutMs')).toMatchObject({ minimum: 1, maximum: 60_000 });
    // Under half the sidecars' claim timeout (30 s), which the sidecar checks too.
    expect(at('spec.sidecar.writeBack.coalesceWindowMs')).toMatchObject({ minimum: 0, maximum: 14_999 });
    expect(RULES.maxMemoryWithinLimit.rule).toContain(
      "quantity(string(self.eviction.maxMemory)).isGreaterThan(quantity(string(self.resources.limits['memory'])))",
    );
    expect(RULES.maxMemoryWithinLimit.rule).toContain('isQuantity(');
    expect(at('spec.flush.schedule')['x-kubernetes-validations']).toEqual([RULES.cronSchedule]);
  });
});

describe('CRON_PATTERN', () => {
  // The pattern is RE2 (CEL); JavaScript spells its code point escapes \u{…} (with the u flag).
  const cron = new RegExp(CRON_PATTERN.replace(/\\x\{/g, '\\u{'), 'u');
  it.each([
    '0 2 * * *',
    '*/15 * * * *',
    '0 0 1,15 * MON-FRI',
    '@hourly',
    '@daily',
    '@weekly',
    '@monthly',
    '@yearly',
    '@annually',
    '@midnight',
    '@every 1h30m',
    '@every 0',
    '@every -1.5h',
    '5 4 * * sun',
    '0-59/5 0-23 1-31 1-12 0-6',
    '15,45 */2 * JAN-MAR,dec 1-5',
    '0 0 ? * *',
    '? ? ? ? ?',
    '  0 2 * * *  ',
    '0\t2 * * *',
    '0 2 * * *\n',
    '+5 +02 01 +1 0',
    '007 * * * *',
    '1,,2 * * * *',
    ', * * * *',
    '*-foo * * * *',
    '5/100 * * * *',
    '*/9223372036854775807 * * * *',
    '0 0 * * FRİ',
  ])('accepts %j', (s) => expect(cron.test(s)).toBe(true));

  it.each([
    'every day',
    '61 * * * *',
    '* * * *',
    '* * * * * *',
    '0 24 * * *',
    '0 0 32 * *',
    '0 0 0 * *',
    '0 0 * 13 *',
    '0 0 * 0 *',
    '0 2 * * 7',
    '0 0 * * 8',
    '@Daily',
    '@daily ',
    ' @daily',
    '@every 1',
    '@every 1hm',
    '@every',
    '*/0 * * * *',
    '*/9223372036854775808 * * * *',
    '5- * * * *',
    '-5 * * * *',
    '1-2-3 * * * *',
    '1/2/3 * * * *',
    '*x * * * *',
    'JAN * * * *',
    '0 0 * * MONDAY',
    '0 0 * JANUARY *',
    '+ * * * *',
    '',
  ])('rejects %j', (s) => expect(cron.test(s)).toBe(false));

  it('is enforced with the ascending-range check, the TZ ban and a finite @every in one CEL rule', () => {
    expect(RULES.cronSchedule.rule).toBe(CRON_RULE);
    expect(CRON_RULE).toContain("!self.contains('TZ')");
    expect(CRON_RULE).toContain('duration(self.substring(7))');
    expect(CRON_RULE).toMatch(/<= \(/);
  });
});

describe('atMostDecimal', () => {
  const re = new RegExp(`^${atMostDecimal('9223372036854775807')}$`);
  it.each(['1', '9', '10', '922337203685477580', '999999999999999999', '9223372036854775807', '9223372036854775799'])(
    'accepts %s',
    (n) => expect(re.test(n)).toBe(true),
  );
  it.each(['0', '01', '9223372036854775808', '9999999999999999999', '10000000000000000000'])('rejects %s', (n) =>
    expect(re.test(n)).toBe(false),
  );
  it('agrees with BigInt comparison on every number around a bound', () => {
    const max = 1234n;
    const r = new RegExp(`^${atMostDecimal(String(max))}$`);
    for (let n = 1n; n < 3000n; n++) expect(r.test(String(n)), String(n)).toBe(n <= max);
  });
});

describe('flush.timeZone', () => {
  it('accepts the IANA names and rejects what the CronJob API rejects', () => {
    for (const z of ['Europe/Berlin', 'UTC', 'Etc/GMT+5', 'America/Argentina/Buenos_Aires', 'EST5EDT', 'Asia/Kolkata'])
      expect(TIME_ZONES).toContain(z);
    for (const z of ['Local', 'Mars/Olympus', 'Europe/Berlinn', 'UTC+5', 'europe/berlin', 'America/Coyhaique'])
      expect(TIME_ZONES).not.toContain(z);
    expect(new Set(TIME_ZONES).size).toBe(TIME_ZONES.length);
    expect(at('spec.flush.timeZone')['x-kubernetes-validations']).toEqual([RULES.timeZone]);
    for (const z of TIME_ZONES) expect(RULES.timeZone.rule).toContain(`'${z}'`);
  });
});

describe('IMAGE_PATTERN', () => {
  const image = new RegExp(IMAGE_PATTERN);
  it.each([
    'redis:7.2-alpine',
    'redis',
    'valkey/valkey:8.0',
    'docker.io/library/redis:7.2',
    'registry.example.com:5000/team/redis-custom:v1.2_3',
    'localhost/redis:dev',
    `redis@sha256:${'a'.repeat(64)}`,
    `ghcr.io/org/redis:7@sha256:${'0'.repeat(64)}`,
    '[::1]:5000/redis:7',
  ])('accepts %j', (i) => expect(image.test(i)).toBe(true));
  it.each([
    ' redis:7.2-alpine',
    'redis:7.2-alpine ',
    'redis :7',
    'Redis:7',
    'redis:',
    'redis:-7',
    ':7',
    'redis@sha256:abc',
    'redis//x',
    'https://docker.io/redis',
    '',
  ])('rejects %j', (i) => expect(image.test(i)).toBe(false));
});

/** Every optional field made required, so that the fixture below must set every field of the spec. */
type DeepRequired<T> = T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;

describe('types.ts and schema.ts describe the same spec', () => {
  const selector: DeepRequired<LabelSelector> = {
    matchLabels: { a: 'b' },
    matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }],
  };
  const nodeTerm: DeepRequired<NodeSelectorTerm> = {
    matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }],
    matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }],
  };
  const podTerm: DeepRequired<PodAffinityTerm> = {
    labelSelector: selector,
    namespaces: ['ns'],
    topologyKey: 'kubernetes.io/hostname',
    namespaceSelector: selector,
    matchLabelKeys: ['a'],
    mismatchLabelKeys: ['b'],
  };
  const everyField: DeepRequired<CacheClusterSpec> = {
    topology: 'replication',
    replicas: 2,
    shards: 3,
    image: 'redis:7.2-alpine',
    eviction: { policy: 'allkeys-lru', maxMemory: '256Mi', maxMemoryPercent: 75 },
    defaultTTLSeconds: 3600,
    flush: { schedule: '0 2 * * *', timeZone: 'Europe/Berlin' },
    auth: { secretRef: { name: 'a', key: 'b' } },
    persistence: {
      mode: 'rdb',
      storage: { size: '1Gi', className: 'standard' },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Delete' },
    },
    podTemplate: {
      metadata: { labels: { team: 'a' }, annotations: { note: 'b' } },
      spec: {
        nodeSelector: { disk: 'ssd' },
        tolerations: [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule', tolerationSeconds: 1 }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [nodeTerm] },
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: nodeTerm }],
          },
          podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [podTerm],
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: podTerm }],
          },
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [podTerm],
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: podTerm }],
          },
        },
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: 'zone',
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: selector,
            minDomains: 1,
            nodeAffinityPolicy: 'Honor',
            nodeTaintsPolicy: 'Ignore',
            matchLabelKeys: ['x'],
          },
        ],
        priorityClassName: 'high',
        imagePullSecrets: [{ name: 'pull' }],
      },
    },
    resources: { limits: { memory: '1Gi' }, requests: { memory: '1Gi' } },
    metrics: { exporter: true, serviceMonitor: false },
    sidecar: {
      l1: { policy: 'lru', maxEntries: 1, maxBytes: '1Mi', maxTTLSeconds: 1 },
      writePolicy: 'write-through',
      writeBack: { flushIntervalMs: 1000, flushBatchSize: 1, maxPending: 1, coalesceWindowMs: 0 },
      origin: { postgres: { secretRef: { name: 'a', key: 'b' }, table: 't' }, http: { url: 'http://x' } },
    },
    failover: { afterSeconds: 2 },
    durability: { mode: 'replicated', timeoutMs: 1000, maxLagSeconds: 3 },
    invalidation: {
      peers: [
        {
          cacheCluster: { name: 'b', namespace: 'ns' },
          redis: { url: 'redis://r:6379', channel: 'c', cluster: false },
          passwordSecretRef: { name: 'p', key: 'k' },
        },
      ],
    },
  };

  /**
   * Object paths of the fixture (array elements as `[]`, each path once), stopping at quantities and at
   * free-form maps (resources.limits, labels, annotations, nodeSelector, matchLabels).
   */
  const FREE_FORM = /\.(limits|requests|labels|annotations|nodeSelector|matchLabels)$/;
  function valuePaths(v: unknown, path: string, out: string[]): string[] {
    if (!out.includes(path)) out.push(path);
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') valuePaths(x, `${path}[]`, out);
    } else if (v !== null && typeof v === 'object' && !FREE_FORM.test(path)) {
      for (const [k, x] of Object.entries(v)) valuePaths(x, `${path}.${k}`, out);
    }
    return out;
  }
  function schemaPaths(s: JSONSchemaProps, path: string, out: string[]): string[] {
    if (!out.includes(path)) out.push(path);
    for (const [k, x] of Object.entries(s.properties ?? {})) schemaPaths(x, `${path}.${k}`, out);
    if (s.items?.type === 'object') schemaPaths(s.items, `${path}[]`, out);
    return out;
  }

  it('has the same fields', () => {
    expect(valuePaths(everyField, 'spec', []).sort()).toEqual(schemaPaths(at('spec'), 'spec', []).sort());
  });
});
