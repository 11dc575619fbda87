/**
 * The cross-cluster invalidation bridge of a CacheCluster with `spec.invalidation.peers` (README
 * "Invalidation across CacheClusters"): which peers it relays to (`resolvePeers`), its Deployment
 * `<name>-bridge` (one pod of `ripplecache-bridge`, from the sidecar image) and its Service
 * `<name>-bridge-<hash>` (port 7072: /v1/peers for the operator's PeersReachable condition; Prometheus
 * scrapes the pod through the chart's PodMonitor). Pure.
 *
 * Names: the Deployment `<name>-bridge` cannot clash with anything of another CacheCluster (the operator
 * makes no other Deployments). A Service `<name>-bridge` would be the client Service of a CacheCluster
 * named `<name>-bridge`; so the bridge's Service is named `<name>-bridge-<hex>`, padded with a hash of the
 * CacheCluster's namespace/name to more than MAX_NAME_LENGTH characters, which no CacheCluster's name (hence
 * no client Service) can have, and ending in hex digits, which no other Service of the operator ends in
 * (`-headless`, `-replicas`).
 *
 * Least privilege: the bridge talks to Redis only; its pod gets no service account token and needs no RBAC.
 * The operator reads the bridge's state over HTTP rather than the bridge writing to the API server.
 */
import {
  BRIDGE_PORT,
  COMPONENT_BRIDGE,
  KIND,
  LABEL_CLUSTER,
  LABEL_COMPONENT,
  REDIS_PORT,
} from '../api/v1alpha1/constants.js';
import type { CacheCluster, SecretKeyRef } from '../api/v1alpha1/types.js';
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { DEFAULT_INVALIDATION_CHANNEL } from '../../../common/src/protocol.js';
import { MAX_NAME_LENGTH } from '../api/v1alpha1/schema.js';
import type { Deployment, EnvVar, Service } from './kube-types.js';
import { commonLabels } from './labels.js';
import { serviceHost } from './names.js';
import { childMetadata } from './owner-reference.js';
import { imagePullSecrets } from './pod-placement.js';
import { restrictedContainerSecurityContext } from './pod-security.js';
import { resolveSpec } from './resolved-spec.js';

/** uid/gid of the sidecar image's user (distroless `nonroot`). */
export const BRIDGE_UID = 65532;

/** `<name>-bridge`: the bridge's Deployment. */
export function bridgeName(cc: { metadata: { name: string } }): string {
  return `${cc.metadata.name}-bridge`;
}

/**
 * `<name>-bridge-<hex>`, MAX_NAME_LENGTH + 1 to 63 characters: the bridge's Service, a name no CacheCluster's
 * client Service can have (see the file comment).
 */
export function bridgeServiceName(cc: { metadata: { name: string; namespace: string } }): string {
  const base = `${bridgeName(cc)}-`;
  const hex = createHash('sha256').update(`${cc.metadata.namespace}/${cc.metadata.name}`).digest('hex');
  return base + hex.slice(0, Math.max(8, MAX_NAME_LENGTH + 1 - base.length));
}

/** `<name>-bridge-<hex>.<ns>.svc`. */
export function bridgeHost(cc: CacheCluster): string {
  return `${bridgeServiceName(cc)}.${cc.metadata.namespace}.svc`;
}

/**
 * A peer the bridge relays to. `name` is its label in the bridge's metrics and in /v1/peers, unique among the
 * peers: a CacheCluster peer is `namespace/name` (what forwarding compares with that cluster's own
 * `--cluster`); an external `redis` peer is its URL's `host-port` (see {@link externalPeerNames}).
 */
export interface ResolvedPeer {
  name: string;
  /** One server (the primary), or with `cluster` a seed address of a Redis Cluster. */
  url: string;
  channel: string;
  passwordSecretRef?: SecretKeyRef;
  /** A Redis Cluster (topology cluster, or an external one): the bridge's `--peer-cluster NAME`. */
  cluster?: true;
}

/** Why a listed peer is not relayed to, or not as listed (shown in the PeersReachable condition). */
export interface PeerProblem {
  peer: string;
  reason: 'PeerNotFound' | 'PeerUnsupported' | 'PeerPasswordMissing' | 'PeerConflict';
  message: string;
}

/** The parts of a redis:// URL the bridge uses; undefined when the bridge could not use it. */
interface ExternalUrl {
  /** The URL as the bridge gets it: as written, but for a database written with leading zeros (`/01` → `/1`). */
  url: string;
  /** `host` or `host:port`, as written. */
  host: string;
  /** The database, 0 when none. */
  db: number;
  /** Scheme, host, port (default 6379) and database: two URLs with the same `where` reach the same database. */
  where: string;
}

