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

/** A peer the bridge relays to. `name` is its label in the bridge's metrics and in /v1/peers. */
export interface ResolvedPeer {
  name: string;
  /** One server (the primary), or with `cluster` a seed address of a Redis Cluster. */
  url: string;
  channel: string;
  passwordSecretRef?: SecretKeyRef;
  /** A Redis Cluster (topology cluster, or an external one): the bridge's `--peer-cluster NAME`. */
  cluster?: true;
}

/** Why a listed peer is not relayed to (shown in the PeersReachable condition). */
export interface PeerProblem {
  peer: string;
  reason: 'PeerNotFound' | 'PeerUnsupported' | 'PeerPasswordMissing';
  message: string;
}

/** The database a redis:// URL names ('0' when none). */
function urlDatabase(url: string): string {
  try {
    const path = new URL(url).pathname.replace(/^\//, '');
    return path === '' ? '0' : path;
  } catch {
    return '0'; // the schema's pattern admits only URLs
  }
}

/**
 * The peers of `cc`, looked up with `lookup` (the informer cache) for CacheCluster peers. A CacheCluster
 * peer is reached at its client Service: the primary, or for topology `cluster` a seed address of the
 * Redis Cluster (the Service selects every node), marked `cluster` so that the bridge uses a Cluster client
 * and the bucketed key layout there. Reported instead of relayed to: a peer that does not exist (yet), this
 * CacheCluster itself, a peer with auth in another namespace without `passwordSecretRef` (a pod reads
 * Secrets of its own namespace only), and an external Redis Cluster given a database other than 0 (a
 * Redis Cluster has only database 0).
 */
export function resolvePeers(
  cc: CacheCluster,
  lookup: (namespace: string, name: string) => CacheCluster | undefined,
): { peers: ResolvedPeer[]; problems: PeerProblem[] } {
  const peers: ResolvedPeer[] = [];
  const problems: PeerProblem[] = [];
  for (const p of cc.spec.invalidation?.peers ?? []) {
    if (p.redis) {
      let host = p.redis.url;
      try {
        host = new URL(p.redis.url).host;
      } catch {
        // the schema's pattern admits only URLs
      }
      const name = host.replace(/[^A-Za-z0-9.-]/g, '-');
      if (p.redis.cluster === true && urlDatabase(p.redis.url) !== '0') {
        problems.push({
          peer: name,
          reason: 'PeerUnsupported',
          message:
            `peer ${p.redis.url} is a Redis Cluster, which has only database 0, but the URL names database ` +
            `${urlDatabase(p.redis.url)}`,
        });
        continue;
      }
      peers.push({
        name,
        url: p.redis.url,
        channel: p.redis.channel ?? DEFAULT_INVALIDATION_CHANNEL,
        ...(p.passwordSecretRef ? { passwordSecretRef: p.passwordSecretRef } : {}),
        ...(p.redis.cluster === true ? { cluster: true as const } : {}),
      });
      continue;
    }
    if (!p.cacheCluster) continue;
    const namespace = p.cacheCluster.namespace ?? cc.metadata.namespace;
    const name = `${namespace}/${p.cacheCluster.name}`;
    if (namespace === cc.metadata.namespace && p.cacheCluster.name === cc.metadata.name) {
      problems.push({ peer: name, reason: 'PeerUnsupported', message: `peer ${name} is this CacheCluster itself` });
      continue;
    }
    const peer = lookup(namespace, p.cacheCluster.name);
    if (!peer) {
      problems.push({ peer: name, reason: 'PeerNotFound', message: `peer ${KIND} ${name} does not exist` });
      continue;
    }
    const spec = resolveSpec(peer);
    let passwordSecretRef = p.passwordSecretRef;
    if (!passwordSecretRef && spec.authSecretRef) {
      if (namespace !== cc.metadata.namespace) {
        problems.push({
          peer: name,
          reason: 'PeerPasswordMissing',
          message: `peer ${name} has auth in another namespace: set passwordSecretRef to a Secret in ${cc.metadata.namespace}`,
        });
        continue;
      }
      passwordSecretRef = spec.authSecretRef;
    }
    peers.push({
      name,
      url: `redis://${serviceHost(peer)}:${REDIS_PORT}`,
      channel: DEFAULT_INVALIDATION_CHANNEL,
      ...(passwordSecretRef ? { passwordSecretRef } : {}),
      ...(spec.topology === 'cluster' ? { cluster: true as const } : {}),
    });
  }
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
