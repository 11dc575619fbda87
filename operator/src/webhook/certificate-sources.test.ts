import { X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeApi, type KubeObject, type ObjectRef } from '../k8s/kube-client.js';
import { ensureCaBundle, selfManagedSource } from './certificate-sources.js';
import { createCertificateAuthority } from './self-signed-certificates.js';

const log = pino({ level: 'silent' });

/** An in-memory KubeApi: objects by kind/name, resourceVersion preconditions honoured on apply. */
class FakeKube implements KubeApi {
  readonly objects = new Map<string, KubeObject>();
  applies: KubeObject[] = [];
  /** Called before each apply; may change the store (another replica writing first). */
  beforeApply?: () => void;
  private rv = 1;
  private key(kind: string, ns: string | undefined, name: string) {
    return `${kind}/${ns ?? ''}/${name}`;
  }
  put(obj: KubeObject) {
    this.objects.set(this.key(obj.kind!, obj.metadata!.namespace, obj.metadata!.name!), {
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(this.rv++) },
    });
  }
  async get<T extends KubeObject>(ref: ObjectRef): Promise<T | undefined> {
    return structuredClone(this.objects.get(this.key(ref.kind, ref.namespace || undefined, ref.name))) as T | undefined;
  }
  async apply<T extends KubeObject>(obj: T): Promise<T> {
    this.beforeApply?.();
    this.applies.push(obj);
    const k = this.key(obj.kind!, obj.metadata!.namespace, obj.metadata!.name!);
    const current = this.objects.get(k);
    const want = obj.metadata!.resourceVersion;
    if (want !== undefined && current?.metadata?.resourceVersion !== want) throw new KubeApiError('conflict', 409);
    const merged =
      obj.kind === 'MutatingWebhookConfiguration'
        ? {
            ...current,
            webhooks: ((current?.webhooks ?? []) as Array<{ name: string; clientConfig: object }>).map((w) => ({
              ...w,
              clientConfig: {
                ...w.clientConfig,
                ...(obj.webhooks as Array<{ name: string; clientConfig: object }>).find((x) => x.name === w.name)
                  ?.clientConfig,
              },
            })),
          }
        : { ...current, ...obj };
    this.put(merged);
    return merged as T;
  }
  async delete(): Promise<void> {}
  async patchStatus(): Promise<void> {}
  async event(): Promise<void> {}
}

const secretRef = { namespace: 'ripplecache-system', name: 'webhook-tls' };
const hosts = ['ripplecache-webhook.ripplecache-system.svc'];
const now = () => new Date('2030-06-01T00:00:00Z');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const decode = (s: unknown) => Buffer.from(String(s), 'base64').toString('utf8');

function setup(): FakeKube {
  const kube = new FakeKube();
  kube.put({ apiVersion: 'v1', kind: 'Secret', metadata: { ...secretRef } });
  kube.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'injector' },
    webhooks: [{ name: 'a.example.com', clientConfig: { service: { name: 'svc', namespace: 'ns' } } }],
  });
  return kube;
}

describe('selfManagedSource', () => {
  it('fills an empty Secret, writes the caBundle, and then reuses what is stored', async () => {
    const kube = setup();
    const source = selfManagedSource({ kube, secret: secretRef, webhookConfiguration: 'injector', hosts, now, log });
    const first = await source.load();
    const secret = await kube.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', ...secretRef });
    const data = secret!.data as Record<string, string>;
    expect(decode(data['tls.crt'])).toBe(first.cert);
    const cert = new X509Certificate(first.cert);
    expect(cert.checkHost(hosts[0]!)).toBeDefined();
    expect(cert.verify(new X509Certificate(decode(data['ca.crt'])).publicKey)).toBe(true);
    const mwc = await kube.get<
      KubeObject & { webhooks: Array<{ clientConfig: { caBundle?: string; service?: object } }> }
    >({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      namespace: '',
      name: 'injector',
    });
    expect(mwc!.webhooks[0]!.clientConfig).toEqual({
      service: { name: 'svc', namespace: 'ns' },
      caBundle: data['ca.crt'],
    });

    const writes = kube.applies.length;
    expect(await source.load()).toEqual(first);
    expect(kube.applies.length).toBe(writes); // nothing written when all is in order
  });

  it('uses the certificate another replica wrote first (the conditional write conflicts)', async () => {
    // What the other replica stores: made on a store of its own.
    const elsewhere = setup();
    const theirs = await selfManagedSource({ kube: elsewhere, secret: secretRef, hosts, now, log }).load();
    const theirSecret = elsewhere.objects.get(`Secret/${secretRef.namespace}/${secretRef.name}`)!;

    const kube = setup();
    let raced = false;
    kube.beforeApply = () => {
      if (raced) return;
      raced = true; // between my read of the empty Secret and my write, theirs lands
      kube.put({ ...theirSecret, metadata: { ...secretRef } });
    };
    const loaded = await selfManagedSource({ kube, secret: secretRef, hosts, now, log }).load();
    expect(raced).toBe(true);
    expect(loaded).toEqual(theirs);
    expect(kube.objects.get(`Secret/${secretRef.namespace}/${secretRef.name}`)!.data).toEqual(theirSecret.data);
  });

  it('renews a certificate that no longer names the hosts, keeping the CA', async () => {
    const kube = setup();
    await selfManagedSource({ kube, secret: secretRef, hosts, now, log }).load();
    const before = (await kube.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', ...secretRef }))!.data as Record<
      string,
      string
    >;
    const renewed = await selfManagedSource({
      kube,
      secret: secretRef,
      hosts: [...hosts, '127.0.0.1'],
      now,
      log,
    }).load();
    const after = (await kube.get<KubeObject>({ apiVersion: 'v1', kind: 'Secret', ...secretRef }))!.data as Record<
      string,
      string
    >;
    expect(after['ca.crt']).toBe(before['ca.crt']);
    expect(after['tls.crt']).not.toBe(before['tls.crt']);
    expect(new X509Certificate(renewed.cert).checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
  it('replaces the CA too when the stored CA key does not match the CA certificate', async () => {
    const kube = setup();
    await selfManagedSource({ kube, secret: secretRef, hosts, now, log }).load();
    const secretKey = `Secret/${secretRef.namespace}/${secretRef.name}`;
    const before = kube.objects.get(secretKey)!.data as Record<string, string>;
    const stranger = await createCertificateAuthority({ now: now() });
    kube.put({ ...kube.objects.get(secretKey)!, data: { ...before, 'ca.key': b64(stranger.key) } });
    const renewed = await selfManagedSource({ kube, secret: secretRef, hosts, now, log }).load();
    const after = kube.objects.get(secretKey)!.data as Record<string, string>;
    expect(after['ca.crt']).not.toBe(before['ca.crt']);
    expect(after['ca.key']).not.toBe(b64(stranger.key));
    expect(new X509Certificate(renewed.cert).verify(new X509Certificate(decode(after['ca.crt'])).publicKey)).toBe(true);
  });
});

describe('ensureCaBundle', () => {
  it('writes only when a webhook lacks the CA, and waits for a configuration that does not exist yet', async () => {
    const kube = setup();
    expect(await ensureCaBundle(kube, 'injector', 'PEM', log)).toBe(true);
    expect(kube.applies).toHaveLength(1);
    expect(await ensureCaBundle(kube, 'injector', 'PEM', log)).toBe(true);
    expect(kube.applies).toHaveLength(1);
    expect(await ensureCaBundle(kube, 'missing', 'PEM', log)).toBe(false);
  });
});
