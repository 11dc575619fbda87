import { spawn } from 'node:child_process';
import { generateKeyPair } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestCa, issueTestCertificate, type CertificateRequest, type PemPair } from './certificates.js';
import { freePort } from './ports.js';
import {
  kubeBinDir,
  progressLog,
  removeTempDir,
  repoRoot,
  spawnManaged,
  terminate,
  trackTempDir,
  waitForProcess,
  type ManagedProcess,
} from './tools.js';

/** What `kubectl` printed and its exit code; never throws on a non-zero exit. */
export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** PEM-encoded certificate and key, plus the PEM of the CA that signed it (for `caBundle` and `ca` options). */
export interface IssuedCertificate {
  cert: string;
  key: string;
  ca: string;
}

export type { CertificateRequest };

/** A real etcd + kube-apiserver + kube-controller-manager on loopback ports. No kubelet and no scheduler. */
export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** An admin kubeconfig (client certificate in group system:masters) with the CA and credentials inline. */
  readonly kubeconfigPath: string;
  /** The temporary directory: pki/, etcd/, *.log, *.kubeconfig. */
  readonly dir: string;
  /** Where the kube binaries are (kubectl, helm, ...). */
  readonly binDir: string;
  /** PEM of the cluster CA (it signed the API server's serving certificate). */
  readonly caCert: string;
  /**
   * Runs kubectl as the admin. Put `--kubeconfig=<path>` in `args` to act as someone else (the last flag wins).
   * `input` goes to stdin (for `-f -`).
   */
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /**
   * `kubectl apply --server-side -f <dir>` (default: the repository's crds/), then waits until every CRD is
   * Established and served (see `waitForCrdsServed`).
   */
  applyCrds(dir?: string): Promise<void>;
  /**
   * Waits until each CRD (`<plural>.<group>`) is Established, kubectl can list its objects, and the API server
   * takes a write of one. Each comes later than the one before it, asynchronously, and under CI load a
   * `kubectl apply` of a custom object failed after each of the first two: "resource kind … not found" from
   * kubectl's discovery right after Established, then 503 "Resource kind … not found. There can be a delay
   * between when CustomResourceDefinitions are created and when they are available" from the server after a
   * list had succeeded. The write is a server-side dry run of an object with an empty spec, and it must
   * succeed: a 422 from the schema comes before the step that answers that 503, so it proves nothing (the
   * first version of this check took it for served). Every CRD of this repository accepts `spec: {}`.
   */
  waitForCrdsServed(names: string[], timeoutMs?: number): Promise<void>;
  /**
   * Creates the ServiceAccount if it is missing, asks for a token (`kubectl create token`) and writes a kubeconfig
   * that authenticates with it. Returns the kubeconfig's path.
   */
  makeKubeconfigForServiceAccount(namespace: string, name: string, opts?: { duration?: string }): Promise<string>;
  /** Issues a certificate signed by the cluster CA, e.g. a webhook's serving certificate (caBundle = `ca`). */
  issueCertificate(req: CertificateRequest): Promise<IssuedCertificate>;
  /** Stops every process (SIGTERM, SIGKILL after 5 s) and removes `dir` (kept with RIPPLECACHE_KEEP_TMP=1). */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Extra kube-apiserver flags, e.g. ['--feature-gates=...']; they come after (and so override) ours. */
  apiserverArgs?: string[];
  /** Extra kube-controller-manager flags. */
  controllerManagerArgs?: string[];
  /**
   * The Service IP range (default 10.96.0.0/16) and its first address, the `kubernetes` Service's IP (put in
   * the API server's certificate). A real node (test/harness/node.ts) needs an IPv6 ULA range.
   */
  serviceCidr?: { cidr: string; firstIp: string };
  /**
   * The address the API server publishes as the `kubernetes` Service's endpoint (`--advertise-address`, with
   * the `lease` endpoint reconciler instead of `none`), also put in its serving certificate. The API server
   * still listens on 127.0.0.1 only: whoever sets this forwards `<address>:<port of server>` to it (the local
   * node does, on its bridge; see test/harness/node.ts). Default: none (no endpoints for `kubernetes`).
   */
  advertiseAddress?: string;
}

const DEFAULT_SERVICE_CIDR = { cidr: '10.96.0.0/16', firstIp: '10.96.0.1' };

/** Writes `pki/<name>.crt` and `pki/<name>.key`; the components read them from there. */
async function writePair(pki: string, name: string, pair: PemPair): Promise<void> {
  await Promise.all([
    writeFile(join(pki, `${name}.crt`), pair.cert),
    writeFile(join(pki, `${name}.key`), pair.key, { mode: 0o600 }),
  ]);
}

