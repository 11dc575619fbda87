import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config-values.js';
import { MAX_PEERS, parseBridgeConfig } from './bridge-config.js';

const base = ['--cluster', 'shop/a', '--redis', 'redis://a:6379'];

describe('parseBridgeConfig', () => {
  it('reads peers with their channels and passwords from named environment variables', () => {
    const r = parseBridgeConfig(
      [
        ...base,
        '--peer',
        'b=redis://b:6379',
        '--peer',
        'c=redis://c:6379/2',
        '--peer-channel',
        'c=other',
        '--peer-password-env',
        'b=PW_B',
      ],
      { PW_B: 'secret' },
    );
    if (r.kind !== 'run') throw new Error(r.kind);
    expect(r.config.peers).toEqual([
      { name: 'b', url: 'redis://b:6379', channel: 'ripplecache:invalidations', password: 'secret' },
      { name: 'c', url: 'redis://c:6379/2', channel: 'other' },
    ]);
    expect(r.config).toMatchObject({ cluster: 'shop/a', listen: { host: '0.0.0.0', port: 7072 }, maxBatch: 500 });
  });

  it('takes every flag from RIPPLECACHE_<FLAG> too', () => {
    const r = parseBridgeConfig([], {
      RIPPLECACHE_CLUSTER: 'ns/x',
      RIPPLECACHE_REDIS: 'redis://x:6379',
      RIPPLECACHE_PEER: 'y=redis://y:6379, z=redis://z:6379',
    });
    expect(r.kind === 'run' && r.config.peers.map((p) => p.name)).toEqual(['y', 'z']);
  });

  it('says what is wrong', () => {
    const bad =
      (argv: string[], env = {}) =>
      () =>
        parseBridgeConfig(argv, env);
    expect(bad(base)).toThrow(/at least one peer/);
    expect(bad(['--redis', 'redis://a', '--peer', 'b=redis://b'])).toThrow(/--cluster is required/);
    expect(bad([...base, '--peer', 'b'])).toThrow(/not NAME=VALUE/);
    expect(bad([...base, '--peer', 'b=http://b'])).toThrow(/scheme/);
    expect(bad([...base, '--peer', 'b=redis://b', '--peer', 'b=redis://c'])).toThrow(/twice/);
    expect(bad([...base, '--peer', 'b=redis://b', '--peer-channel', 'c=x'])).toThrow(/"c" is not a --peer/);
    expect(bad([...base, '--peer', 'b=redis://b', '--peer-password-env', 'b=NOPE'])).toThrow(/NOPE is not set/);
    expect(bad([...base, '--peer', 'b=redis://b', '--max-batch', '0'])).toThrow(ConfigError);
    expect(bad([...base, '--bogus'])).toThrow(/unknown flag --bogus/);
  });

  it('reads which side is a Redis Cluster: --redis-cluster, and --peer-cluster NAME per peer', () => {
    const r = parseBridgeConfig(
      [...base, '--redis-cluster', '--peer', 'b=redis://b:6379', '--peer', 'c=redis://c:7000/0', '--peer-cluster', 'c'],
      {},
    );
    if (r.kind !== 'run') throw new Error(r.kind);
    expect(r.config.redisCluster).toBe(true);
    expect(r.config.peers).toEqual([
      { name: 'b', url: 'redis://b:6379', channel: 'ripplecache:invalidations' },
      { name: 'c', url: 'redis://c:7000/0', channel: 'ripplecache:invalidations', cluster: true },
    ]);
    // As the operator renders it (a value after the flag), and from the environment.
    const rendered = parseBridgeConfig([...base, '--redis-cluster', 'true', '--peer', 'b=redis://b:6379'], {});
    if (rendered.kind !== 'run') throw new Error(rendered.kind);
    expect(rendered.config.redisCluster).toBe(true);
    const fromEnv = parseBridgeConfig(base, {
      RIPPLECACHE_PEER: 'b=redis://b:6379,c=redis://c:6379',
      RIPPLECACHE_PEER_CLUSTER: 'b,c',
      RIPPLECACHE_REDIS_CLUSTER: 'false',
    });
    if (fromEnv.kind !== 'run') throw new Error(fromEnv.kind);
    expect(fromEnv.config.redisCluster).toBe(false);
    expect(fromEnv.config.peers.map((p) => p.cluster)).toEqual([true, true]);
    // Default: neither.
    const plain = parseBridgeConfig([...base, '--peer', 'b=redis://b:6379'], {});
    if (plain.kind !== 'run') throw new Error(plain.kind);
    expect(plain.config.redisCluster).toBe(false);
    expect(plain.config.peers[0]).not.toHaveProperty('cluster');
  });

  it('refuses --peer-cluster for an unknown peer, and a database other than 0 on a Redis Cluster', () => {
    expect(() => parseBridgeConfig([...base, '--peer', 'b=redis://b:6379', '--peer-cluster', 'x'], {})).toThrow(
      /"x" is not a --peer/,
    );
    expect(() => parseBridgeConfig([...base, '--peer', 'b=redis://b:6379/2', '--peer-cluster', 'b'], {})).toThrow(
      /--peer b: 2 is not database 0/,
    );
    expect(() =>
      parseBridgeConfig(
        ['--cluster', 'shop/a', '--redis', 'redis://a:6379/1', '--redis-cluster', '--peer', 'b=redis://b:1'],
        {},
      ),
    ).toThrow(ConfigError);
  });

  it('takes --log-level from the levels the sidecar takes, and says so in one line otherwise', () => {
    const run = (level: string) => {
      const r = parseBridgeConfig([...base, '--peer', 'b=redis://b', '--log-level', level], {});
      if (r.kind !== 'run') throw new Error(r.kind);
      return r.config.logLevel;
    };
    expect(run('warn')).toBe('warn');
    expect(run('silent')).toBe('silent');
    const r = parseBridgeConfig([...base, '--peer', 'b=redis://b'], {});
    expect(r.kind === 'run' && r.config.logLevel).toBe('info');
    // The sidecar's own wording (sidecar/src/config.ts: oneOf(LOG_LEVELS)).
    expect(() => run('verbose')).toThrow(
      new ConfigError('--log-level: "verbose" is not one of fatal, error, warn, info, debug, trace, silent'),
    );
    expect(() => parseBridgeConfig([...base, '--peer', 'b=redis://b'], { RIPPLECACHE_LOG_LEVEL: 'INFO' })).toThrow(
      /--log-level: "INFO" is not one of/,
    );
  });

  it('takes --cluster as NAMESPACE/NAME, each a DNS label', () => {
    const cluster = (name: string) => () =>
      parseBridgeConfig(['--cluster', name, '--redis', 'redis://a', '--peer', 'b=redis://b'], {});
    for (const ok of ['shop/a', 'ns-1/sessions-eu', '0/x', `${'n'.repeat(63)}/${'c'.repeat(63)}`]) {
      const r = cluster(ok)();
      expect(r.kind === 'run' && r.config.cluster).toBe(ok);
    }
    for (const bad of [
      'not a name',
      'shop',
      'shop/',
      '/a',
      'a/b/c',
      'Shop/a',
      'shop/a_b',
      'shop/-a',
      `shop/${'c'.repeat(64)}`,
    ]) {
      expect(cluster(bad), bad).toThrow(ConfigError);
    }
    expect(cluster('not a name')).toThrow(
      '--cluster: "not a name" is not NAMESPACE/NAME (each a Kubernetes DNS label: lowercase letters, digits and \'-\', at most 63)',
    );
  });

  it(`takes at most ${MAX_PEERS} peers: a relayed message names at most 64 clusters`, () => {
    const peers = (n: number) => Array.from({ length: n }, (_, i) => ['--peer', `p${i}=redis://p${i}`]).flat();
    const r = parseBridgeConfig([...base, ...peers(MAX_PEERS)], {});
    expect(r.kind === 'run' && r.config.peers.length).toBe(63);
    expect(() => parseBridgeConfig([...base, ...peers(MAX_PEERS + 1)], {})).toThrow(/64 peers, at most 63/);
  });
});
