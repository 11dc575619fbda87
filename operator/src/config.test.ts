import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import {
  ConfigError,
  envName,
  listenFailure,
  loadOperatorConfig,
  MAX_TIMER_MS,
  operatorHelp,
  OPERATOR_DEFAULTS,
  OPERATOR_FLAGS,
  parseHostPort,
} from './config.js';

describe('loadOperatorConfig', () => {
  it('uses the documented defaults', () => {
    const c = loadOperatorConfig([], {});
    expect(c).toMatchObject({
      watchNamespaces: [],
      metricsListen: OPERATOR_DEFAULTS.metricsListen,
      leaderElect: true,
      workers: 4,
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
      leaderElectionNamespace: 'default',
    });
    expect(c.podAddressOverrides.size).toBe(0);
  });

  it('reads every flag from RIPPLECACHE_* and lets a flag win over the environment', () => {
    const env = {
      RIPPLECACHE_WORKERS: '8',
      RIPPLECACHE_WATCH_NAMESPACES: 'a, b',
      RIPPLECACHE_POD_ADDRESS_OVERRIDE: 'ns/p-0=127.0.0.1:7000,ns/p-1=127.0.0.1:7001',
    };
    const c = loadOperatorConfig(['--workers', '2', '--leader-elect=false'], env);
    expect(c.workers).toBe(2);
    expect(c.leaderElect).toBe(false);
    expect(c.watchNamespaces).toEqual(['a', 'b']);
    expect(c.podAddressOverrides.get('ns/p-1')).toEqual({ host: '127.0.0.1', port: 7001 });
  });

  it('rejects bad values with a message naming the flag', () => {
    expect(() => loadOperatorConfig(['--workers', '0'], {})).toThrow(/--workers must be an integer/);
    for (const notDecimal of ['1e1', '0x10', ' 4', '4.0', ''])
      expect(() => loadOperatorConfig(['--workers', notDecimal], {})).toThrow(/--workers must be an integer/);
    expect(() => loadOperatorConfig(['--metrics-listen', 'nope'], {})).toThrow(/--metrics-listen must be HOST:PORT/);
    expect(() => loadOperatorConfig(['--bogus'], {})).toThrow(ConfigError);
    expect(() => loadOperatorConfig(['--pod-address-override', 'x'], {})).toThrow(/namespace\/pod=host:port/);
    expect(() => loadOperatorConfig([], { RIPPLECACHE_LEADER_ELECT: 'maybe' })).toThrow(
      /--leader-elect must be true or false/,
    );
  });

  it('takes the client-side API rate limit from --kube-api-qps and --kube-api-burst', () => {
    expect(loadOperatorConfig([], {})).toMatchObject({ kubeApiQps: 200, kubeApiBurst: 400 });
    const c = loadOperatorConfig(['--kube-api-qps', '12.5', '--kube-api-burst=20'], {});
    expect(c).toMatchObject({ kubeApiQps: 12.5, kubeApiBurst: 20 });
    expect(loadOperatorConfig([], { RIPPLECACHE_KUBE_API_QPS: '0' }).kubeApiQps).toBe(0);
    expect(() => loadOperatorConfig(['--kube-api-qps', '-1'], {})).toThrow(/--kube-api-qps must be a number ≥ 0/);
    expect(() => loadOperatorConfig(['--kube-api-qps', 'fast'], {})).toThrow(/--kube-api-qps/);
    expect(() => loadOperatorConfig(['--kube-api-burst', '0'], {})).toThrow(/--kube-api-burst must be an integer ≥ 1/);
  });

  it('derives the renew deadline and retry period from the lease duration in client-go’s ratio (15/10/2)', () => {
    expect(loadOperatorConfig(['--lease-duration-seconds', '3'], {})).toMatchObject({
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.4,
    });
    expect(loadOperatorConfig(['--lease-duration-seconds', '4'], {})).toMatchObject({
      renewDeadlineSeconds: 2.667,
      retryPeriodSeconds: 0.533,
    });
    expect(
      loadOperatorConfig(['--lease-duration-seconds=3', '--renew-deadline-seconds=2.5'], {
        RIPPLECACHE_RETRY_PERIOD_SECONDS: '0.25',
      }),
    ).toMatchObject({ leaseDurationSeconds: 3, renewDeadlineSeconds: 2.5, retryPeriodSeconds: 0.25 });
  });

  it('rejects a renew deadline not shorter than the lease, and a retry period not shorter than the deadline', () => {
    expect(() => loadOperatorConfig(['--lease-duration-seconds', '3', '--renew-deadline-seconds', '3'], {})).toThrow(
      /--renew-deadline-seconds \(3\) must be less than --lease-duration-seconds \(3\)/,
    );
    expect(() =>
      loadOperatorConfig(['--lease-duration-seconds', '5'], { RIPPLECACHE_RENEW_DEADLINE_SECONDS: '10' }),
    ).toThrow(ConfigError);
    // Only the lease duration given: the derived deadline always fits it.
    expect(loadOperatorConfig(['--lease-duration-seconds', '8'], {}).renewDeadlineSeconds).toBeLessThan(8);
    expect(() => loadOperatorConfig(['--renew-deadline-seconds', '2', '--retry-period-seconds', '2'], {})).toThrow(
      /--retry-period-seconds \(2\) must be less than --renew-deadline-seconds \(2\)/,
    );
    for (const bad of ['0', '-1', 'abc', '1e3', '0.0001', ''])
      expect(() => loadOperatorConfig([`--renew-deadline-seconds=${bad}`], {}), bad).toThrow(
        /--renew-deadline-seconds must be a positive number of seconds/,
      );
  });

  it('documents every flag and its environment variable in --help', () => {
    const help = operatorHelp();
    for (const f of OPERATOR_FLAGS) {
      expect(help).toContain(`--${f.name}`);
      expect(help).toContain(envName(f.name));
    }
  });

  it('says "unknown flag" for an unknown flag in every position and form', () => {
    for (const argv of [
      ['--bogus-flag'],
      ['--bogus-flag', 'x'],
      ['--bogus-flag=x'],
      ['--workers', '2', '--bogus-flag'],
      ['--leader-elect', '--bogus-flag'],
    ]) {
      expect(() => loadOperatorConfig(argv, {}), argv.join(' ')).toThrow(/^unknown flag --bogus-flag /);
    }
  });

  it('a flag that needs a value does not take the next flag as its value; a boolean flag may stand alone', () => {
    expect(() => loadOperatorConfig(['--kubeconfig'], {})).toThrow(/^flag --kubeconfig needs a value$/);
    expect(() => loadOperatorConfig(['--kubeconfig', '--workers', '2'], {})).toThrow(
      /^flag --kubeconfig needs a value$/,
    );
    expect(loadOperatorConfig(['--kubeconfig=--odd-name'], {}).kubeconfig).toBe('--odd-name');
    expect(loadOperatorConfig(['--leader-elect'], {}).leaderElect).toBe(true);
    expect(loadOperatorConfig(['--leader-elect', '--workers', '3'], {})).toMatchObject({
      leaderElect: true,
      workers: 3,
    });
    expect(loadOperatorConfig(['--leader-elect', 'false'], {}).leaderElect).toBe(false);
    expect(loadOperatorConfig(['--leader-elect=false'], {}).leaderElect).toBe(false);
  });

  it('takes --kubeconfig from the flag or RIPPLECACHE_KUBECONFIG only ($KUBECONFIG is read by loadKubeConfig)', () => {
    expect(loadOperatorConfig([], { KUBECONFIG: '/a:/b' }).kubeconfig).toBeUndefined();
    expect(loadOperatorConfig([], { RIPPLECACHE_KUBECONFIG: '/k' }).kubeconfig).toBe('/k');
  });

  it('documents --version in --help', () => {
    expect(operatorHelp()).toMatch(/--version\s+print the version/);
  });
});