/**
 * Reads an external peer's URL. The schema's pattern admits `redis[s]://host[:port][/db]` with a database of 1
 * or 2 digits and a port of up to 5; the bridge (sidecar/src/config-values.ts REDIS_URL) refuses a port above
 * 65535 and a database with a leading zero, so the database is rendered as a plain number and a bad port is
 * reported rather than rendered.
 */
function externalUrl(raw: string): ExternalUrl | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined; // e.g. port 99999
  }
  if (u.hostname === '') return undefined;
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,9}$/.test(path)) return undefined;
  const db = path === '' ? 0 : Number(path);
  const url = path === '' || path === String(db) ? raw : raw.slice(0, raw.length - path.length) + String(db);
  return {
    url,
    host: u.host,
    db,
    where: `${u.protocol}//${u.hostname.toLowerCase()}:${u.port === '' ? REDIS_PORT : u.port}/${db}`,
  };
}

/** The name an external peer gets when no other peer would get the same: `host-port`, or `host`. */
function externalBaseName(host: string): string {
  return host.replace(/[^A-Za-z0-9.-]/g, '-');
}

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** One entry of `spec.invalidation.peers`, resolved on its own. */
interface ListedPeer {
  /** Position in the list, from 1 (for messages). */
  entry: number;
  /** Which peer the entry names: the same CacheCluster, or the same database and channel, is the same peer. */
  identity: string;
  /** Its name, before external names are made unique. */
  name: string;
  /** The settings two entries naming the same peer must agree on. */
  settings: string;
  resolved: { peer: ResolvedPeer; db?: number } | { problem: PeerProblem };
}

function listPeer(
  cc: CacheCluster,
  p: NonNullable<NonNullable<CacheCluster['spec']['invalidation']>['peers']>[number],
  entry: number,
  lookup: (namespace: string, name: string) => CacheCluster | undefined,
): ListedPeer | undefined {
  if (p.redis) {
    const channel = p.redis.channel ?? DEFAULT_INVALIDATION_CHANNEL;
    const parsed = externalUrl(p.redis.url);
    const name = externalBaseName(parsed?.host ?? p.redis.url.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, ''));
    const base = { entry, name, identity: `redis\n${parsed?.where ?? p.redis.url}\n${channel}` };
    if (parsed === undefined) {
      const message = `peer ${p.redis.url} is not a URL the bridge can use (redis://host:port/db, port at most 65535)`;
      return {
        ...base,
        settings: 'unusable',
        resolved: { problem: { peer: name, reason: 'PeerUnsupported', message } },
      };
    }
    if (p.redis.cluster === true && parsed.db !== 0) {
      const message =
        `peer ${p.redis.url} is a Redis Cluster, which has only database 0, but the URL names database ` +
        String(parsed.db);
      return {
        ...base,
        settings: 'cluster-db',
        resolved: { problem: { peer: name, reason: 'PeerUnsupported', message } },
      };
    }
    const peer: ResolvedPeer = {
      name,
      url: parsed.url,
      channel,
      ...(p.passwordSecretRef ? { passwordSecretRef: p.passwordSecretRef } : {}),
      ...(p.redis.cluster === true ? { cluster: true as const } : {}),
    };
    return { ...base, settings: peerSettings(peer), resolved: { peer, db: parsed.db } };
  }
  if (!p.cacheCluster) return undefined;
  const namespace = p.cacheCluster.namespace ?? cc.metadata.namespace;
  const name = `${namespace}/${p.cacheCluster.name}`;
  const base = { entry, name, identity: `cacheCluster\n${name}` };
  const problem = (reason: PeerProblem['reason'], message: string): ListedPeer => ({
    ...base,
    settings: reason,
    resolved: { problem: { peer: name, reason, message } },
  });
  if (namespace === cc.metadata.namespace && p.cacheCluster.name === cc.metadata.name) {
    return problem('PeerUnsupported', `peer ${name} is this CacheCluster itself`);
  }
  const found = lookup(namespace, p.cacheCluster.name);
  if (!found) return problem('PeerNotFound', `peer ${KIND} ${name} does not exist`);
  const spec = resolveSpec(found);
  let passwordSecretRef = p.passwordSecretRef;
  if (!passwordSecretRef && spec.authSecretRef) {
    if (namespace !== cc.metadata.namespace) {
      return problem(
        'PeerPasswordMissing',
        `peer ${name} has auth in another namespace: set passwordSecretRef to a Secret in ${cc.metadata.namespace}`,
      );
    }
    passwordSecretRef = spec.authSecretRef;
  }
  const peer: ResolvedPeer = {
    name,
    url: `redis://${serviceHost(found)}:${REDIS_PORT}`,
    channel: DEFAULT_INVALIDATION_CHANNEL,
    ...(passwordSecretRef ? { passwordSecretRef } : {}),
    ...(spec.topology === 'cluster' ? { cluster: true as const } : {}),
  };
  return { ...base, settings: peerSettings(peer), resolved: { peer } };
}

