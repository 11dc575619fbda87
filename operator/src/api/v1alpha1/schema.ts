/**
 * The CacheCluster CRD: its OpenAPI v3 schema (with CEL rules) and the whole
 * `apiextensions.k8s.io/v1 CustomResourceDefinition`. This file is the single source of truth for
 * `crds/cacheclusters.cache.ripplecache.io.yaml` (`npm run manifests`; a unit test fails on drift).
 *
 * Every property carries a description so that `kubectl explain cachecluster.spec.eviction` teaches.
 * Strings and arrays that CEL rules read are bounded (`maxLength`, `maxItems`) to keep the rules'
 * estimated cost under the API server's limits.
 */
import {
  CATEGORIES,
  CRD_NAME,
  DURABILITY_MODES,
  EVICTION_POLICIES,
  GROUP,
  KIND,
  L1_POLICIES,
  LIST_KIND,
  PERSISTENCE_MODES,
  PHASES,
  PLURAL,
  RESERVED_KEY_PREFIX,
  RESERVED_POD_LABELS,
  RETENTION_POLICIES,
  SHORT_NAMES,
  SINGULAR,
  TOPOLOGIES,
  VERSION,
  WRITE_POLICIES,
} from './constants.js';
import { TIME_ZONES } from './time-zones.js';
import { DEFAULTS } from './types.js';

