import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, parseConfig, parseByteQuantity, redactedConfig } from './config.js';
import { SIDECAR_DEFAULTS, type SidecarConfig } from './config-defaults.js';

function cfg(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): SidecarConfig {
  const r = parseConfig({
    argv,
    env,
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw new Error('ENOENT');
      return f;
    },
  });
  if (r.kind !== 'config') throw new Error('expected a config');
  return r.config;
}

describe('sidecar config', () => {
  it('has defaults: L1-only, loopback listener, drop on disconnect', () => {
    const c = cfg([]);
    expect(c).toEqual(SIDECAR_DEFAULTS);
    expect(c.redis).toBeUndefined();
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 7070 }]);
    expect(c.listenResp).toEqual([]);
    expect(c.socketMode).toBe(0o660);
    expect(c.respPassword).toBeUndefined();
    expect(c.metricsListen).toBeUndefined();
    expect(c.onDisconnect).toBe('drop');
  });

  it('reads --redis-cluster from the flag (alone or true|false), RIPPLECACHE_REDIS_CLUSTER or redisCluster', () => {
    const seed = ['--redis', 'redis://cache:6379'];
    expect(cfg(seed).redisCluster).toBe(false);
    expect(cfg([...seed, '--redis-cluster']).redisCluster).toBe(true);
    expect(cfg(['--redis-cluster', ...seed]).redisCluster).toBe(true);
    expect(cfg([...seed, '--redis-cluster', 'false']).redisCluster).toBe(false);
    expect(cfg([...seed, '--redis-cluster=true']).redisCluster).toBe(true);
    expect(cfg(seed, { RIPPLECACHE_REDIS_CLUSTER: 'true' }).redisCluster).toBe(true);
    expect(cfg(['--config', 'f'], {}, { f: 'redis: redis://cache:6379\nredisCluster: true\n' }).redisCluster).toBe(
      true,
    );
    expect(() => cfg([...seed, '--redis-cluster', 'yes'])).toThrow(/--redis-cluster: "yes" is not true or false/);
    expect(() => cfg(['--redis-cluster'])).toThrow(/--redis-cluster needs --redis/);
    expect(() => cfg([...seed, '--redis-cluster', '--redis-replica', 'redis://r:1'])).toThrow(
      /cannot be used with --redis-cluster/,
    );
  });

  it('reads --metrics-listen from the flag, RIPPLECACHE_METRICS_LISTEN or metricsListen; empty turns it off', () => {
    expect(cfg(['--metrics-listen', '0.0.0.0:7071']).metricsListen).toEqual({ host: '0.0.0.0', port: 7071 });
    expect(cfg(['--metrics-listen=[::]:7071']).metricsListen).toEqual({ host: '::', port: 7071 });
    expect(cfg([], { RIPPLECACHE_METRICS_LISTEN: '127.0.0.1:9100' }).metricsListen).toEqual({
      host: '127.0.0.1',
      port: 9100,
    });
    expect(cfg(['--config', 'f'], {}, { f: 'metricsListen: 0.0.0.0:7071\n' }).metricsListen).toEqual({
      host: '0.0.0.0',
      port: 7071,
    });
    // A flag beats the file, and an empty flag turns the file's listener off.
    expect(
      cfg(['--config', 'f', '--metrics-listen', '0.0.0.0:9000'], {}, { f: 'metricsListen: 0.0.0.0:7071\n' })
        .metricsListen,
    ).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(
      cfg(['--config', 'f', '--metrics-listen='], {}, { f: 'metricsListen: 0.0.0.0:7071\n' }).metricsListen,
    ).toBeUndefined();
    expect(cfg(['--config', 'f'], {}, { f: 'metricsListen: ""\n' }).metricsListen).toBeUndefined();
    // Port 0 (OS-chosen) never clashes; different ports on one host are fine.
    expect(cfg(['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0']).metricsListen).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
    expect(cfg(['--metrics-listen', '127.0.0.1:7071']).listen).toEqual([{ host: '127.0.0.1', port: 7070 }]);
  });

  it.each([
    [['--metrics-listen', 'nope'], /--metrics-listen: "nope" is not HOST:PORT/],
    [['--metrics-listen', '0.0.0.0:99999'], /--metrics-listen: .* is not HOST:PORT/],
    [['--metrics-listen', '127.0.0.1:7070'], /--metrics-listen 127.0.0.1:7070 overlaps --listen 127.0.0.1:7070/],
    [['--metrics-listen', '0.0.0.0:7070'], /overlaps --listen/],
    [
      ['--listen', '[::]:8000', '--metrics-listen', '127.0.0.1:8000'],
      /--metrics-listen 127.0.0.1:8000 overlaps --listen \[::\]:8000/,
    ],
  ])('rejects metrics listener %j', (argv, message) => {
    expect(() => cfg(argv)).toThrow(message);
    expect(() => cfg(argv)).toThrow(ConfigError);
  });

  it('reads the CacheCluster name from --cache-cluster, RIPPLECACHE_CACHE_CLUSTER or cacheCluster; none by default', () => {
    expect(SIDECAR_DEFAULTS.cacheCluster).toBeUndefined();
    expect(cfg(['--cache-cluster', 'sessions']).cacheCluster).toBe('sessions');
    expect(cfg([], { RIPPLECACHE_CACHE_CLUSTER: 'carts.v2' }).cacheCluster).toBe('carts.v2');
    expect(cfg(['--config', 'f'], {}, { f: 'cacheCluster: from-file\n' }).cacheCluster).toBe('from-file');
    expect(
      cfg(
        ['--config', 'f', '--cache-cluster', 'flag'],
        { RIPPLECACHE_CACHE_CLUSTER: 'env' },
        { f: 'cacheCluster: file\n' },
      ).cacheCluster,
    ).toBe('flag');
    for (const bad of ['Sessions', 'a_b', '-a', 'a-', 'x'.repeat(254)]) {
      expect(() => cfg(['--cache-cluster', bad])).toThrow(/--cache-cluster: .* is not a Kubernetes object name/);
    }
    expect(() => cfg([], { RIPPLECACHE_CACHE_CLUSTER: 'A' })).toThrow(/RIPPLECACHE_CACHE_CLUSTER/);
  });

  it('names the variable or file key of a bad metrics listener', () => {
    expect(() => cfg([], { RIPPLECACHE_METRICS_LISTEN: '7071' })).toThrow(
      /RIPPLECACHE_METRICS_LISTEN: "7071" is not HOST:PORT/,
    );
    expect(() => cfg(['--config', 'f'], {}, { f: 'metricsListen: x\n' })).toThrow(
      /f: metricsListen: "x" is not HOST:PORT/,
    );
  });

  it('reads every flag, in both --flag value and --flag=value forms', () => {
    const c = cfg([
      '--listen',
      '127.0.0.1:9000',
      '--redis=redis://127.0.0.1:6379',
      '--redis-replica',
      'redis://127.0.0.1:6380',
      '--redis-replica=redis://127.0.0.1:6381',
      '--redis-password',
      's3cret',
      '--channel',
      'c1',
      '--l1-policy',
      'lfu',
      '--l1-max-entries',
      '500',
      '--l1-max-bytes',
      '64Mi',
      '--l1-max-ttl',
      '5',
      '--default-ttl',
      '0',
      '--write-policy',
      'write-around',
      '--origin',
      'postgres://db/app',
      '--on-disconnect',
      'serve-stale',
      '--max-value-bytes',
      '2Mi',
      '--redis-timeout-ms',
      '250',
      '--durability',
      'replicated',
      '--durability-timeout-ms=750',
      '--log-level',
      'warn',
    ]);
    expect(c).toMatchObject({
      listen: [{ host: '127.0.0.1', port: 9000 }],
      redis: 'redis://127.0.0.1:6379',
      redisReplicas: ['redis://127.0.0.1:6380', 'redis://127.0.0.1:6381'],
      redisPassword: 's3cret',
      channel: 'c1',
      l1: { policy: 'lfu', maxEntries: 500, maxBytes: 64 * 2 ** 20, maxTTLSeconds: 5 },
      defaultTTLSeconds: 0,
      writePolicy: 'write-around',
      origin: 'postgres://db/app',
      onDisconnect: 'serve-stale',
      maxValueBytes: 2 * 2 ** 20,
      redisTimeoutMs: 250,
      durability: 'replicated',
      durabilityTimeoutMs: 750,
      logLevel: 'warn',
    });
  });

  it('durability: primary by default; replicated from the flag, RIPPLECACHE_DURABILITY or the file; bad values named', () => {
    expect(cfg([])).toMatchObject({ durability: 'primary', durabilityTimeoutMs: 1000 });
    expect(cfg([], { RIPPLECACHE_DURABILITY: 'replicated', RIPPLECACHE_DURABILITY_TIMEOUT_MS: '20' })).toMatchObject({
      durability: 'replicated',
      durabilityTimeoutMs: 20,
    });
    const file = 'durability: replicated\ndurabilityTimeoutMs: 300\n';
    expect(cfg(['--config', '/c.yaml'], {}, { '/c.yaml': file })).toMatchObject({
      durability: 'replicated',
      durabilityTimeoutMs: 300,
    });
    expect(() => cfg(['--durability', 'quorum'])).toThrow(/--durability/);
    expect(() => cfg(['--durability-timeout-ms', '0'])).toThrow(/--durability-timeout-ms/);
  });

  it('precedence: flag > env > config file > defaults', () => {
    const file = 'l1:\n  policy: fifo\n  maxEntries: 7\n  maxBytes: 1Mi\nchannel: from-file\ndefaultTTLSeconds: 11\n';
    const c = cfg(
      ['--config', '/c.yaml', '--l1-policy', 'lru'],
      { RIPPLECACHE_L1_POLICY: 'lfu', RIPPLECACHE_L1_MAX_ENTRIES: '9' },
      { '/c.yaml': file },
    );
    expect(c.l1).toEqual({ policy: 'lru', maxEntries: 9, maxBytes: 2 ** 20, maxTTLSeconds: 60 });
    expect(c.channel).toBe('from-file');
    expect(c.defaultTTLSeconds).toBe(11);
  });

  it("reads the config file named by RIPPLECACHE_CONFIG, with the operator's full shape", () => {
    const file = [
      'listen: 127.0.0.1:7071',
      'redis: redis://sessions.shop.svc:6379',
      'redisReplicas: [redis://a:6379, redis://b:6379]',
      'channel: ripplecache:sessions',
      'defaultTTLSeconds: 3600',
      'writePolicy: write-back',
      'onDisconnect: serve-stale',
      'maxValueBytes: 1048576',
      'l1: {policy: lfu, maxEntries: 10000, maxBytes: 64Mi, maxTTLSeconds: 60}',
      'writeBack: {flushIntervalMs: 1000, flushBatchSize: 500, maxPending: 100000, coalesceWindowMs: 2000}',
      'origin: http://origin:8080',
    ].join('\n');
    const c = cfg([], { RIPPLECACHE_CONFIG: '/etc/rc.yaml' }, { '/etc/rc.yaml': file });
    expect(c.redisReplicas).toEqual(['redis://a:6379', 'redis://b:6379']);
    expect(c.writeBack).toEqual({
      flushIntervalMs: 1000,
      flushBatchSize: 500,
      maxPending: 100000,
      coalesceWindowMs: 2000,
    });
    expect(c.l1.maxBytes).toBe(64 * 2 ** 20);
    expect(c.origin).toBe('http://origin:8080');
  });

  it('reads repeatable flags from a comma-separated environment variable', () => {
    const c = cfg(['--redis', 'redis://p:1'], { RIPPLECACHE_REDIS_REPLICA: 'redis://a:1, redis://b:2' });
    expect(c.redisReplicas).toEqual(['redis://a:1', 'redis://b:2']);
  });

  it.each([
    [['--l1-policy', 'mru'], /--l1-policy: "mru" is not one of lru, lfu, fifo, ttl/],
    [['--l1-max-entries', '0'], /out of range/],
    [['--l1-max-entries', '1.5'], /not a whole number/],
    [['--l1-max-bytes', '64MB'], /not a byte count/],
    [['--listen', 'localhost'], /not HOST:PORT/],
    [['--listen', '127.0.0.1:70000'], /not HOST:PORT/],
    [['--redis', 'http://x:1'], /scheme "http:"/],
    [['--redis', 'nope'], /not a URL/],
    [['--max-value-bytes', '1Gi'], /more than the maximum/],
    [['--max-value-bytes', '0.5'], /--max-value-bytes: "0.5" is not a whole number of bytes/],
    [['--l1-max-bytes', '1048576.5'], /not a whole number of bytes/],
    [['--redis', 'redis://x:1/abc'], /--redis: the database "abc" is not a number/],
    [['--redis', 'redis://x:1/1x'], /the database "1x" is not a number/],
    [['--redis', 'redis://x:1/-1'], /the database "-1" is not a number/],
    [['--redis', 'redis://x:1/1', '--redis-cluster'], /Redis Cluster has only database 0/],
    [['--bogus', '1'], /unknown flag --bogus/],
    [['--channel'], /--channel needs a value/],
    [['stray'], /unexpected argument/],
    [['--redis-replica', 'redis://r:1'], /needs --redis/],
  ])('rejects %j', (argv, message) => {
    expect(() => cfg(argv)).toThrow(message);
    expect(() => cfg(argv)).toThrow(ConfigError);
  });

  it('rejects a bad environment value naming the variable', () => {
    expect(() => cfg([], { RIPPLECACHE_ON_DISCONNECT: 'maybe' })).toThrow(/RIPPLECACHE_ON_DISCONNECT/);
  });

  it('rejects unknown config-file keys, naming them', () => {
    expect(() => cfg(['--config', 'f'], {}, { f: 'l1: {policy: lru, maxEntry: 3}\nredisReplica: x\n' })).toThrow(
      /unknown keys: l1.maxEntry, redisReplica/,
    );
    expect(() => cfg(['--config', 'f'], {}, { f: 'redisPassword: x\n' })).toThrow(/unknown keys: redisPassword/);
  });

  it('rejects a bad config-file value naming the file and key', () => {
    expect(() => cfg(['--config', 'f'], {}, { f: 'l1: {maxTTLSeconds: -1}\n' })).toThrow(/f: l1.maxTTLSeconds/);
    expect(() => cfg(['--config', 'f'], {}, { f: ': : :' })).toThrow(ConfigError);
    expect(() => cfg(['--config', 'missing'])).toThrow(/cannot be read/);
  });

  it('names an unknown flag as unknown wherever it is and in every form', () => {
    for (const argv of [
      ['--bogus-flag'],
      ['--bogus-flag', 'x'],
      ['--bogus-flag=x'],
      ['--bogus-flag='],
      ['--bogus-flag', '--listen', '127.0.0.1:1'],
      ['--listen', '127.0.0.1:1', '--bogus-flag'],
      ['--l1-policy=lru', '--bogus-flag'],
    ]) {
      expect(() => cfg(argv), argv.join(' ')).toThrow(/^unknown flag --bogus-flag$/);
    }
    // A known flag without a value still says so, also when another flag follows it.
    expect(() => cfg(['--listen'])).toThrow(/^--listen needs a value$/);
    expect(() => cfg(['--listen', '--l1-policy', 'lru'])).toThrow(/^--listen needs a value$/);
    expect(() => cfg(['--config'])).toThrow(/^--config needs a value$/);
  });

  it('--version asks for the version wherever it is', () => {
    expect(parseConfig({ argv: ['--version'], env: {}, readFile: () => '' }).kind).toBe('version');
    expect(parseConfig({ argv: ['--l1-policy=lfu', '--version'], env: {}, readFile: () => '' }).kind).toBe('version');
    expect(helpText()).toMatch(/--version\n\s+print the version/);
  });

  it('--help returns the help text, which documents every flag and its variable', () => {
    const r = parseConfig({ argv: ['--help'], env: {}, readFile: () => '' });
    expect(r.kind).toBe('help');
    const text = helpText();
    for (const flag of [
      '--listen',
      '--metrics-listen',
      '--redis',
      '--redis-replica',
      '--redis-password',
      '--channel',
      '--l1-policy',
      '--l1-max-entries',
      '--l1-max-bytes',
      '--l1-max-ttl',
      '--default-ttl',
      '--write-policy',
      '--origin',
      '--on-disconnect',
      '--max-value-bytes',
      '--redis-timeout-ms',
      '--config',
      '--log-level',
    ]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain('RIPPLECACHE_L1_POLICY');
    expect(text).toContain('RIPPLECACHE_METRICS_LISTEN');
    expect(text).toContain('RIPPLECACHE_REDIS_PASSWORD');
  });

  it('parses byte quantities', () => {
    expect(parseByteQuantity('64Mi', 'x')).toBe(67108864);
    expect(parseByteQuantity('1k', 'x')).toBe(1000);
    expect(parseByteQuantity(2048, 'x')).toBe(2048);
  });

  it('redacts passwords for logging', () => {
    const c = cfg(['--redis', 'redis://:hunter2@p:6379', '--redis-password', 'pw2']);
    const text = JSON.stringify(redactedConfig(c));
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('pw2');
  });
  it('reads the write-policy flags and refuses write-back against an origin without Redis', () => {
    const c = cfg([
      '--redis',
      'redis://r:6379',
      '--origin',
      'postgres://app@db:5432/app',
      '--origin-table',
      'app.cache',
      '--write-policy',
      'write-back',
      '--write-back-flush-interval-ms',
      '250',
      '--write-back-flush-batch-size',
      '100',
      '--write-back-max-pending',
      '5000',
      '--write-back-claim-timeout-ms',
      '3000',
    ]);
    expect(c).toMatchObject({
      origin: 'postgres://app@db:5432/app',
      originTable: 'app.cache',
      writePolicy: 'write-back',
      writeBack: { flushIntervalMs: 250, flushBatchSize: 100, maxPending: 5000 },
      writeBackClaimTimeoutMs: 3000,
    });
    expect(
      cfg([], { RIPPLECACHE_ORIGIN_TABLE: 'entries', RIPPLECACHE_WRITE_BACK_CLAIM_TIMEOUT_MS: '1000' }),
    ).toMatchObject({ originTable: 'entries', writeBackClaimTimeoutMs: 1000 });
    expect(cfg(['--config', 'f'], {}, { f: 'originTable: t1\nwriteBackClaimTimeoutMs: 500\n' })).toMatchObject({
      originTable: 't1',
      writeBackClaimTimeoutMs: 500,
    });
    expect(() => cfg(['--origin-table', 'x; drop table y'])).toThrow(/not a table name/);
    expect(() => cfg(['--origin', 'mysql://db/app'])).toThrow(ConfigError);
    expect(() => cfg(['--origin', 'postgres://db/app', '--write-policy', 'write-back'])).toThrow(/needs --redis/);
    expect(cfg(['--origin', 'http://origin:8080/cache', '--write-policy', 'write-around']).writePolicy).toBe(
      'write-around',
    );
    for (const flag of ['--origin-table', '--write-back-claim-timeout-ms', '--write-back-max-pending'])
      expect(helpText()).toContain(flag);
    expect(helpText()).toContain('--write-back-coalesce-window-ms');
    expect(JSON.stringify(redactedConfig(cfg(['--origin', 'postgres://app:hunter3@db/app'])))).not.toContain('hunter3');
  });
  it('reads the write-back coalescing window (off by default) and keeps it under half the claim timeout', () => {
    expect(cfg([]).writeBack.coalesceWindowMs).toBe(0);
    expect(cfg(['--write-back-coalesce-window-ms', '5000']).writeBack.coalesceWindowMs).toBe(5000);
    expect(cfg([], { RIPPLECACHE_WRITE_BACK_COALESCE_WINDOW_MS: '250' }).writeBack.coalesceWindowMs).toBe(250);
    expect(() => cfg(['--write-back-coalesce-window-ms', '-1'])).toThrow(ConfigError);
    expect(() => cfg(['--write-back-coalesce-window-ms', '1500', '--write-back-claim-timeout-ms', '3000'])).toThrow(
      /must be under half of --write-back-claim-timeout-ms 3000/,
    );
    expect(
      cfg(['--write-back-coalesce-window-ms', '1499', '--write-back-claim-timeout-ms', '3000']).writeBack
        .coalesceWindowMs,
    ).toBe(1499);
  });
});