function peerSettings(peer: ResolvedPeer): string {
  return canonicalJson({ passwordSecretRef: peer.passwordSecretRef, cluster: peer.cluster === true });
}

/**
 * Makes the names of external peers unique. A name no other peer gets stays `host-port` (as it always was:
 * metrics and status carry it). Peers that would share one get `-db<N>` appended when their databases tell
 * them apart, otherwise `-<8 hex digits>` of a hash of their database and channel: stable whatever the order
 * of the list. Answers undefined for a peer that cannot be given a unique name (not met in practice).
 */
export function externalPeerNames(
  peers: readonly { name: string; identity: string; db?: number; external: boolean }[],
): (string | undefined)[] {
  const count = new Map<string, number>();
  for (const p of peers) count.set(p.name, (count.get(p.name) ?? 0) + 1);
  const taken = new Set(peers.filter((p) => count.get(p.name) === 1 || !p.external).map((p) => p.name));
  const dbCount = new Map<string, number>();
  for (const p of peers) {
    if (count.get(p.name) === 1 || !p.external) continue;
    const key = `${p.name}-db${p.db ?? 0}`;
    dbCount.set(key, (dbCount.get(key) ?? 0) + 1);
  }
  return peers.map((p) => {
    if (count.get(p.name) === 1 || !p.external) return p.name;
    const candidates = [`${p.name}-db${p.db ?? 0}`];
    for (let length = 8; length <= 64; length += 8) candidates.push(`${p.name}-${shortHash(p.identity, length)}`);
    const name = candidates.find((c, i) => !taken.has(c) && (i > 0 || dbCount.get(c) === 1));
    if (name !== undefined) taken.add(name);
    return name;
  });
}

/**
 * The peers of `cc`, looked up with `lookup` (the informer cache) for CacheCluster peers. A CacheCluster
 * peer is reached at its client Service: the primary, or for topology `cluster` a seed address of the
 * Redis Cluster (the Service selects every node), marked `cluster` so that the bridge uses a Cluster client
 * and the bucketed key layout there. Reported instead of relayed to: a peer that does not exist (yet), this
 * CacheCluster itself, a peer with auth in another namespace without `passwordSecretRef` (a pod reads
 * Secrets of its own namespace only), an external Redis Cluster given a database other than 0 (a Redis
 * Cluster has only database 0), and an external URL the bridge cannot use (a port above 65535).
 *
 * Entries naming the same peer — the same CacheCluster (its namespace defaulted), or the same scheme, host,
 * port (default 6379), database (default 0) and channel — are one peer. If they disagree on its settings
 * (`passwordSecretRef`, `cluster`, or one of them cannot be used) the first entry is used and `PeerConflict`
 * is reported. Every peer rendered has a name no other has (externalPeerNames), as the bridge requires.
 */
export function resolvePeers(
  cc: CacheCluster,
  lookup: (namespace: string, name: string) => CacheCluster | undefined,
): { peers: ResolvedPeer[]; problems: PeerProblem[] } {
  const groups = new Map<string, ListedPeer[]>();
  (cc.spec.invalidation?.peers ?? []).forEach((p, i) => {
    const listed = listPeer(cc, p, i + 1, lookup);
    if (listed === undefined) return;
    const group = groups.get(listed.identity);
    if (group) group.push(listed);
    else groups.set(listed.identity, [listed]);
  });
  const problems: PeerProblem[] = [];
  const chosen: ListedPeer[] = [];
  for (const group of groups.values()) {
    const first = group[0]!;
    if ('problem' in first.resolved) problems.push(first.resolved.problem);
    else chosen.push(first);
    if (group.some((g) => g.settings !== first.settings)) {
      problems.push({
        peer: first.name,
        reason: 'PeerConflict',
        message:
          `peer ${first.name} is listed ${group.length} times (entries ${group.map((g) => g.entry).join(', ')}) ` +
          `with different settings (passwordSecretRef, cluster): entry ${first.entry} is used; remove the others`,
      });
    }
  }
  const names = externalPeerNames(
    chosen.map((c) => ({
      name: c.name,
      identity: c.identity,
      external: c.identity.startsWith('redis\n'),
      ...('peer' in c.resolved && c.resolved.db !== undefined ? { db: c.resolved.db } : {}),
    })),
  );
  const peers: ResolvedPeer[] = [];
  chosen.forEach((c, i) => {
    if (!('peer' in c.resolved)) return;
    const name = names[i];
    if (name === undefined) {
      problems.push({
        peer: c.name,
        reason: 'PeerConflict',
        message: `peer ${c.name} (entry ${c.entry}) cannot be given a name no other peer has`,
      });
      return;
    }
    peers.push({ ...c.resolved.peer, name });
  });
  return { peers, problems };
}