/** The subset of `apiextensions.k8s.io/v1 JSONSchemaProps` this schema uses. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  required?: string[];
  items?: JSONSchemaProps;
  enum?: Array<string | number>;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: ValidationRule[];
}

/** A CEL rule (`x-kubernetes-validations` entry). */
export interface ValidationRule {
  rule: string;
  message: string;
  /** JSONPath-like path, relative to the schema node holding the rule, of the field to blame. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    scope: 'Namespaced';
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources: {
        status: Record<string, never>;
        scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
      };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }>;
  };
}

// ---- Patterns -------------------------------------------------------------------------------------

/**
 * A Kubernetes quantity of bytes without sign, exponent or milli-suffix: `268435456`, `256Mi`, `1.5Gi`,
 * `500M`, `1G`. (Kubernetes would read `256m` as 0.256 bytes; Redis users often mean MB. Rejecting it
 * avoids the trap.)
 */
export const BYTES_QUANTITY_PATTERN = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$';

/** The Kubernetes resource quantity pattern (as controller-gen writes it). */
export const RESOURCE_QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

// The CronJob API validates `spec.schedule` with robfig/cron v3's standard parser (`cron.ParseStandard`) and
// rejects any schedule containing "TZ". The pattern and rule below follow that parser exactly, quirks included,
// so that the CRD accepts a schedule if and only if the API server accepts it in the flush CronJob
// (test/integration/crd-validation.test.ts checks this against the real API server with generated schedules).

/** Go's `unicode.IsSpace`, which `strings.Fields` splits the schedule on (RE2 syntax). */
const CRON_SPACE =
  '\\t\\n\\v\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}';

/**
 * A decimal number without leading zeros, at most `max` (a string of digits): the regex alternatives of
 * every digit string that compares lower or equal. Used for the int64 bound of a step.
 */
export function atMostDecimal(max: string): string {
  const alts: string[] = [];
  // Shorter numbers (1 to max.length - 1 digits) are all smaller.
  if (max.length > 1) alts.push(max.length === 2 ? '[1-9]' : `[1-9][0-9]{0,${max.length - 2}}`);
  // Same length: equal on a prefix, then a smaller digit, then anything.
  for (let i = 0; i < max.length; i++) {
    const d = Number(max[i]);
    const low = i === 0 ? 1 : 0;
    if (d > low) {
      const rest = max.length - i - 1;
      const cls = d - 1 === low ? String(low) : `[${low}-${d - 1}]`;
      alts.push(`${max.slice(0, i)}${cls}${rest ? `[0-9]{${rest}}` : ''}`);
    }
  }
  alts.push(max);
  return `(${alts.join('|')})`;
}

/** `strconv.Atoi` of a value: an optional '+', any leading zeros, then `value` (which has no leading zero). */
const cronNumber = (value: string): string => `\\+?0*(${value})`;
/** A step: a positive int64 (`Atoi`, then "step of range should be a positive number"). */
const CRON_STEP = `/\\+?0*${atMostDecimal('9223372036854775807')}`;
/** Names are looked up after Go's `strings.ToLower`, which also lowers U+0130 (İ) to 'i'. */
function cronName(name: string): string {
  return [...name].map((c) => (c === 'i' ? '[Ii\\x{130}]' : `[${c.toUpperCase()}${c}]`)).join('');
}
const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * One comma-separated field: items `v`, `v-v`, `v/step`, `v-v/step`, or `*` / `?` (anything after `*-` is
 * ignored by the parser, up to a '/'). Empty list items are dropped (`strings.FieldsFunc`), so `1,,2` and `,`
 * are valid.
 */
function cronField(value: string): string {
  const item = `((${value})(-(${value}))?(${CRON_STEP})?|[*?](-[^/,${CRON_SPACE}]*)?(${CRON_STEP})?)`;
  return `(,*${item}(,+${item})*,*|,+)`;
}

/** `@every <Go duration>` (`time.ParseDuration`; its overflow check is the CEL rule's `duration()`). */
const GO_DURATION = '[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|\\x{B5}s|\\x{3BC}s|ms|s|m|h))+)';

/**
 * What `cron.ParseStandard` accepts, apart from ascending ranges (checked by the CEL rule): a macro
 * (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, exactly), `@every` with a Go
 * duration, or 5 fields split by white space (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC,
 * day of week 0-6 or SUN-SAT) with lists, ranges and steps; '?' is '*'. RE2 syntax (`\x{…}`).
 */
export const CRON_PATTERN =
  '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ' +
  GO_DURATION +
  '|' +
  `[${CRON_SPACE}]*` +
  [
    cronField(cronNumber('[0-9]|[1-5][0-9]')),
    cronField(cronNumber('[0-9]|1[0-9]|2[0-3]')),
    cronField(cronNumber('[1-9]|[12][0-9]|3[01]')),
    cronField(`${cronNumber('[1-9]|1[0-2]')}|${MONTH_NAMES.map(cronName).join('|')}`),
    cronField(`${cronNumber('[0-6]')}|${DAY_NAMES.map(cronName).join('|')}`),
  ].join(`[${CRON_SPACE}]+`) +
  `[${CRON_SPACE}]*` +
  ')$';

/** The value of one range end in CEL: a number, or a month or day name (no name is both). */
function celCronValue(x: string): string {
  const names = [...MONTH_NAMES.map((n, i) => [n, i + 1] as const), ...DAY_NAMES.map((n, i) => [n, i] as const)];
  const map = [...names, ['fr\\u0130', 5] as const].map(([n, v]) => `'${n}': ${v}`).join(', ');
  return `(${x}.matches('^[+]?[0-9]+$') ? int(${x}) : {${map}}[${x}.lowerAscii()])`;
}

/**
 * The CEL rule of flush.schedule: the pattern, no "TZ", every `a-b` range ascending, and an `@every` duration
 * that CEL's `duration()` (Go's `time.ParseDuration`, as the parser calls it) can read: it fails on an overflow.
 */
export const CRON_RULE =
  `!self.contains('TZ') && self.matches(r'${CRON_PATTERN}') && ` +
  `(!self.startsWith('@every ') || duration(self.substring(7)) == duration(self.substring(7))) && ` +
  `(self.startsWith('@') || self.findAll(r'[^,${CRON_SPACE}]+').all(i, i.startsWith('*') || i.startsWith('?') || ` +
  `i.split('/')[0].split('-').size() != 2 || ` +
  `${celCronValue("i.split('/')[0].split('-')[0]")} <= ${celCronValue("i.split('/')[0].split('-')[1]")}))`;

/**
 * A container image reference as the container runtimes parse it (the distribution/reference grammar):
 * `[registry[:port]/]path[:tag][@algorithm:hex]`, e.g. `redis:7.2-alpine`, `docker.io/library/redis:7.2`,
 * `registry.example.com:5000/team/valkey@sha256:<64 hex>`. No white space, no upper case in the path.
 */
const IMAGE_DOMAIN_COMPONENT = '([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IMAGE_PATH_COMPONENT = '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*';
export const IMAGE_PATTERN =
  `^((${IMAGE_DOMAIN_COMPONENT}(\\.${IMAGE_DOMAIN_COMPONENT})*(:[0-9]+)?|\\[[0-9a-fA-F:]+\\](:[0-9]+)?)/)?` +
  `${IMAGE_PATH_COMPONENT}(/${IMAGE_PATH_COMPONENT})*` +
  '(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?' +
  '(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$';

/** The largest number of bytes the operator computes with exactly (`Number.MAX_SAFE_INTEGER`, 8Pi - 1). */
export const MAX_BYTES = '9007199254740991';

/** A DNS-1123 subdomain (Secret names). */
const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/**
 * A label or annotation key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters
 * (letters, digits, '-', '_', '.'; starting and ending with a letter or digit). The rule checks the lengths.
 */
const QUALIFIED_NAME_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$';
/** CEL: `x` (a string) is a label key (qualified name): the pattern, at most 63 characters after the prefix. */
const QUALIFIED_NAME_CEL = (x: string): string =>
  `${x}.size() <= 317 && ${x}.split('/')[${x}.split('/').size() - 1].size() <= 63 && ${x}.matches(r'${QUALIFIED_NAME_PATTERN}')`;
/** A label value: empty, or at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit. */
const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
/** A Secret data key. */
const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
/** A PostgreSQL identifier, optionally schema-qualified. */
/** `name` or `schema.name`, at most 63 characters each (PostgreSQL's identifier limit, as the sidecar checks). */
const SQL_TABLE_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?$';

/**
 * The longest CacheCluster name: `<name>-flush` must fit the CronJob limit of 52 characters, and the
 * StatefulSet's `controller-revision-hash` label `<name>-<10 chars>` must fit 63.
 */
export const MAX_NAME_LENGTH = 46;

// ---- CEL rules ------------------------------------------------------------------------------------

/**
 * `maxMemory` and the memory limit as strings for `quantity()`: both are int-or-string, and `string()`
 * turns an int of bytes into a valid quantity. The limit is read with `['memory']`, not `.memory`: the
 * API server's cost estimator cannot bound the size of a map value selected as a field (the rule was
 * rejected as >100x over budget), but bounds an index expression by the values' maxLength.
 */
const MAX_MEMORY = 'string(self.eviction.maxMemory)';
/** The same, in a rule of the eviction object. */
const EV_MAX_MEMORY = 'string(self.maxMemory)';
const MEMORY_LIMIT = "string(self.resources.limits['memory'])";
const HAS_MEMORY_LIMIT = "has(self.resources) && has(self.resources.limits) && 'memory' in self.resources.limits";

export const RULES = {
  name: {
    rule: `self.metadata.name.size() <= ${MAX_NAME_LENGTH} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
    message:
      `metadata.name must be at most ${MAX_NAME_LENGTH} characters of lower-case letters, digits and '-', ` +
      'starting with a letter (it names the Services, the StatefulSet and the flush CronJob)',
  },
  evictionExactlyOne: {
    rule: 'has(self.maxMemory) != has(self.maxMemoryPercent)',
    message: 'set exactly one of eviction.maxMemory and eviction.maxMemoryPercent',
  },
  maxMemoryMinimum: {
    rule: "!has(self.maxMemory) || !isQuantity(string(self.maxMemory)) || quantity(string(self.maxMemory)).compareTo(quantity('1Mi')) >= 0",
    message: 'eviction.maxMemory must be at least 1Mi',
    fieldPath: '.maxMemory',
  },
  maxMemoryWholeBytes: {
    // quantity's isInteger() depends on how the value is stored (false for 1.5Gi), so: the value is one of the
    // two integers around its approximation (sub() and compareTo() are exact; above 8Pi the maximum's rule answers).
    rule:
      `!has(self.maxMemory) || !isQuantity(${EV_MAX_MEMORY}) || ` +
      `quantity(${EV_MAX_MEMORY}).compareTo(quantity('${MAX_BYTES}')) > 0 || ` +
      `quantity(${EV_MAX_MEMORY}).sub(int(quantity(${EV_MAX_MEMORY}).asApproximateFloat())).compareTo(quantity('0')) == 0 || ` +
      `quantity(${EV_MAX_MEMORY}).sub(int(quantity(${EV_MAX_MEMORY}).asApproximateFloat()) + 1).compareTo(quantity('0')) == 0`,
    message: 'eviction.maxMemory must be a whole number of bytes (e.g. 1048576, 1Mi or 1.5Gi; not 1048576.5 or 1.3Ki)',
    fieldPath: '.maxMemory',
  },
  maxMemoryMaximum: {
    rule: `!has(self.maxMemory) || !isQuantity(string(self.maxMemory)) || quantity(string(self.maxMemory)).compareTo(quantity('${MAX_BYTES}')) <= 0`,
    message: `eviction.maxMemory must be below 8Pi (at most ${MAX_BYTES} bytes)`,
    fieldPath: '.maxMemory',
  },
  memoryLimitMaximum: {
    rule: `!(${HAS_MEMORY_LIMIT}) || !isQuantity(${MEMORY_LIMIT}) || quantity(${MEMORY_LIMIT}).compareTo(quantity('${MAX_BYTES}')) <= 0`,
    message: `resources.limits.memory must be below 8Pi (at most ${MAX_BYTES} bytes)`,
    fieldPath: '.resources.limits',
  },
  derivedMaxMemoryMinimum: {
    rule:
      `!(${HAS_MEMORY_LIMIT}) || !has(self.eviction) || !has(self.eviction.maxMemoryPercent) || !isQuantity(${MEMORY_LIMIT}) || ` +
      `quantity(${MEMORY_LIMIT}).asApproximateFloat() * double(self.eviction.maxMemoryPercent) >= 104857600.0`,
    message:
      'maxmemory, eviction.maxMemoryPercent of resources.limits.memory, must be at least 1Mi: raise the memory ' +
      'limit or the percentage',
    fieldPath: '.resources.limits',
  },
  defaultMaxMemoryMinimum: {
    rule:
      `!(${HAS_MEMORY_LIMIT}) || (has(self.eviction) && (has(self.eviction.maxMemory) || has(self.eviction.maxMemoryPercent))) || ` +
      `!isQuantity(${MEMORY_LIMIT}) || ` +
      `quantity(${MEMORY_LIMIT}).asApproximateFloat() * ${DEFAULTS.eviction.maxMemoryPercent}.0 >= 104857600.0`,
    message:
      `maxmemory, ${DEFAULTS.eviction.maxMemoryPercent}% of resources.limits.memory when eviction sets neither ` +
      'maxMemory nor maxMemoryPercent, must be at least 1Mi: raise the memory limit, or set eviction.maxMemory',
    fieldPath: '.resources.limits',
  },
  quantitiesNotNegative: {
    rule: "self.all(k, !isQuantity(string(self[k])) || quantity(string(self[k])).compareTo(quantity('0')) >= 0)",
    message: 'resources.limits and resources.requests must not be negative',
  },
  requestsWithinLimits: {
    rule:
      '!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || ' +
      '!isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || ' +
      'quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)',
    message:
      'resources.requests must not exceed resources.limits of the same resource (e.g. requests.memory <= limits.memory)',
  },
  maxMemoryPercentNeedsLimit: {
    rule: `!has(self.eviction) || !has(self.eviction.maxMemoryPercent) || (${HAS_MEMORY_LIMIT})`,
    message:
      'eviction.maxMemoryPercent is a percentage of resources.limits.memory: set that limit, or use eviction.maxMemory',
    fieldPath: '.eviction.maxMemoryPercent',
    reason: 'FieldValueForbidden',
  },
  maxMemoryWithinLimit: {
    rule:
      `!has(self.eviction) || !has(self.eviction.maxMemory) || !(${HAS_MEMORY_LIMIT}) || ` +
      `!isQuantity(${MAX_MEMORY}) || !isQuantity(${MEMORY_LIMIT}) || ` +
      `!quantity(${MAX_MEMORY}).isGreaterThan(quantity(${MEMORY_LIMIT}))`,
    message: 'eviction.maxMemory must not exceed resources.limits.memory (Redis would be OOM-killed before it evicts)',
    fieldPath: '.eviction.maxMemory',
  },
  shardsAtLeastThree: {
    rule: '!has(self.shards) || self.shards >= 3',
    message: 'shards must be at least 3: a Redis Cluster needs a majority of its primaries to fail a shard over',
    fieldPath: '.shards',
  },
  shardsOnlyWithCluster: {
    rule: "!has(self.shards) || (has(self.topology) && self.topology == 'cluster')",
    message: 'shards applies only to topology: cluster',
    fieldPath: '.shards',
    reason: 'FieldValueForbidden',
  },
  replicasNotWithStandalone: {
    rule: "!has(self.replicas) || self.replicas == 0 || (has(self.topology) && self.topology != 'standalone')",
    message: 'topology standalone has no read replicas: set topology: replication, or replicas: 0',
    fieldPath: '.replicas',
    reason: 'FieldValueForbidden',
  },
  durabilityReplicatedNeedsReplicas: {
    rule:
      "!has(self.durability) || !has(self.durability.mode) || self.durability.mode != 'replicated' || " +
      "(has(self.topology) && self.topology == 'replication' && (!has(self.replicas) || self.replicas >= 1))",
    message:
      'durability.mode replicated waits for a replica: it needs topology replication with replicas >= 1 ' +
      '(or set durability.mode: primary)',
    fieldPath: '.durability.mode',
    reason: 'FieldValueForbidden',
  },
  persistenceModeNeedsStorage: {
    rule: "!has(self.mode) || self.mode == 'none' || has(self.storage)",
    message:
      'persistence.mode rdb and aof write to a volume: set persistence.storage.size (e.g. storage: {size: 1Gi}), ' +
      'or use mode none',
    fieldPath: '.storage',
    reason: 'FieldValueRequired',
  },
  retentionNeedsStorage: {
    rule: '!has(self.persistentVolumeClaimRetentionPolicy) || has(self.storage)',
    message: 'persistence.persistentVolumeClaimRetentionPolicy applies only with persistence.storage (the volumes)',
    fieldPath: '.persistentVolumeClaimRetentionPolicy',
    reason: 'FieldValueForbidden',
  },
  storageSizePositive: {
    rule: "!isQuantity(string(self.size)) || quantity(string(self.size)).isGreaterThan(quantity('0'))",
    message: 'persistence.storage.size must be a positive quantity of bytes, such as 1Gi',
    fieldPath: '.size',
  },
  storageImmutable: {
    rule:
      '(has(self.persistence) && has(self.persistence.storage)) == (has(oldSelf.persistence) && has(oldSelf.persistence.storage)) && ' +
      '(!has(self.persistence) || !has(self.persistence.storage) || self.persistence.storage == oldSelf.persistence.storage)',
    message:
      "persistence.storage cannot be added, removed or changed once the CacheCluster exists (a StatefulSet's " +
      'volumeClaimTemplates are immutable): create a new CacheCluster, or give storage at creation to switch ' +
      'persistence.mode later',
    fieldPath: '.persistence.storage',
    reason: 'FieldValueForbidden',
  },
  podLabelKeys: {
    rule: `self.all(k, k.size() <= 317 && k.split('/')[k.split('/').size() - 1].size() <= 63 && k.matches(r'${QUALIFIED_NAME_PATTERN}'))`,
    message:
      'keys of podTemplate labels, annotations, nodeSelector and matchLabels must be label keys: an optional DNS ' +
      "prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or " +
      'digit (e.g. team, example.com/tier)',
  },
  podLabelsNotReserved: {
    rule: `self.all(k, !k.startsWith('${RESERVED_KEY_PREFIX}') && !(k in [${RESERVED_POD_LABELS.map((l) => `'${l}'`).join(', ')}]))`,
    message:
      `podTemplate.metadata.labels must not set the labels the operator and the StatefulSet controller set: ` +
      `${RESERVED_POD_LABELS.join(', ')}, or any ${RESERVED_KEY_PREFIX} key`,
  },
  podAnnotationsNotReserved: {
    rule: `self.all(k, !k.startsWith('${RESERVED_KEY_PREFIX}'))`,
    message: `podTemplate.metadata.annotations must not set the operator's annotations (any ${RESERVED_KEY_PREFIX} key)`,
  },
  tolerationKey: {
    rule: `self == '' || (${QUALIFIED_NAME_CEL('self')})`,
    message:
      "podTemplate.spec.tolerations[].key must be a label key: an optional DNS prefix and '/', then at most 63 " +
      "letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. dedicated, example.com/gpu)",
  },
  tolerationExistsHasNoValue: {
    rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
    message:
      'a toleration with operator Exists matches every value of its key: leave value out (or use operator Equal)',
    fieldPath: '.value',
    reason: 'FieldValueForbidden',
  },
  tolerationEmptyKeyNeedsExists: {
    rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
    message:
      'a toleration without key matches every taint, which needs operator Exists: set operator: Exists, or a key',
    fieldPath: '.operator',
  },
  tolerationSecondsNeedsNoExecute: {
    rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
    message: 'tolerationSeconds applies only to effect NoExecute (how long the pod stays after such a taint appears)',
    fieldPath: '.tolerationSeconds',
    reason: 'FieldValueForbidden',
  },
  requirementKey: {
    rule: QUALIFIED_NAME_CEL('self.key'),
    message:
      "the key of a label or node selector requirement must be a label key: an optional DNS prefix and '/', then " +
      "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    fieldPath: '.key',
  },
  requirementValuesForIn: {
    rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && self.values.size() > 0)",
    message: 'operator In and NotIn need values: give at least one',
    fieldPath: '.values',
    reason: 'FieldValueRequired',
  },
  requirementNoValuesForExists: {
    rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || self.values.size() == 0",
    message: 'operator Exists and DoesNotExist take no values: leave values out',
    fieldPath: '.values',
    reason: 'FieldValueForbidden',
  },
  requirementOneIntegerForGtLt: {
    rule:
      "!(self.operator in ['Gt', 'Lt']) || (has(self.values) && self.values.size() == 1 && " +
      `self.values[0].matches(r'^[-+]?0*(0|${atMostDecimal('9223372036854775807')})$'))`,
    message: 'operator Gt and Lt need exactly one value, an integer (e.g. values: ["4"])',
    fieldPath: '.values',
  },
  nodeFieldRequirement: {
    rule: "self.key == 'metadata.name' && self.operator in ['In', 'NotIn'] && has(self.values) && self.values.size() == 1",
    message:
      'matchFields supports only key metadata.name, with operator In or NotIn and exactly one value (a node name)',
  },
  resourceNames: {
    rule:
      "self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || " +
      "k.matches(r'^hugepages-[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$') || " +
      `(k.contains('/') && !k.startsWith('requests.') && ${QUALIFIED_NAME_CEL('k')}))`,
    message:
      'resources.limits and resources.requests name cpu, memory, ephemeral-storage, hugepages-<size> (e.g. ' +
      "hugepages-2Mi) or an extended resource with a domain prefix (e.g. nvidia.com/gpu); 'gpu' alone is not a resource",
  },
  cronSchedule: {
    rule: CRON_RULE,
    message:
      'flush.schedule must be a cron expression of 5 fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or ' +
      'JAN-DEC, day of week 0-6 or SUN-SAT; ranges ascending, e.g. 1-5 not 5-1), such as "0 2 * * *" or ' +
      '"*/15 * * * *", or one of @hourly, @daily, @weekly, @monthly, @yearly, or @every <duration> such as @every 6h',
  },
  timeZone: {
    rule: `self in [${TIME_ZONES.map((z) => `'${z}'`).join(', ')}]`,
    message:
      'flush.timeZone must be a time zone name of the IANA database, such as Europe/Berlin, America/New_York, UTC ' +
      'or Etc/GMT+5 (case matters; Local and UTC offsets such as UTC+5 are not names)',
  },
  writeBackNeedsSafeEviction: {
    rule:
      "!has(self.sidecar) || !has(self.sidecar.writePolicy) || self.sidecar.writePolicy != 'write-back' || " +
      "(has(self.eviction) && has(self.eviction.policy) && !self.eviction.policy.startsWith('allkeys-'))",
    message:
      'sidecar.writePolicy write-back keeps acknowledged writes in Redis until the database has them: set ' +
      'eviction.policy to noeviction or a volatile-* policy (allkeys-* policies could evict them)',
    fieldPath: '.sidecar.writePolicy',
  },
  l1MaxBytesRange: {
    rule:
      '!has(self.maxBytes) || !isQuantity(string(self.maxBytes)) || ' +
      "(quantity(string(self.maxBytes)).compareTo(quantity('1')) >= 0 && quantity(string(self.maxBytes)).compareTo(quantity('256Ti')) <= 0)",
    message: 'sidecar.l1.maxBytes must be between 1 byte and 256Ti',
    fieldPath: '.maxBytes',
  },
  peerExactlyOne: {
    rule: 'has(self.cacheCluster) != has(self.redis)',
    message: 'set exactly one of cacheCluster and redis in each invalidation peer',
  },
  originExactlyOne: {
    rule: 'has(self.postgres) != has(self.http)',
    message: 'set exactly one of sidecar.origin.postgres and sidecar.origin.http',
  },
} satisfies Record<string, ValidationRule>;