/** A kubeconfig as JSON (which is YAML, so kubectl and @kubernetes/client-node read it). */
function kubeconfig(server: string, caPem: string, user: { token: string } | { cert: string; key: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const creds =
    'token' in user
      ? { token: user.token }
      : { 'client-certificate-data': b64(user.cert), 'client-key-data': b64(user.key) };
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'ripplecache-test', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: 'user', user: creds }],
      contexts: [
        { name: 'ripplecache-test', context: { cluster: 'ripplecache-test', user: 'user', namespace: 'default' } },
      ],
      'current-context': 'ripplecache-test',
    },
    null,
    2,
  )}\n`;
}

/** GET over HTTPS; resolves with the status code and body. */
function httpsGet(
  url: string,
  tls: { ca?: string; cert?: string; key?: string; insecure?: boolean },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        timeout: 3_000,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
      },
      (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => {
            body += d;
          })
          .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager (all controllers, no leader election) on free
 * 127.0.0.1 ports with their own CA in a temporary directory, and waits until the API server is ready, the
 * controller manager is healthy and its controllers have created the `default` ServiceAccount.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = progressLog('control-plane');
  const { cidr: serviceCidr, firstIp: serviceIp } = opts.serviceCidr ?? DEFAULT_SERVICE_CIDR;
  const binDir = await kubeBinDir();
  const bin = (name: string) => join(binDir, name);
  const dir = await mkdtemp(join(tmpdir(), 'ripplecache-cp-'));
  trackTempDir(dir);
  const pki = join(dir, 'pki');
  const procs: ManagedProcess[] = [];
  const stopAll = async () => {
    const [etcd, ...rest] = procs;
    await Promise.all(rest.map((p) => terminate(p)));
    if (etcd) await terminate(etcd);
  };

  try {
    await mkdir(pki);
    const ports = new Set<number>();
    while (ports.size < 4) ports.add(await freePort());
    const [etcdPort, peerPort, apiPort, kcmPort] = [...ports] as [number, number, number, number];
    const server = `https://127.0.0.1:${apiPort}`;
    log(`starting in ${dir} (binaries: ${binDir})`);

    // etcd does not need the certificates: start it first and make them meanwhile.
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = spawnManaged(
      'etcd',
      bin('etcd'),
      [
        '--name',
        'ripplecache-test',
        '--data-dir',
        join(dir, 'etcd'),
        '--listen-client-urls',
        etcdUrl,
        '--advertise-client-urls',
        etcdUrl,
        '--listen-peer-urls',
        peerUrl,
        '--initial-advertise-peer-urls',
        peerUrl,
        '--initial-cluster',
        `ripplecache-test=${peerUrl}`,
        '--unsafe-no-fsync',
      ],
      { logPath: join(dir, 'etcd.log'), cwd: dir },
    );
    procs.push(etcd);

    const ca = await createTestCa('ripplecache-test-ca');
    await writePair(pki, 'ca', ca);
    const makeCert = async (name: string, req: CertificateRequest) =>
      writePair(pki, name, await issueTestCertificate(ca, req));
    const saKeys = promisify(generateKeyPair)('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await Promise.all([
      makeCert('apiserver', {
        commonName: 'kube-apiserver',
        usage: 'server',
        ipAddresses: ['127.0.0.1', serviceIp, ...(opts.advertiseAddress ? [opts.advertiseAddress] : [])],
        dnsNames: [
          'localhost',
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          'kubernetes.default.svc.cluster.local',
        ],
      }),
      makeCert('admin', { commonName: 'ripplecache-admin', organizations: ['system:masters'], usage: 'client' }),
      // What the API server shows a kubelet (logs, exec, port-forward); a real node authorizes it by webhook.
      makeCert('apiserver-kubelet-client', {
        commonName: 'kube-apiserver-kubelet-client',
        organizations: ['system:masters'],
        usage: 'client',
      }),
      // With --use-service-account-credentials=false every controller acts as this user, and the built-in
      // system:kube-controller-manager role only covers shared informers, so it also gets system:masters.
      makeCert('controller-manager', {
        commonName: 'system:kube-controller-manager',
        organizations: ['system:masters'],
        usage: 'client',
      }),
      // The aggregation layer's client (and its request-header CA), as kubeadm sets up: without them the
      // controller manager's delegated authentication logs an error every few seconds.
      makeCert('front-proxy-client', { commonName: 'front-proxy-client', usage: 'client' }),
      saKeys.then(({ privateKey, publicKey }) =>
        Promise.all([
          writeFile(join(pki, 'sa.key'), privateKey, { mode: 0o600 }),
          writeFile(join(pki, 'sa.pub'), publicKey),
        ]),
      ),
    ]);
    const pem = async (name: string) => readFile(join(pki, name), 'utf8');
    const [caCert, adminCert, adminKey, kcmCert, kcmKey] = (await Promise.all(
      ['ca.crt', 'admin.crt', 'admin.key', 'controller-manager.crt', 'controller-manager.key'].map(pem),
    )) as [string, string, string, string, string];
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    const kcmKubeconfig = join(dir, 'controller-manager.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(server, caCert, { cert: adminCert, key: adminKey }), { mode: 0o600 });
    await writeFile(kcmKubeconfig, kubeconfig(server, caCert, { cert: kcmCert, key: kcmKey }), { mode: 0o600 });
    log('certificates ready');

    await waitForProcess(
      etcd,
      `etcd at ${etcdUrl}`,
      async () => {
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      30_000,
    );
    log(`etcd ready at ${etcdUrl}`);

    const apiserver = spawnManaged(
      'kube-apiserver',
      bin('kube-apiserver'),
      [
        `--etcd-servers=${etcdUrl}`,
        `--secure-port=${apiPort}`,
        '--bind-address=127.0.0.1',
        `--advertise-address=${opts.advertiseAddress ?? '127.0.0.1'}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
        `--client-ca-file=${join(pki, 'ca.crt')}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
        `--service-cluster-ip-range=${serviceCidr}`,
        '--allow-privileged=true',
        `--kubelet-client-certificate=${join(pki, 'apiserver-kubelet-client.crt')}`,
        `--kubelet-client-key=${join(pki, 'apiserver-kubelet-client.key')}`,
        // Reach a kubelet by its node's InternalIP, never by resolving the node's name through the host's DNS.
        '--kubelet-preferred-address-types=InternalIP',
        `--requestheader-client-ca-file=${join(pki, 'ca.crt')}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${join(pki, 'front-proxy-client.crt')}`,
        `--proxy-client-key-file=${join(pki, 'front-proxy-client.key')}`,
        // 127.0.0.1 is not a valid Endpoints address: without an advertise address, do not publish the
        // `kubernetes` Service's endpoints.
        `--endpoint-reconciler-type=${opts.advertiseAddress ? 'lease' : 'none'}`,
        '--profiling=false',
        // Default admission plugins (ServiceAccount included: the controller manager creates the accounts).
        ...(opts.apiserverArgs ?? []),
      ],
      { logPath: join(dir, 'kube-apiserver.log'), cwd: dir },
    );
    procs.push(apiserver);
    const adminTls = { ca: caCert, cert: adminCert, key: adminKey };
    await waitForProcess(
      apiserver,
      `kube-apiserver ${server}/readyz`,
      async () => {
        const res = await httpsGet(`${server}/readyz`, adminTls);
        return res.status === 200;
      },
      90_000,
    );
    log(`kube-apiserver ready at ${server}`);

    const kcm = spawnManaged(
      'kube-controller-manager',
      bin('kube-controller-manager'),
      [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        '--controllers=*',
        '--leader-elect=false',
        '--use-service-account-credentials=false',
        `--service-account-private-key-file=${join(pki, 'sa.key')}`,
        `--root-ca-file=${join(pki, 'ca.crt')}`,
        `--cluster-signing-cert-file=${join(pki, 'ca.crt')}`,
        `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
        `--service-cluster-ip-range=${serviceCidr}`,
        `--secure-port=${kcmPort}`,
        '--bind-address=127.0.0.1',
        `--cert-dir=${join(dir, 'controller-manager-certs')}`,
        '--profiling=false',
        ...(opts.controllerManagerArgs ?? []),
      ],
      { logPath: join(dir, 'kube-controller-manager.log'), cwd: dir },
    );
    procs.push(kcm);
    await waitForProcess(
      kcm,
      `kube-controller-manager https://127.0.0.1:${kcmPort}/healthz`,
      async () => {
        const res = await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, { insecure: true });
        return res.status === 200;
      },
      60_000,
    );
    // Healthy is not the same as running controllers: wait for the serviceaccount controller's first work.
    await waitForProcess(
      kcm,
      'the ServiceAccount default/default (made by the controller manager)',
      async () => {
        const res = await httpsGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, adminTls);
        return res.status === 200;
      },
      60_000,
    );
    log('kube-controller-manager ready; control plane up');

    const kubectlCache = join(dir, 'kubectl-cache');
    const kubectl = (args: string[], input?: string): Promise<KubectlResult> =>
      new Promise((resolve, reject) => {
        const child = spawn(
          bin('kubectl'),
          [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${kubectlCache}`, ...args],
          {
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
        });
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
        // kubectl may exit before it reads its stdin (an early error): the EPIPE is not an error of the call
        // (its exit code and stderr say what happened), and unhandled it failed a whole test file.
        child.stdin.on('error', () => undefined);
        child.stdin.end(input ?? '');
      });
    const must = async (args: string[], input?: string): Promise<string> => {
      const r = await kubectl(args, input);
      if (r.code !== 0)
        throw new Error(`kubectl ${args.join(' ')} failed (exit code ${r.code}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    };

    const waitForCrdsServed = async (names: string[], timeoutMs = 60_000): Promise<void> => {
      if (names.length === 0) return;
      const started = Date.now();
      const crds = names.map((n) => `crd/${n}`);
      await must(['wait', '--for=condition=Established', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, ...crds]);
      const until = async (name: string, what: string, attempt: () => Promise<boolean>, why: () => string) => {
        while (!(await attempt())) {
          if (Date.now() - started > timeoutMs)
            throw new Error(`CRD ${name}: ${what} not served after ${timeoutMs} ms: ${why()}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      for (const name of names) {
        let last: KubectlResult | undefined;
        await until(
          name,
          'list',
          async () => {
            last = await kubectl(['get', name, '--all-namespaces', '-o', 'name', '--request-timeout=10s']);
            return last.code === 0;
          },
          () => last?.stderr ?? '',
        );
        const [kind, version, scope] = (
          await must([
            'get',
            `crd/${name}`,
            '-o',
            'jsonpath={.spec.names.kind} {.spec.versions[?(@.served==true)].name} {.spec.scope}',
          ])
        ).split(' ') as [string, string, string];
        const group = name.slice(name.indexOf('.') + 1);
        const probe = JSON.stringify({
          apiVersion: `${group}/${version}`,
          kind,
          metadata: { name: 'served-probe', ...(scope === 'Namespaced' ? { namespace: 'default' } : {}) },
          spec: {},
        });
        await until(
          name,
          'a write',
          async () => {
            last = await kubectl(['create', '--dry-run=server', '--validate=false', '-f', '-'], probe);
            return last.code === 0;
          },
          () => last?.stderr ?? '',
        );
      }
    };

    let stopped = false;
    return {
      server,
      kubeconfigPath,
      dir,
      binDir,
      caCert: caCert,
      kubectl,
      applyCrds: async (crdDir = join(repoRoot, 'crds')) => {
        const files = existsSync(crdDir) ? readdirSync(crdDir).filter((f) => /\.(ya?ml|json)$/.test(f)) : [];
        if (files.length === 0) {
          process.stderr.write(`[control-plane] applyCrds: no manifests in ${crdDir}, nothing applied\n`);
          return;
        }
        await must(['apply', '--server-side', '--field-manager=ripplecache-tests', '-f', crdDir]);
        const names = (await must(['get', '-f', crdDir, '-o', 'name'])).split('\n').filter(Boolean);
        await waitForCrdsServed(names.map((n) => n.replace(/^[^/]*\//, '')));
      },
      waitForCrdsServed,
      makeKubeconfigForServiceAccount: async (namespace, name, tokenOpts = {}) => {
        if ((await kubectl(['get', 'serviceaccount', name, '-n', namespace])).code !== 0) {
          await must(['create', 'serviceaccount', name, '-n', namespace]);
        }
        const token = (
          await must(['create', 'token', name, '-n', namespace, `--duration=${tokenOpts.duration ?? '24h'}`])
        ).trim();
        const path = join(dir, `sa-${namespace}-${name}.kubeconfig`);
        await writeFile(path, kubeconfig(server, caCert, { token }), { mode: 0o600 });
        return path;
      },
      issueCertificate: async (req) => {
        const { cert, key } = await issueTestCertificate(ca, req);
        return { cert, key, ca: caCert };
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        removeTempDir(dir, 'control-plane');
      },
    };
  } catch (err) {
    log(`start-up failed (set RIPPLECACHE_KEEP_TMP=1 to keep the logs in ${dir})`);
    await stopAll();
    removeTempDir(dir, 'control-plane');
    throw err;
  }
}