describe('loadOperatorConfig: bounds and names', () => {
  const refuses = (argv: string[], message: RegExp, env: NodeJS.ProcessEnv = {}) => {
    expect(() => loadOperatorConfig(argv, env), argv.join(' ')).toThrow(ConfigError);
    expect(() => loadOperatorConfig(argv, env), argv.join(' ')).toThrow(message);
  };

  it('bounds every flag that ends in a timer by 2^31-1 ms (setTimeout’s limit), naming the flag and the bound', () => {
    expect(MAX_TIMER_MS).toBe(2147483647);
    refuses(['--redis-timeout-ms', '99999999999999'], /^--redis-timeout-ms must be at most 2147483647 \(.*2\^31-1/);
    refuses(['--redis-timeout-ms', '2147483648'], /^--redis-timeout-ms must be at most 2147483647 /);
    refuses([], /^--redis-timeout-ms must be an integer/, { RIPPLECACHE_REDIS_TIMEOUT_MS: '1e15' });
    expect(loadOperatorConfig(['--redis-timeout-ms', '2147483647'], {}).redisTimeoutMs).toBe(2147483647);
    refuses(['--resync-seconds', '2147484'], /^--resync-seconds must be at most 2147483 \(2147483647 ms/);
    expect(loadOperatorConfig(['--resync-seconds', '2147483'], {}).resyncSeconds).toBe(2147483);
    refuses(['--lease-duration-seconds', '99999999'], /^--lease-duration-seconds must be at most 2147483 \(/);
    refuses(
      ['--lease-duration-seconds', '2147483', '--renew-deadline-seconds', '2147483.648'],
      /^--renew-deadline-seconds must be at most 2147483.647 seconds \(2147483647 ms/,
    );
    refuses(['--retry-period-seconds', '3000000'], /^--retry-period-seconds must be at most 2147483.647 seconds/);
    // The largest lease still derives a renew deadline and retry period that fit a timer.
    const c = loadOperatorConfig(['--lease-duration-seconds', '2147483'], {});
    expect(Math.round(c.renewDeadlineSeconds * 1000)).toBeLessThanOrEqual(MAX_TIMER_MS);
    // The rate limit's wait for one request (1/qps s) is a timer too; 0 still means no limit.
    refuses(['--kube-api-qps', '0.0000001'], /^--kube-api-qps must be 0 \(no limit\) or at least 0.000001 /);
    expect(loadOperatorConfig(['--kube-api-qps', '0.000001'], {}).kubeApiQps).toBe(0.000001);
    expect(loadOperatorConfig(['--kube-api-qps', '0'], {}).kubeApiQps).toBe(0);
  });

  it('refuses an empty or blank --identity, and keeps the default ($POD_NAME or the host name, plus the pid)', () => {
    refuses(['--identity', ''], /^--identity must not be empty/);
    refuses(['--identity=  '], /^--identity must not be empty/);
    expect(loadOperatorConfig([], {}).identity).toBe(`${hostname()}-${process.pid}`);
    expect(loadOperatorConfig([], { POD_NAME: 'op-7d9f' }).identity).toBe(`op-7d9f-${process.pid}`);
    expect(loadOperatorConfig(['--identity', 'replica a'], {}).identity).toBe('replica a');
  });

  it('takes only DNS-1123 labels in --watch-namespaces and --leader-election-namespace', () => {
    refuses(['--watch-namespaces', 'Bad_NS,,x'], /^--watch-namespaces must be a namespace name .*got "Bad_NS"/);
    refuses(['--watch-namespaces', 'a,,b'], /^--watch-namespaces has an empty entry, got "a,,b"/);
    refuses(['--watch-namespaces', 'a,'], /^--watch-namespaces has an empty entry/);
    for (const bad of ['-a', 'a-', 'A', 'a.b', 'a_b', 'x'.repeat(64)])
      refuses(['--watch-namespaces', bad], /^--watch-namespaces must be a namespace name/);
    expect(loadOperatorConfig(['--watch-namespaces', ` shop, ${'x'.repeat(63)} ,a-1`], {}).watchNamespaces).toEqual([
      'shop',
      'x'.repeat(63),
      'a-1',
    ]);
    // Not given, or given empty: every namespace.
    expect(loadOperatorConfig(['--watch-namespaces='], {}).watchNamespaces).toEqual([]);
    refuses(['--leader-election-namespace', 'Not_Valid'], /^--leader-election-namespace must be a namespace name/);
    refuses(['--leader-election-namespace', ''], /^--leader-election-namespace must be a namespace name/);
    expect(loadOperatorConfig(['--leader-election-namespace', 'ops'], {}).leaderElectionNamespace).toBe('ops');
    expect(loadOperatorConfig([], { POD_NAMESPACE: 'ripplecache' }).leaderElectionNamespace).toBe('ripplecache');
    // An empty $POD_NAMESPACE / $POD_NAME is as good as none (not an empty Lease namespace or identity).
    const empty = loadOperatorConfig([], { POD_NAMESPACE: '', POD_NAME: '' });
    expect(empty.leaderElectionNamespace).toBe('default');
    expect(empty.webhookSecret.namespace).toBe('default');
    expect(empty.identity).not.toMatch(/^-/);
  });

  it('takes only Kubernetes names in --webhook-secret and --webhook-configuration', () => {
    refuses(['--webhook-secret', '-a/tls'], /^--webhook-secret must be \[NAMESPACE\/\]NAME/);
    refuses(['--webhook-secret', `${'n'.repeat(70)}/tls`], /^--webhook-secret must be/);
    refuses(['--webhook-secret', 'ns/-tls-'], /^--webhook-secret must be/);
    expect(loadOperatorConfig(['--webhook-secret', 'ops/webhook.tls'], {}).webhookSecret).toEqual({
      namespace: 'ops',
      name: 'webhook.tls',
    });
    refuses(
      ['--webhook-configuration', 'Bad Name'],
      /^--webhook-configuration must be the name of a MutatingWebhookConfiguration/,
    );
    expect(loadOperatorConfig(['--webhook-configuration', 'rc-sidecar-injector'], {}).webhookConfiguration).toBe(
      'rc-sidecar-injector',
    );
  });

  it('takes only a Lease name in --leader-election-id', () => {
    for (const bad of ['', 'Leader', 'a_b', '-a', 'a'.repeat(254)])
      refuses(['--leader-election-id', bad], /^--leader-election-id must be a Lease name/);
    expect(loadOperatorConfig(['--leader-election-id', 'rc.leader-1'], {}).leaderElectionId).toBe('rc.leader-1');
  });

  it('takes only image references in --exporter-image and --sidecar-image', () => {
    for (const flag of ['exporter-image', 'sidecar-image'])
      for (const bad of ['', ' ', ' bad image', 'redis :7', 'redis:7 ', 'Redis:7'])
        refuses([`--${flag}`, bad], new RegExp(`^--${flag} must be a container image reference`));
    const c = loadOperatorConfig(
      [
        '--exporter-image',
        'registry.example.com:5000/team/redis_exporter:v1',
        '--sidecar-image',
        'sidecar@sha256:' + 'a'.repeat(64),
      ],
      {},
    );
    expect(c).toMatchObject({
      exporterImage: 'registry.example.com:5000/team/redis_exporter:v1',
      sidecarImage: `sidecar@sha256:${'a'.repeat(64)}`,
    });
    expect(loadOperatorConfig([], {})).toMatchObject({
      exporterImage: OPERATOR_DEFAULTS.exporterImage,
      sidecarImage: OPERATOR_DEFAULTS.sidecarImage,
    });
  });

  it('bounds --workers at 256 (as the Helm chart’s values schema)', () => {
    refuses(['--workers', '1000000'], /^--workers must be at most 256 /);
    refuses(['--workers', '257'], /^--workers must be at most 256 /);
    expect(loadOperatorConfig(['--workers', '256'], {}).workers).toBe(256);
  });
});

describe('listenFailure', () => {
  const errno = (code: string, message: string) => Object.assign(new Error(message), { code, syscall: 'listen' });

  it('says in one line which address of which flag could not be opened, and why', () => {
    expect(
      listenFailure(
        'metrics-listen',
        '127.0.0.1:8080',
        errno('EADDRINUSE', 'listen EADDRINUSE: address already in use 127.0.0.1:8080'),
      ),
    ).toBe('cannot listen on 127.0.0.1:8080 (--metrics-listen): address already in use');
    expect(listenFailure('metrics-listen', '0.0.0.0:80', errno('EACCES', 'listen EACCES'))).toBe(
      'cannot listen on 0.0.0.0:80 (--metrics-listen): permission denied',
    );
    expect(listenFailure('webhook-listen', '10.9.9.9:8443', errno('EADDRNOTAVAIL', 'x'))).toBe(
      'cannot listen on 10.9.9.9:8443 (--webhook-listen): address not available on this host',
    );
    expect(listenFailure('metrics-listen', 'h:1', errno('EWHATEVER', 'first line\n    at somewhere'))).toBe(
      'cannot listen on h:1 (--metrics-listen): first line',
    );
    expect(listenFailure('metrics-listen', 'h:1', errno('constructor', 'odd'))).toBe(
      'cannot listen on h:1 (--metrics-listen): odd',
    );
  });
});

describe('HOST:PORT flags (common/src/host-port.ts)', () => {
  it('the operator and the sidecar accept and refuse the same addresses', async () => {
    const { parseListen } = await import('../../sidecar/src/config.js');
    const accepts = (f: () => unknown) => {
      try {
        return f();
      } catch {
        return 'refused';
      }
    };
    for (const text of ['127.0.0.1:8080', '[::]:8443', ':::8080', 'svc.ns:1', 'nope', ':8080', 'h:70000', '[h]:80']) {
      expect(
        accepts(() => parseHostPort('metrics-listen', text)),
        text,
      ).toEqual(accepts(() => parseListen(text, '--listen')));
    }
    expect(parseHostPort('metrics-listen', ':::8080')).toEqual({ host: '::', port: 8080 });
    expect(() => loadOperatorConfig(['--metrics-listen', '[h]:80'], {})).toThrow(/--metrics-listen must be HOST:PORT/);
  });
});