// ---- Schema building blocks -----------------------------------------------------------------------

function str(description: string, extra: Omit<JSONSchemaProps, 'type' | 'description'> = {}): JSONSchemaProps {
  return { type: 'string', description, ...extra };
}
function int(description: string, extra: Omit<JSONSchemaProps, 'type' | 'description'> = {}): JSONSchemaProps {
  return { type: 'integer', description, ...extra };
}
function int64(description: string, extra: Omit<JSONSchemaProps, 'type' | 'description'> = {}): JSONSchemaProps {
  return { type: 'integer', format: 'int64', description, ...extra };
}
function bool(description: string): JSONSchemaProps {
  return { type: 'boolean', description };
}
function obj(
  description: string,
  properties: Record<string, JSONSchemaProps>,
  extra: Omit<JSONSchemaProps, 'type' | 'description' | 'properties'> = {},
): JSONSchemaProps {
  return { type: 'object', description, properties, ...extra };
}
function bytesQuantity(description: string): JSONSchemaProps {
  return {
    description,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: BYTES_QUANTITY_PATTERN,
    maxLength: 32,
    'x-kubernetes-int-or-string': true,
  };
}
function resourceQuantity(description: string): JSONSchemaProps {
  return {
    description,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: RESOURCE_QUANTITY_PATTERN,
    maxLength: 64,
    'x-kubernetes-int-or-string': true,
  };
}
function secretKeyRef(description: string): JSONSchemaProps {
  return obj(
    description,
    {
      name: str("Name of a Secret in the CacheCluster's namespace.", {
        minLength: 1,
        maxLength: 253,
        pattern: DNS_SUBDOMAIN_PATTERN,
      }),
      key: str("Key within the Secret's data.", { minLength: 1, maxLength: 253, pattern: SECRET_KEY_PATTERN }),
    },
    { required: ['name', 'key'] },
  );
}
function enumOf(
  description: string,
  values: readonly string[],
  extra: Omit<JSONSchemaProps, 'type' | 'description' | 'enum'> = {},
): JSONSchemaProps {
  return { type: 'string', description, enum: [...values], ...extra };
}