describe('byte flags take Kubernetes quantities (common/src/quantity.ts), as the CRD does', () => {
  it('accepts a fractional quantity such as 1.5Gi', () => {
    expect(cfg(['--l1-max-bytes', '1.5Gi']).l1.maxBytes).toBe(1.5 * 2 ** 30);
    expect(cfg(['--max-value-bytes', '1.5Mi']).maxValueBytes).toBe(1.5 * 2 ** 20);
    expect(cfg(['--config', 'f'], {}, { f: 'l1: {maxBytes: 1.5Gi}\n' }).l1.maxBytes).toBe(1.5 * 2 ** 30);
    expect(cfg([], { RIPPLECACHE_L1_MAX_BYTES: '1e6' }).l1.maxBytes).toBe(1_000_000);
  });

  it('refuses 512K (Kubernetes has k and Ki, no K) and says a value out of range is out of range', () => {
    expect(() => cfg(['--l1-max-bytes', '512K'])).toThrow(/--l1-max-bytes: "512K" is not a byte count/);
    expect(() => cfg(['--l1-max-bytes', '16Ei'])).toThrow(/--l1-max-bytes: "16Ei" is out of range/);
    expect(() => cfg(['--l1-max-bytes', '0'])).toThrow(/out of range/);
  });
});

describe('listen addresses: TCP and Unix sockets, the HTTP API and the RESP front', () => {
  it('takes --listen and --listen-resp more than once, HOST:PORT or unix:/PATH', () => {
    const c = cfg([
      '--listen',
      '127.0.0.1:7070',
      '--listen=unix:/var/run/ripplecache/http.sock',
      '--listen-resp',
      '127.0.0.1:7379',
      '--listen-resp',
      'unix:/var/run/ripplecache/resp.sock',
      '--socket-mode',
      '0666',
      '--resp-password',
      'hunter4',
    ]);
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 7070 }, { path: '/var/run/ripplecache/http.sock' }]);
    expect(c.listenResp).toEqual([{ host: '127.0.0.1', port: 7379 }, { path: '/var/run/ripplecache/resp.sock' }]);
    expect(c.socketMode).toBe(0o666);
    expect(c.respPassword).toBe('hunter4');
    expect(JSON.stringify(redactedConfig(c))).not.toContain('hunter4');
  });

  it('reads them from comma-separated variables and from the file (a list, or one value)', () => {
    const env = cfg([], {
      RIPPLECACHE_LISTEN: 'unix:/run/a.sock, 127.0.0.1:1',
      RIPPLECACHE_LISTEN_RESP: 'unix:/run/b.sock',
      RIPPLECACHE_SOCKET_MODE: '600',
    });
    expect(env.listen).toEqual([{ path: '/run/a.sock' }, { host: '127.0.0.1', port: 1 }]);
    expect(env.listenResp).toEqual([{ path: '/run/b.sock' }]);
    expect(env.socketMode).toBe(0o600);
    const file = cfg(
      ['--config', 'f'],
      {},
      { f: 'listen: unix:/run/a.sock\nlistenResp: [127.0.0.1:2, unix:/run/b.sock]\nsocketMode: 0640\n' },
    );
    expect(file.listen).toEqual([{ path: '/run/a.sock' }]);
    expect(file.listenResp).toEqual([{ host: '127.0.0.1', port: 2 }, { path: '/run/b.sock' }]);
    expect(file.socketMode).toBe(0o640);
    // The password is never read from the file.
    expect(() => cfg(['--config', 'f'], {}, { f: 'respPassword: x\n' })).toThrow(/unknown keys: respPassword/);
  });

  it.each([
    [['--listen', 'unix:relative.sock'], /--listen: "unix:relative.sock": the socket path must be absolute/],
    [['--listen', `unix:/${'a'.repeat(107)}`], /--listen: the socket path is longer than 107 bytes/],
    [['--listen-resp', 'nope'], /--listen-resp: "nope" is not HOST:PORT or unix:\/PATH/],
    [['--socket-mode', '0999'], /--socket-mode: "0999" is not an octal file mode/],
    [['--socket-mode', '1777'], /--socket-mode: "1777" is not an octal file mode/],
    [['--listen-resp', '127.0.0.1:7070'], /--listen-resp 127.0.0.1:7070 overlaps --listen 127.0.0.1:7070/],
    [
      ['--listen', 'unix:/run/a.sock', '--listen-resp', 'unix:/run/a.sock'],
      /--listen-resp unix:\/run\/a.sock overlaps --listen unix:\/run\/a.sock/,
    ],
    [
      ['--listen-resp', '0.0.0.0:9000', '--metrics-listen', '127.0.0.1:9000'],
      /--metrics-listen .* overlaps --listen-resp/,
    ],
  ])('refuses %j', (argv, message) => {
    expect(() => cfg(argv)).toThrow(ConfigError);
    expect(() => cfg(argv)).toThrow(message);
  });

  it('lists the new flags in --help', () => {
    const text = helpText();
    for (const flag of ['--listen-resp', '--socket-mode', '--resp-password', 'unix:/PATH'])
      expect(text).toContain(flag);
  });
});