function bridgeLabels(cc: CacheCluster): Record<string, string> {
  return { [LABEL_CLUSTER]: cc.metadata.name, [LABEL_COMPONENT]: COMPONENT_BRIDGE };
}

/** The bridge's command line and environment (passwords only through secretKeyRef). */
export function bridgeArgs(cc: CacheCluster, peers: readonly ResolvedPeer[]): { args: string[]; env: EnvVar[] } {
  const spec = resolveSpec(cc);
  const args = [
    '--cluster',
    `${cc.metadata.namespace}/${cc.metadata.name}`,
    '--redis',
    `redis://${serviceHost(cc)}:${REDIS_PORT}`,
    // Topology cluster: the client Service selects every node, a seed of the Redis Cluster.
    ...(spec.topology === 'cluster' ? ['--redis-cluster', 'true'] : []),
    // `::`, which Node opens dual-stack: the kubelet probes and the Service reach the pod's primary IP, IPv6 in
    // an IPv6 or dual-stack cluster (0.0.0.0 failed every probe there: found on the local node's IPv6 pods).
    '--listen',
    `[::]:${BRIDGE_PORT}`,
  ];
  const env: EnvVar[] = [];
  if (spec.authSecretRef) {
    env.push({
      name: 'RIPPLECACHE_REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: spec.authSecretRef.name, key: spec.authSecretRef.key } },
    });
  }
  peers.forEach((p, i) => {
    args.push('--peer', `${p.name}=${p.url}`);
    if (p.channel !== DEFAULT_INVALIDATION_CHANNEL) args.push('--peer-channel', `${p.name}=${p.channel}`);
    if (p.cluster === true) args.push('--peer-cluster', p.name);
    if (p.passwordSecretRef) {
      const variable = `PEER_PASSWORD_${i}`;
      args.push('--peer-password-env', `${p.name}=${variable}`);
      env.push({
        name: variable,
        valueFrom: { secretKeyRef: { name: p.passwordSecretRef.name, key: p.passwordSecretRef.key } },
      });
    }
  });
  return { args, env };
}

/** `<name>-bridge`: one bridge pod (Recreate: two at once would relay every write twice). */
export function desiredBridgeDeployment(cc: CacheCluster, peers: readonly ResolvedPeer[], image: string): Deployment {
  const { args, env } = bridgeArgs(cc, peers);
  const labels = { ...commonLabels(cc), [LABEL_COMPONENT]: COMPONENT_BRIDGE };
  const pullSecrets = imagePullSecrets(cc);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMetadata(cc, bridgeName(cc), { [LABEL_COMPONENT]: COMPONENT_BRIDGE }),
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: bridgeLabels(cc) },
      template: {
        metadata: { labels },
        spec: {
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          ...(pullSecrets ? { imagePullSecrets: pullSecrets } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: BRIDGE_UID,
            runAsGroup: BRIDGE_UID,
            fsGroup: BRIDGE_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'bridge',
              image,
              command: ['/nodejs/bin/node', 'dist/sidecar/src/bridge/main.js'],
              args,
              ...(env.length > 0 ? { env } : {}),
              ports: [{ name: 'http', containerPort: BRIDGE_PORT, protocol: 'TCP' }],
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                initialDelaySeconds: 5,
                periodSeconds: 10,
                timeoutSeconds: 2,
                successThreshold: 1,
                failureThreshold: 3,
              },
              resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              securityContext: restrictedContainerSecurityContext(),
            },
          ],
        },
      },
    },
  };
}

/** `<name>-bridge-<hex>`: the bridge's state and metrics, port 7072. */
export function desiredBridgeService(cc: CacheCluster): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(cc, bridgeServiceName(cc), { [LABEL_COMPONENT]: COMPONENT_BRIDGE }),
    spec: {
      type: 'ClusterIP',
      selector: bridgeLabels(cc),
      ports: [{ name: 'http', port: BRIDGE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}
