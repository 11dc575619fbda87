import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { PooledKubeConfig } from './pooled-kube-config.js';

function config(token: string, ca = 'Y2EtMQ=='): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: ca, skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function agentOfRequest(kc: k8s.KubeConfig): Promise<unknown> {
  const ctx = new k8s.RequestContext('https://127.0.0.1:6443/api/v1/namespaces', k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getAgent();
}

describe('PooledKubeConfig', () => {
  it('the library as shipped builds a new agent per request (upstream issue 2893)', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: 'Y2EtMQ==', skipTLSVerify: false }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    expect(await agentOfRequest(kc)).not.toBe(await agentOfRequest(kc));
  });

  it('hands every API request and every watch the same keep-alive agent, with the library credentials', async () => {
    const kc = config('secret');
    const a = await agentOfRequest(kc);
    expect(a).toBeInstanceOf(https.Agent);
    expect(await agentOfRequest(kc)).toBe(a);
    const fetchOptions = await kc.applyToFetchOptions({});
    expect(fetchOptions.agent).toBe(a);
    const agent = a as https.Agent & { keepAlive?: boolean; options: https.AgentOptions };
    expect(agent.keepAlive).toBe(true);
    expect(String(agent.options.ca)).toBe('ca-1');
    // The credentials still come from the library, request by request.
    const ctx = new k8s.RequestContext('https://127.0.0.1:6443/api', k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    expect(ctx.getHeaders().Authorization).toBe('Bearer secret');
    expect(kc.agentsBuilt).toBe(1);
  });

  it('unpooled() is a plain copy for the Lease elector: same server and credentials, the library agents', async () => {
    const kc = config('secret');
    const plain = kc.unpooled();
    expect(plain).not.toBeInstanceOf(PooledKubeConfig);
    expect(plain.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect(plain.getCurrentUser()?.token).toBe('secret');
    expect(await agentOfRequest(plain)).not.toBe(await agentOfRequest(plain));
  });

  it('builds a new agent when the TLS trust changes (a rotated CA), never reusing the old one', async () => {
    const kc = config('t');
    const a = await agentOfRequest(kc);
    kc.clusters[0] = { ...kc.clusters[0]!, caData: 'Y2EtMg==' };
    const b = (await agentOfRequest(kc)) as https.Agent & { options: https.AgentOptions };
    expect(b).not.toBe(a);
    expect(String(b.options.ca)).toBe('ca-2');
    expect(await agentOfRequest(kc)).toBe(b);
    expect(kc.agentsBuilt).toBe(2);
  });
});