// ---- The spec -------------------------------------------------------------------------------------

const D = DEFAULTS;

const evictionSchema = obj(
  'Live memory settings of every Redis pod (primary and replicas): applied with CONFIG SET and verified with ' +
    'CONFIG GET, never by restarting a pod. Set exactly one of maxMemory and maxMemoryPercent. When eviction ' +
    `is left out: policy ${D.eviction.policy}, and maxmemory ${D.eviction.maxMemoryPercent}% of ` +
    `resources.limits.memory when that is set, else ${String(D.eviction.maxMemory)}.`,
  {
    policy: enumOf(
      'maxmemory-policy: which keys Redis evicts when maxmemory is reached. allkeys-* consider every key, volatile-* ' +
        'only keys with a TTL; lru evicts the least recently used, lfu the least frequently used, random any, ' +
        `ttl the nearest expiry; noeviction refuses writes instead. Default ${D.eviction.policy}.`,
      EVICTION_POLICIES,
      { default: D.eviction.policy },
    ),
    maxMemory: bytesQuantity(
      'maxmemory as a Kubernetes quantity of bytes (256Mi = 268435456 bytes, 500M = 500000000 bytes) or an ' +
        'integer of bytes; at least 1Mi and at most resources.limits.memory when that is set. Note that Redis ' +
        "writes '256mb' for 256Mi; '256m' is not accepted here.",
    ),
    maxMemoryPercent: int(
      'maxmemory as a percentage (10-95) of resources.limits.memory, which must be set; rounded down to whole bytes. ' +
        'Leave room for replication buffers and fragmentation: 70-80 is typical.',
      { minimum: 10, maximum: 95 },
    ),
  },
  {
    'x-kubernetes-validations': [
      RULES.evictionExactlyOne,
      RULES.maxMemoryMinimum,
      RULES.maxMemoryWholeBytes,
      RULES.maxMemoryMaximum,
    ],
  },
);

const flushSchema = obj(
  'A scheduled invalidation of the whole cache: a CronJob `<name>-flush` deletes the cache records on the primary (not the write-back journal) and ' +
    'tells every sidecar to drop its L1. Leave it out for no scheduled flush.',
  {
    schedule: str(
      'When to flush, as a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 2 * * *" ' +
        'or "*/15 * * * *" or "0 0 1,15 * MON-FRI", or one of @hourly, @daily, @weekly, @monthly, @yearly.',
      { minLength: 1, maxLength: 128, 'x-kubernetes-validations': [RULES.cronSchedule] },
    ),
    timeZone: str(
      'Time zone of the schedule: a name of the IANA time zone database as the CronJob API knows it, e.g. ' +
        'Europe/Berlin, America/New_York, UTC or Etc/GMT+5 (Local and offsets such as UTC+5 are rejected). ' +
        'Default: the time zone of the kube-controller-manager (normally UTC).',
      { minLength: 1, maxLength: 64, 'x-kubernetes-validations': [RULES.timeZone] },
    ),
  },
  { required: ['schedule'] },
);

const authSchema = obj(
  'Password authentication for Redis (requirepass and masterauth). Leave it out for a Redis without a password, ' +
    'reachable by every pod that can reach the Service.',
  {
    secretRef: secretKeyRef(
      "The Secret key holding the password. Pods read it through environment variables; changing the Secret's name " +
        'or key restarts the pods.',
    ),
  },
  { required: ['secretRef'] },
);

const persistenceSchema = obj(
  'Whether Redis writes its data to disk, and the volumes it writes to. mode is a live setting (CONFIG SET ' +
    'appendonly / save on every pod, no restart); storage is fixed when the CacheCluster is created.',
  {
    mode: enumOf(
      'none: memory only; rdb: snapshots (save 3600 1 300 100 60 10000); aof: append-only file, fsync every ' +
        `second. rdb and aof need storage. Changed live, without a restart. Default ${D.persistence.mode}.`,
      PERSISTENCE_MODES,
    ),
    storage: obj(
      'One PersistentVolumeClaim per Redis pod (volumeClaimTemplate "data"), mounted at /data where Redis writes. ' +
        'Required for mode rdb or aof; with mode none it keeps the volumes ready for a later live switch. Cannot ' +
        'be added, removed or changed after creation (a StatefulSet cannot change its volumeClaimTemplates).',
      {
        size: bytesQuantity('Volume size per pod, a quantity of bytes such as 1Gi or 500M.'),
        className: str("StorageClass of the volumes. Default: the cluster's default StorageClass.", {
          minLength: 1,
          maxLength: 253,
          pattern: DNS_SUBDOMAIN_PATTERN,
        }),
      },
      { required: ['size'], 'x-kubernetes-validations': [RULES.storageSizePositive] },
    ),
    persistentVolumeClaimRetentionPolicy: obj(
      "What happens to the volumes (the StatefulSet's persistentVolumeClaimRetentionPolicy); only with storage.",
      {
        whenDeleted: enumOf(
          `Retain or Delete the volumes when the CacheCluster is deleted. Default ${D.persistence.whenDeleted}.`,
          RETENTION_POLICIES,
        ),
        whenScaled: enumOf(
          'Retain or Delete the volume of a pod removed by scaling replicas down (Retain: scaling up again ' +
            `reuses it). Default ${D.persistence.whenScaled}.`,
          RETENTION_POLICIES,
        ),
      },
    ),
  },
  { 'x-kubernetes-validations': [RULES.persistenceModeNeedsStorage, RULES.retentionNeedsStorage] },
);

