import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/**
 * A tiny authoritative DNS server for the local node's cluster names, so that nothing ever asks the machine's
 * own resolver about them (no packet leaves the machine): `<hostname>.<subdomain>.<ns>.svc` (a StatefulSet's
 * pod, by its pod IP) and `<service>.<ns>.svc` (the ClusterIP; a headless Service's ready endpoints), with or
 * without the `.cluster.local` suffix. Only AAAA records (the node's Services and primary pod IPs are IPv6);
 * every other name is NXDOMAIN. It never forwards a query anywhere.
 */
export interface ClusterRecords {
  /** Lower-case fully qualified name without the trailing dot → IPv6 addresses. */
  lookup(name: string): Promise<string[]>;
}

const TYPE_AAAA = 28;
const CLASS_IN = 1;

interface Question {
  name: string;
  type: number;
  klass: number;
  /** The bytes of the question section, copied into the answer. */
  raw: Buffer;
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    if (len === 0) break;
    if (len > 63 || off + 1 + len > msg.length) return undefined; // no compression in questions
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  off += 1;
  if (off + 4 > msg.length) return undefined;
  return {
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(off),
    klass: msg.readUInt16BE(off + 2),
    raw: msg.subarray(12, off + 4),
  };
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(parseInt(g, 16), i * 2));
  return buf;
}

/** Builds the response to `query`: AAAA answers, an empty NOERROR for other types of a known name, or NXDOMAIN. */
export function dnsResponse(query: Buffer, q: Question | undefined, addresses: string[] | undefined): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const rd = query.length > 2 ? query[2]! & 0x01 : 0;
  if (!q) {
    header.writeUInt16BE(0x8000 | (rd << 8) | 1, 2); // FORMERR
    return header;
  }
  const known = addresses !== undefined && addresses.length > 0;
  const answers = known && q.type === TYPE_AAAA && q.klass === CLASS_IN ? addresses.filter((a) => isIPv6(a)) : [];
  header.writeUInt16BE(0x8400 | (rd << 8) | (known ? 0 : 3), 2); // QR, AA, NOERROR or NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((ip) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // the question's name
    rr.writeUInt16BE(TYPE_AAAA, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(5, 6); // TTL: pods come and go
    rr.writeUInt16BE(16, 10);
    return Buffer.concat([rr, ipv6Bytes(ip)]);
  });
  return Buffer.concat([header, q.raw, ...records]);
}

/** Serves `records` on UDP `host`:53 until `close()`. */
export async function startClusterDns(host: string, records: ClusterRecords): Promise<{ close(): Promise<void> }> {
  const socket: Socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
  socket.on('message', (msg, rinfo) => {
    const q = parseQuestion(msg);
    const answer = q ? records.lookup(q.name).catch(() => []) : Promise.resolve(undefined);
    void answer.then((addrs) => {
      socket.send(dnsResponse(msg, q, addrs), rinfo.port, rinfo.address);
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(53, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {
    /* a bad datagram must not crash the test run */
  });
  return { close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

interface PodLike {
  metadata: { name: string; namespace: string };
  spec?: { hostname?: string; subdomain?: string };
  status?: { podIPs?: { ip: string }[]; podIP?: string };
}
interface ServiceLike {
  metadata: { name: string; namespace: string };
  spec?: { clusterIP?: string; clusterIPs?: string[] };
}
interface EndpointSliceLike {
  metadata: { namespace: string; labels?: Record<string, string> };
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[];
}

/**
 * Cluster DNS records from the API's pods, Services and EndpointSlices (listed by `list`, at most once a
 * second).
 */
export function apiRecords(list: (path: string) => Promise<{ items: unknown[] }>): ClusterRecords {
  let cache: { at: number; names: Map<string, string[]> } | undefined;
  let pending: Promise<Map<string, string[]>> | undefined;
  const refresh = async (): Promise<Map<string, string[]>> => {
    const [pods, services, slices] = await Promise.all([
      list('/api/v1/pods'),
      list('/api/v1/services'),
      list('/apis/discovery.k8s.io/v1/endpointslices'),
    ]);
    const names = new Map<string, string[]>();
    const add = (name: string, ips: string[]) => {
      const v6 = ips.filter((ip) => isIPv6(ip));
      if (v6.length === 0) return;
      for (const n of [name, `${name}.cluster.local`]) names.set(n, [...(names.get(n) ?? []), ...v6]);
    };
    for (const p of pods.items as PodLike[]) {
      const ips = p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []);
      if (p.spec?.hostname && p.spec.subdomain)
        add(`${p.spec.hostname}.${p.spec.subdomain}.${p.metadata.namespace}.svc`, ips);
    }
    const headless = new Set<string>();
    for (const s of services.items as ServiceLike[]) {
      const key = `${s.metadata.name}.${s.metadata.namespace}.svc`;
      if (s.spec?.clusterIP === 'None') headless.add(key);
      else add(key, s.spec?.clusterIPs ?? (s.spec?.clusterIP ? [s.spec.clusterIP] : []));
    }
    for (const es of slices.items as EndpointSliceLike[]) {
      const svc = es.metadata.labels?.['kubernetes.io/service-name'];
      const key = svc && `${svc}.${es.metadata.namespace}.svc`;
      if (!key || !headless.has(key)) continue;
      add(
        key,
        (es.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses),
      );
    }
    return names;
  };
  return {
    async lookup(name) {
      if (!cache || Date.now() - cache.at > 1_000) {
        pending ??= refresh().finally(() => {
          pending = undefined;
        });
        cache = { at: Date.now(), names: await pending };
      }
      return cache.names.get(name) ?? [];
    },
  };
}
