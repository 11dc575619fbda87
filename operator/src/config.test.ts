import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  envName,
  loadOperatorConfig,
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