// ---- Placement: Kubernetes core/v1 types, as the Pod API has them ------------------------------------

const LABEL_KEY_MAX = 317;
const labelKey = (description: string) => str(description, { minLength: 1, maxLength: LABEL_KEY_MAX });
const labelKeys = (description: string) => ({
  type: 'array' as const,
  description,
  items: labelKey('A label key.'),
  maxItems: 32,
});
const stringMap = (description: string, value: JSONSchemaProps, rules: ValidationRule[]): JSONSchemaProps => ({
  type: 'object',
  description,
  additionalProperties: value,
  maxProperties: 64,
  'x-kubernetes-validations': rules,
});
const labelValue = str('A label value.', { maxLength: 63, pattern: LABEL_VALUE_PATTERN });

function labelSelector(description: string): JSONSchemaProps {
  return obj(description, {
    matchLabels: stringMap('Labels the pods must have.', labelValue, [RULES.podLabelKeys]),
    matchExpressions: {
      type: 'array',
      description: "Requirements on the pods' labels, all of which must hold.",
      maxItems: 32,
      items: obj(
        'A label requirement.',
        {
          key: labelKey('The label key.'),
          operator: enumOf('In, NotIn, Exists or DoesNotExist.', ['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: {
            type: 'array',
            description: 'Values for In and NotIn; empty for Exists and DoesNotExist.',
            items: str('A label value.', { maxLength: 63, pattern: LABEL_VALUE_PATTERN }),
            maxItems: 64,
          },
        },
        {
          required: ['key', 'operator'],
          'x-kubernetes-validations': [
            RULES.requirementKey,
            RULES.requirementValuesForIn,
            RULES.requirementNoValuesForExists,
          ],
        },
      ),
    },
  });
}

/**
 * Requirements of a node selector term: on labels (matchExpressions: a label key, values as the operator needs),
 * or on fields (matchFields: only metadata.name, In or NotIn, one value), as core/v1 validation has them.
 */
const nodeSelectorRequirements = (description: string, on: 'labels' | 'fields'): JSONSchemaProps => ({
  type: 'array',
  description,
  maxItems: 32,
  items: obj(
    'A node selector requirement.',
    {
      key: labelKey('The label (or field) key.'),
      operator: enumOf('In, NotIn, Exists, DoesNotExist, Gt or Lt.', [
        'In',
        'NotIn',
        'Exists',
        'DoesNotExist',
        'Gt',
        'Lt',
      ]),
      values: {
        type: 'array',
        description: 'Values for In and NotIn, one integer for Gt and Lt, none for Exists and DoesNotExist.',
        items: str('A value.', { maxLength: 256 }),
        maxItems: 64,
      },
    },
    {
      required: ['key', 'operator'],
      'x-kubernetes-validations':
        on === 'labels'
          ? [
              RULES.requirementKey,
              RULES.requirementValuesForIn,
              RULES.requirementNoValuesForExists,
              RULES.requirementOneIntegerForGtLt,
            ]
          : [RULES.nodeFieldRequirement],
    },
  ),
});

const nodeSelectorTerm = (description: string): JSONSchemaProps =>
  obj(description, {
    matchExpressions: nodeSelectorRequirements("Requirements on the node's labels.", 'labels'),
    matchFields: nodeSelectorRequirements("Requirements on the node's fields (metadata.name).", 'fields'),
  });

const weight = int("Weight, 1-100, added to a node's score when the term matches.", { minimum: 1, maximum: 100 });

const podAffinityTerm = (description: string): JSONSchemaProps =>
  obj(
    description,
    {
      labelSelector: labelSelector('The pods this term is about.'),
      namespaces: {
        type: 'array',
        description: "Namespaces of those pods. Default: the CacheCluster's namespace.",
        items: str('A namespace name.', { maxLength: 63 }),
        maxItems: 64,
      },
      topologyKey: labelKey('The node label whose value defines a domain, e.g. kubernetes.io/hostname.'),
      namespaceSelector: labelSelector('Namespaces of those pods, by label.'),
      matchLabelKeys: labelKeys("Keys of the incoming pod's labels added to labelSelector with their values."),
      mismatchLabelKeys: labelKeys(
        "Keys of the incoming pod's labels added to labelSelector as must-not-match values.",
      ),
    },
    { required: ['topologyKey'] },
  );

const podAffinity = (description: string): JSONSchemaProps =>
  obj(description, {
    requiredDuringSchedulingIgnoredDuringExecution: {
      type: 'array',
      description: 'Terms that must hold for a pod to be scheduled.',
      items: podAffinityTerm('A pod affinity term.'),
      maxItems: 16,
    },
    preferredDuringSchedulingIgnoredDuringExecution: {
      type: 'array',
      description: 'Weighted terms the scheduler prefers.',
      items: obj(
        'A weighted pod affinity term.',
        { weight, podAffinityTerm: podAffinityTerm('The term.') },
        { required: ['weight', 'podAffinityTerm'] },
      ),
      maxItems: 16,
    },
  });

const affinitySchema = obj("The Redis pods' affinity (core/v1 Affinity).", {
  nodeAffinity: obj('Which nodes the pods may or prefer to run on.', {
    requiredDuringSchedulingIgnoredDuringExecution: obj(
      'The node must match one of the terms.',
      {
        nodeSelectorTerms: {
          type: 'array',
          description: 'Terms, ORed.',
          items: nodeSelectorTerm('A node selector term; its requirements are ANDed.'),
          maxItems: 16,
        },
      },
      { required: ['nodeSelectorTerms'] },
    ),
    preferredDuringSchedulingIgnoredDuringExecution: {
      type: 'array',
      description: 'Weighted terms the scheduler prefers.',
      items: obj(
        'A weighted node selector term.',
        { weight, preference: nodeSelectorTerm('The term.') },
        { required: ['weight', 'preference'] },
      ),
      maxItems: 16,
    },
  }),
  podAffinity: podAffinity('Pods the Redis pods should run near.'),
  podAntiAffinity: podAffinity(
    'Pods the Redis pods should run apart from. When left out: preferred (weight 100), spread this ' +
      `CacheCluster's pods over ${D.antiAffinityTopologyKey}. Setting it replaces that default; {} turns it off.`,
  ),
});

const podTemplateSchema = obj(
  'Labels, annotations and placement of the Redis pods. Changing it rolls the pods (a new pod template). ' +
    'It cannot change what the operator sets for security (Pod Security restricted) or its own labels.',
  {
    metadata: obj('Extra labels and annotations of the Redis pods.', {
      labels: stringMap(
        `Extra pod labels. Keys the operator or the StatefulSet controller set (${RESERVED_POD_LABELS.join(', ')}, ` +
          `${RESERVED_KEY_PREFIX}*) are rejected.`,
        labelValue,
        [RULES.podLabelKeys, RULES.podLabelsNotReserved],
      ),
      annotations: stringMap(
        `Extra pod annotations. ${RESERVED_KEY_PREFIX}* keys are rejected.`,
        str('An annotation value.', { maxLength: 4096 }),
        [RULES.podLabelKeys, RULES.podAnnotationsNotReserved],
      ),
    }),
    spec: obj('Placement and image pulls of the Redis pods (fields of core/v1 PodSpec).', {
      nodeSelector: stringMap(
        'Node labels the pods need (pod.spec.nodeSelector).',
        str('A label value.', { maxLength: 63, pattern: LABEL_VALUE_PATTERN }),
        [RULES.podLabelKeys],
      ),
      tolerations: {
        type: 'array',
        description: 'Taints the pods tolerate (pod.spec.tolerations).',
        maxItems: 64,
        items: obj(
          'A toleration (core/v1 Toleration).',
          {
            key: str('The taint key; empty with operator Exists matches every taint.', {
              maxLength: LABEL_KEY_MAX,
              'x-kubernetes-validations': [RULES.tolerationKey],
            }),
            operator: enumOf('Exists or Equal. Default Equal.', ['Exists', 'Equal']),
            value: str('The taint value, with operator Equal (empty with Exists).', {
              maxLength: 63,
              pattern: LABEL_VALUE_PATTERN,
            }),
            effect: enumOf('NoSchedule, PreferNoSchedule or NoExecute; empty matches every effect.', [
              'NoSchedule',
              'PreferNoSchedule',
              'NoExecute',
            ]),
            tolerationSeconds: int64('With effect NoExecute: how long the pod stays bound after the taint appears.'),
          },
          {
            'x-kubernetes-validations': [
              RULES.tolerationExistsHasNoValue,
              RULES.tolerationEmptyKeyNeedsExists,
              RULES.tolerationSecondsNeedsNoExecute,
            ],
          },
        ),
      },
      affinity: affinitySchema,
      topologySpreadConstraints: {
        type: 'array',
        description: 'How the pods spread over topology domains (pod.spec.topologySpreadConstraints).',
        maxItems: 16,
        items: obj(
          "A topology spread constraint (core/v1). labelSelector defaults to this CacheCluster's Redis pods.",
          {
            maxSkew: int('Most the number of pods may differ between domains.', { minimum: 1 }),
            topologyKey: labelKey('The node label whose value defines a domain, e.g. topology.kubernetes.io/zone.'),
            whenUnsatisfiable: enumOf('DoNotSchedule or ScheduleAnyway.', ['DoNotSchedule', 'ScheduleAnyway']),
            labelSelector: labelSelector("The pods counted. Default: this CacheCluster's Redis pods."),
            minDomains: int('Least number of eligible domains (with DoNotSchedule).', { minimum: 1 }),
            nodeAffinityPolicy: enumOf("Honor or Ignore the pod's nodeAffinity/nodeSelector. Default Honor.", [
              'Honor',
              'Ignore',
            ]),
            nodeTaintsPolicy: enumOf('Honor or Ignore node taints. Default Ignore.', ['Honor', 'Ignore']),
            matchLabelKeys: labelKeys("Keys of the pod's labels whose values narrow labelSelector."),
          },
          { required: ['maxSkew', 'topologyKey', 'whenUnsatisfiable'] },
        ),
      },
      priorityClassName: str('PriorityClass of the pods (pod.spec.priorityClassName).', {
        minLength: 1,
        maxLength: 253,
        pattern: DNS_SUBDOMAIN_PATTERN,
      }),
      imagePullSecrets: {
        type: 'array',
        description:
          "Secrets in the CacheCluster's namespace for pulling the images; also given to the flush CronJob's pods.",
        maxItems: 16,
        items: obj(
          'A Secret reference.',
          { name: str('The Secret name.', { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN }) },
          { required: ['name'] },
        ),
      },
    }),
  },
);

const resourcesSchema = obj(
  'Compute resources of the Redis container (core/v1 ResourceRequirements). Set limits.memory to use ' +
    'eviction.maxMemoryPercent and to have maxMemory checked against it. Changing it restarts the pods.',
  {
    limits: {
      type: 'object',
      description: 'The most the container may use, e.g. {memory: 512Mi, cpu: "1"}.',
      additionalProperties: resourceQuantity('A resource quantity.'),
      maxProperties: 16,
      'x-kubernetes-validations': [RULES.resourceNames, RULES.quantitiesNotNegative],
    },
    requests: {
      type: 'object',
      description: 'What the scheduler reserves for the container, e.g. {memory: 512Mi, cpu: 100m}.',
      additionalProperties: resourceQuantity('A resource quantity.'),
      maxProperties: 16,
      'x-kubernetes-validations': [RULES.resourceNames, RULES.quantitiesNotNegative],
    },
  },
  { 'x-kubernetes-validations': [RULES.requestsWithinLimits] },
);

const metricsSchema = obj('Prometheus metrics of the Redis pods.', {
  exporter: bool(
    'Run the redis_exporter container next to Redis, serving /metrics on port 9121 (also exposed as port ' +
      `"metrics" of the headless Service). Changing it restarts the pods. Default ${String(D.metrics.exporter)}.`,
  ),
  serviceMonitor: bool(
    'Create a prometheus-operator ServiceMonitor for the exporter. Accepted but not supported yet (reported in ' +
      `condition Unsupported). Default ${String(D.metrics.serviceMonitor)}.`,
  ),
});

const sidecarSchema = obj(
  'Defaults for the sidecars injected into pods annotated cache.ripplecache.io/inject: <this name>. Changing them ' +
    'never restarts Redis; the sidecar reads them from the ConfigMap <name>-config (key sidecar.yaml).',
  {
    l1: obj(
      'The in-process (L1) cache of each sidecar.',
      {
        policy: enumOf(
          'Which entry L1 drops when full: tinylfu (W-TinyLFU: admits a new key only if it is used more than ' +
            'the entry it would replace), lru (CLOCK), lfu, fifo, or ttl (nearest expiry first). ' +
            `Default ${D.sidecar.l1.policy}.`,
          L1_POLICIES,
        ),
        maxEntries: int(`Most entries held in L1. Default ${D.sidecar.l1.maxEntries}.`, {
          minimum: 1,
          maximum: 100_000_000,
        }),
        maxBytes: bytesQuantity(
          `Most bytes of values held in L1, as a quantity. Default ${String(D.sidecar.l1.maxBytes)}.`,
        ),
        maxTTLSeconds: int(
          'Longest an entry stays in L1 (it is also capped at its remaining TTL in Redis); 0 disables L1. ' +
            `Default ${D.sidecar.l1.maxTTLSeconds}.`,
          { minimum: 0, maximum: 86_400 },
        ),
      },
      { 'x-kubernetes-validations': [RULES.l1MaxBytesRange] },
    ),
    writePolicy: enumOf(
      'write-through: a PUT is acknowledged once in Redis and the origin; write-back: once in Redis and a durable ' +
        'journal, the origin is written in batches; write-around: the origin only, the cache entry is invalidated. ' +
        `Default ${D.sidecar.writePolicy}.`,
      WRITE_POLICIES,
    ),
    writeBack: obj('Batching of writes to the origin with writePolicy write-back.', {
      flushIntervalMs: int(
        `Most time a write waits before it is sent to the origin. Default ${D.sidecar.writeBack.flushIntervalMs}.`,
        {
          minimum: 10,
          maximum: 3_600_000,
        },
      ),
      flushBatchSize: int(
        `Most writes sent to the origin in one batch. Default ${D.sidecar.writeBack.flushBatchSize}.`,
        {
          minimum: 1,
          maximum: 100_000,
        },
      ),
      maxPending: int(
        'Most writes waiting for the origin; further PUTs are rejected (503) until the journal drains. ' +
          `Default ${D.sidecar.writeBack.maxPending}.`,
        { minimum: 1, maximum: 100_000_000 },
      ),
      coalesceWindowMs: int(
        "Hold each key's writes this long before writing them to the origin, so that a key written many times " +
          'is written once per window. The origin lags the cache by up to this plus flushIntervalMs; the journal ' +
          "holds every write meanwhile (nothing acknowledged is lost). 0: off. Under half the sidecars' claim " +
          `timeout (30 s). Default ${D.sidecar.writeBack.coalesceWindowMs}.`,
        { minimum: 0, maximum: 14_999 },
      ),
    }),
    origin: obj(
      'The application database the sidecar reads through and writes to: exactly one of postgres and http. ' +
        'Injected sidecars get it from here (a PostgreSQL URL through the Secret, as RIPPLECACHE_ORIGIN).',
      {
        postgres: obj(
          'A PostgreSQL table of (key, value, content_type, expires_at) rows.',
          {
            secretRef: secretKeyRef('The Secret key holding a postgres:// connection URL (with its password).'),
            table: str(`The table, optionally schema-qualified. Default ${D.sidecar.postgresTable}.`, {
              minLength: 1,
              maxLength: 127,
              pattern: SQL_TABLE_PATTERN,
            }),
          },
          { required: ['secretRef'] },
        ),
        http: obj(
          'An HTTP service answering GET/PUT/DELETE <url>/<key>.',
          {
            url: str('Base URL, http:// or https://.', {
              minLength: 8,
              maxLength: 2048,
              pattern: '^https?://[^\\s]+$',
            }),
          },
          { required: ['url'] },
        ),
      },
      { 'x-kubernetes-validations': [RULES.originExactlyOne] },
    ),
  },
);

const failoverSchema = obj(
  'Automatic failover (topology replication): when the primary is lost for afterSeconds, the operator promotes ' +
    'the healthy replica with the highest replication offset, points the other replicas at it and moves the ' +
    'cache.ripplecache.io/role: primary label (removed from the old primary first).',
  {
    afterSeconds: int(
      'Seconds the primary must be lost (its pod not Ready, or its Redis unreachable from the operator) before a ' +
        `replica is promoted (1-300). Default ${D.failover.afterSeconds}.`,
      { minimum: 1, maximum: 300 },
    ),
  },
);

const durabilitySchema = obj(
  'When a sidecar acknowledges a write-back journal append or a versioned record write (write-through, ' +
    'write-around). replicated: after the Redis step the sidecar waits (WAIT 1 timeoutMs) until at least one ' +
    'replica has the write, and answers 503 ReplicationTimeout (nothing acknowledged) when none did in time; ' +
    'the operator also sets min-replicas-to-write 1 and min-replicas-max-lag maxLagSeconds on every Redis pod, ' +
    'so that a primary cut off from its replicas refuses writes (503) instead of accepting writes a failover ' +
    'would lose. primary: acknowledged once the primary has it (a failover can lose the last writes). ' +
    'Replication stays asynchronous: see the README section Durability for what is and is not guaranteed. ' +
    'Changing it never restarts Redis.',
  {
    mode: enumOf(
      `replicated or primary. Default ${D.durability.modeWithReplicas} with topology replication and replicas >= 1, ` +
        `${D.durability.modeWithoutReplicas} otherwise; replicated is refused without a replica.`,
      DURABILITY_MODES,
    ),
    timeoutMs: int(
      'Longest wait in ms for a replica to acknowledge a write (mode replicated); then the write is answered ' +
        `503 ReplicationTimeout. 1-60000. Default ${D.durability.timeoutMs}.`,
      { minimum: 1, maximum: 60_000 },
    ),
    maxLagSeconds: int(
      'min-replicas-max-lag of the fence (mode replicated): a replica that has not acknowledged for longer than ' +
        'this many seconds does not count, and with none left the primary refuses writes. 1-60. Default ' +
        `${D.durability.maxLagSeconds}.`,
      { minimum: 1, maximum: 60 },
    ),
  },
);

const invalidationSchema = obj(
  'Cross-CacheCluster invalidation: other caches of the same database rows. When peers are set, the operator ' +
    'runs a bridge Deployment (<name>-bridge) that relays every write of this CacheCluster to each peer: a ' +
    "peer's record is replaced by a tombstone only when it is older than the write (never a newer value), then " +
    "the peer's sidecars are told to drop their L1 copy. A write relayed into a peer is forwarded by the " +
    "peer's bridge to its own peers it has not reached yet (never back, never twice along one path), so every " +
    'cluster reachable through peers gets it: a full mesh or a ring of successors both work. See the README ' +
    'section Invalidation across CacheClusters for the consistency a reader in a peer gets.',
  {
    peers: {
      type: 'array',
      description: 'Peers (at most 16): each a CacheCluster or an external Redis.',
      maxItems: 16,
      items: obj(
        'One peer: set exactly one of cacheCluster and redis.',
        {
          cacheCluster: obj(
            'Another CacheCluster, of any topology (a cluster-topology peer is reached through its client Service as ' +
              'a seed of its Redis Cluster).',
            {
              name: str('Name of the CacheCluster.', { minLength: 1, maxLength: 63, pattern: DNS_SUBDOMAIN_PATTERN }),
              namespace: str("Its namespace. Default: this CacheCluster's.", {
                minLength: 1,
                maxLength: 63,
                pattern: DNS_SUBDOMAIN_PATTERN,
              }),
            },
            { required: ['name'] },
          ),
          redis: obj(
            'An external Redis primary, or Redis Cluster (cluster: true), caching with the ripplecache record format ' +
              "(hash rc:<key> with ver; on a Redis Cluster the sidecars' bucketed layout rc:{tag}<key>).",
            {
              url: str('redis://host:port[/db] or rediss://…, without a password (see passwordSecretRef).', {
                minLength: 9,
                maxLength: 512,
                pattern: '^rediss?://[^\\s:@/]+(:[0-9]{1,5})?(/[0-9]{1,2})?$',
              }),
              channel: str('Its invalidation channel. Default ripplecache:invalidations.', {
                minLength: 1,
                maxLength: 256,
              }),
              cluster: bool(
                'true: url is a seed address of a Redis Cluster (its sidecars run with --redis-cluster); only ' +
                  'database 0. Default false.',
              ),
            },
            { required: ['url'] },
          ),
          passwordSecretRef: secretKeyRef(
            "The peer's Redis password. Default for a CacheCluster peer in the same namespace: its auth Secret.",
          ),
        },
        { 'x-kubernetes-validations': [RULES.peerExactlyOne] },
      ),
    },
  },
);

export const specSchema: JSONSchemaProps = obj(
  'The desired state of a Redis cache and of the sidecars that use it.',
  {
    topology: enumOf(
      'standalone: one Redis pod; replication: one primary and `replicas` read replicas (asynchronous replication, ' +
        'replicas addressed by headless-Service DNS); cluster: Redis Cluster with `shards` primaries, each with ' +
        `\`replicas\` replicas (hash slots spread evenly; changing shards moves slots under load). Default ${D.topology}.`,
      TOPOLOGIES,
      { default: D.topology },
    ),
    replicas: int(
      'Read replicas per primary (0-32). Not allowed (other than 0) with topology standalone. Default ' +
        `${D.replicasStandalone} for standalone, ${D.replicas} otherwise. Also set by kubectl scale cc/<name> ` +
        '--replicas=N (the scale subresource).',
      { minimum: 0, maximum: 32 },
    ),
    shards: int(
      `Primaries (shards) of a Redis Cluster, at least 3 (Redis Cluster needs a majority of primaries to fail over); ` +
        `topology cluster only. Default ${D.shards} there. Changing it moves hash slots (no key lost).`,
      {
        minimum: 3,
        maximum: 128,
      },
    ),
    image: str(
      'Container image of Redis (any Redis 7-compatible server, Valkey too; it must contain sh and redis-cli). ' +
        `Changing it restarts the pods. Default ${D.image}. A reference such as redis:7.2-alpine, ` +
        'registry.example.com:5000/team/valkey:8 or redis@sha256:<digest>; no white space.',
      { minLength: 1, maxLength: 512, pattern: IMAGE_PATTERN },
    ),
    eviction: evictionSchema,
    defaultTTLSeconds: int(
      `TTL in seconds that sidecars give a write that names none; 0 means no expiry. Default ${D.defaultTTLSeconds}.`,
      { minimum: 0, maximum: 315_360_000 },
    ),
    flush: flushSchema,
    auth: authSchema,
    persistence: persistenceSchema,
    podTemplate: podTemplateSchema,
    resources: resourcesSchema,
    metrics: metricsSchema,
    sidecar: sidecarSchema,
    failover: failoverSchema,
    durability: durabilitySchema,
    invalidation: invalidationSchema,
  },
  {
    'x-kubernetes-validations': [
      RULES.shardsOnlyWithCluster,
      RULES.shardsAtLeastThree,
      RULES.replicasNotWithStandalone,
      RULES.durabilityReplicatedNeedsReplicas,
      RULES.maxMemoryPercentNeedsLimit,
      RULES.maxMemoryWithinLimit,
      RULES.memoryLimitMaximum,
      RULES.derivedMaxMemoryMinimum,
      RULES.defaultMaxMemoryMinimum,
      RULES.writeBackNeedsSafeEviction,
      RULES.storageImmutable,
    ],
  },
);

// ---- The status -----------------------------------------------------------------------------------

const conditionSchema = obj(
  'A metav1.Condition.',
  {
    type: str('Ready, Progressing, Degraded, ConfigApplied, Unsupported or PrimaryAvailable.', {
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: enumOf('True, False or Unknown.', ['True', 'False', 'Unknown']),
    observedGeneration: int64('The metadata.generation the condition was computed from.', { minimum: 0 }),
    lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
    reason: str('Why, in CamelCase.', {
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: str('Details for humans.', { maxLength: 32768 }),
  },
  { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
);

const podAppliedSchema = obj(
  "What one pod reported after the operator's last CONFIG SET / CONFIG GET.",
  {
    pod: str('Pod name.'),
    maxmemory: int64('maxmemory in bytes, as CONFIG GET reported it (0 when the pod could not be read).'),
    maxmemoryPolicy: str('maxmemory-policy, as CONFIG GET reported it.'),
    applied: bool('Whether the pod runs with the desired settings.'),
    message: str('Why not, when applied is false.'),
  },
  { required: ['pod', 'maxmemory', 'maxmemoryPolicy', 'applied'] },
);

export const statusSchema: JSONSchemaProps = obj('What the operator last observed. Computed, never a lock.', {
  phase: enumOf(
    'Pending: nothing created yet; Provisioning: pods starting or rolling; Ready: every pod ready and configured; ' +
      'Degraded: running with some pods not ready or not configured; Failed: the spec cannot be realised.',
    PHASES,
  ),
  observedGeneration: int64('The metadata.generation this status describes.', { minimum: 0 }),
  replicas: int('Redis pods that exist (primary and replicas).', { minimum: 0 }),
  readyReplicas: int('Redis pods that are ready.', { minimum: 0 }),
  currentReplicas: int(
    'Read replicas that exist (Redis pods other than the primary), in the unit of spec.replicas: the scale ' +
      "subresource's status.replicas.",
    { minimum: 0 },
  ),
  selector: str("The label selector of the Redis pods, serialised (the scale subresource's selector, for an HPA)."),
  ready: str('Ready Redis pods out of the desired number, e.g. 2/3.'),
  maxMemory: str('appliedConfig.maxmemory as a quantity, e.g. 256Mi (bytes when no unit divides it).'),
  primary: str("The pod that is the primary (topology replication: the operator's record, kept while it is lost)."),
  failover: obj(
    'A failover in progress, recorded before its first change so that any operator leader finishes it.',
    {
      from: str('The lost primary.'),
      to: str('The replica being promoted.'),
      step: enumOf('The last step completed.', ['Started', 'Unlabelled', 'Promoted', 'Repointed']),
      startedAt: str('When it started.', { format: 'date-time' }),
      toOffset: int64("The promoted replica's replication offset when it was chosen."),
      fromOffset: int64("The lost primary's replication offset when last seen."),
      reason: enumOf(
        'PrimaryLost: the primary was lost; Planned: a switchover of a rolling update (the primary restarts last).',
        ['PrimaryLost', 'Planned'],
      ),
    },
    { required: ['from', 'to', 'step', 'startedAt', 'toOffset'] },
  ),
  lastFailover: obj(
    'The last completed failover.',
    {
      from: str('The lost primary.'),
      to: str('The promoted replica.'),
      toOffset: int64("The promoted replica's replication offset when it was chosen."),
      fromOffset: int64("The lost primary's replication offset when last seen."),
      reason: enumOf(
        'PrimaryLost: the primary was lost; Planned: a switchover of a rolling update (the primary restarts last).',
        ['PrimaryLost', 'Planned'],
      ),
      startedAt: str('When it started.', { format: 'date-time' }),
      completedAt: str('When it completed.', { format: 'date-time' }),
    },
    { required: ['from', 'to', 'toOffset', 'startedAt', 'completedAt'] },
  ),
  endpoints: obj('Where clients connect.', {
    service: str('host:port of the Service that reaches the primary.'),
    replicas: str('host:port of the Service that reaches the ready replicas (topology replication).'),
  }),
  appliedConfig: obj(
    'The eviction settings every pod runs with, verified with CONFIG GET.',
    {
      maxmemory: int64('maxmemory in bytes.'),
      maxmemoryPolicy: str('maxmemory-policy.'),
      pods: {
        type: 'array',
        description: 'Per pod.',
        items: podAppliedSchema,
        maxItems: 256,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['pod'],
      },
    },
    { required: ['maxmemory', 'maxmemoryPolicy'] },
  ),
  lastFlushTime: str('When the flush CronJob last succeeded.', { format: 'date-time' }),
  clusterState: str('Topology cluster: cluster_state of CLUSTER INFO (ok or fail) as the operator last read it.'),
  slotsAssigned: int('Topology cluster: hash slots assigned to a primary, of 16384.', { minimum: 0, maximum: 16384 }),
  shards: {
    type: 'array',
    description: 'Topology cluster: one entry per shard (StatefulSet <name>-shard-<index>), from CLUSTER NODES.',
    items: obj(
      'One shard.',
      {
        index: int('The shard index.', { minimum: 0 }),
        slots: str('The slot ranges it owns, e.g. 0-5460; empty when none.'),
        slotCount: int('How many slots it owns.', { minimum: 0, maximum: 16384 }),
        primary: str('The pod that is its primary, when one is up; while primaryLost, the one that was.'),
        replicas: {
          type: 'array',
          description: 'The pods replicating its primary.',
          items: str('A pod name.'),
          maxItems: 64,
        },
        unsyncedReplicas: {
          type: 'array',
          description:
            'Of replicas, those whose link to the primary is down or whose first sync has not finished: Redis ' +
            'Cluster would not fail over to them. Absent when there are none.',
          items: str('A pod name.'),
          maxItems: 64,
        },
        state: enumOf(
          'ok: primary up, replicas following and synced; degraded: a replica missing, not following or not ' +
            'synced; primaryLost: its ' +
            'slots are owned by a node that is down (Redis Cluster fails over to a replica); draining: being ' +
            'removed, its slots moving away; pending: not part of the cluster yet.',
          ['ok', 'degraded', 'primaryLost', 'draining', 'pending'],
        ),
      },
      { required: ['index', 'slots', 'slotCount', 'replicas', 'state'] },
    ),
    maxItems: 256,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['index'],
  },
  resharding: obj(
    'Topology cluster: slots moving between shards after spec.shards changed (absent when none are).',
    {
      toShards: int('The shard count being reached.', { minimum: 0 }),
      slotsToMove: int('Slots to move when the resharding started.', { minimum: 0 }),
      slotsRemaining: int('Slots still to move, from the slot owners observed now.', { minimum: 0 }),
      keysMoved: int64('Keys moved with MIGRATE since the resharding started.', { minimum: 0 }),
      current: str('The move in flight.'),
      startedAt: str('When it started.', { format: 'date-time' }),
    },
    { required: ['toShards', 'slotsToMove', 'slotsRemaining', 'keysMoved', 'startedAt'] },
  ),
  conditions: {
    type: 'array',
    description:
      'Ready, Progressing, Degraded, ConfigApplied, Unsupported and PrimaryAvailable, with metav1.Condition semantics.',
    items: conditionSchema,
    maxItems: 32,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  },
});

/** The `openAPIV3Schema` of the CacheCluster CRD. */
export const cacheClusterSchema: JSONSchemaProps = obj(
  'A CacheCluster is a Redis cache (standalone or primary with read replicas) run by the ripplecache operator, ' +
    'with live eviction settings, an optional scheduled flush, and defaults for the sidecars that use it.',
  {
    apiVersion: str('Versioned schema of this object, cache.ripplecache.io/v1alpha1.'),
    kind: str('CacheCluster.'),
    metadata: { type: 'object' },
    spec: specSchema,
    status: statusSchema,
  },
  { required: ['spec'], 'x-kubernetes-validations': [RULES.name] },
);

/** The `kubectl get` columns; priority 1 ones show with `-o wide`. */
export const printerColumns: PrinterColumn[] = [
  { name: 'Topology', type: 'string', jsonPath: '.spec.topology', description: 'standalone, replication or cluster' },
  { name: 'Policy', type: 'string', jsonPath: '.spec.eviction.policy', description: 'maxmemory-policy' },
  { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'Redis pods ready / desired' },
  {
    name: 'Phase',
    type: 'string',
    jsonPath: '.status.phase',
    description: 'Pending, Provisioning, Ready, Degraded or Failed',
  },
  {
    name: 'MaxMemory',
    type: 'string',
    jsonPath: '.status.maxMemory',
    description: 'Applied maxmemory, verified on every pod',
    priority: 1,
  },
  { name: 'Primary', type: 'string', jsonPath: '.status.primary', description: 'The primary pod', priority: 1 },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** The whole CacheCluster CRD, as `crds/cacheclusters.cache.ripplecache.io.yaml` holds it. */
export function cacheClusterCrd(): CustomResourceDefinition {
  // A deep copy, so that callers may change what they get without changing the module's constants.
  const schema = structuredClone(cacheClusterSchema);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'ripplecache', 'app.kubernetes.io/part-of': 'ripplecache' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: [...CATEGORIES],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            // `kubectl scale cc/<name> --replicas=N` sets the read replicas; an HPA finds the pods by the selector.
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.currentReplicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: structuredClone(printerColumns),
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}
