import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from './host-port.js';

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:7070', '127.0.0.1', 7070],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['redis-0.redis.ns.svc:6379', 'redis-0.redis.ns.svc', 6379],
    ['localhost:65535', 'localhost', 65535],
    ['[::1]:7070', '::1', 7070],
    ['[::]:8080', '::', 8080],
    [':::8080', '::', 8080],
  ])('%s', (text, host, port) => {
    expect(parseHostPort(text)).toEqual({ host, port });
  });

  it.each(['nope', '7071', ':8080', 'host:', 'host:65536', 'host:123456', 'host:80x', '[x]:80', '[::1:80', ''])(
    'refuses %j',
    (text) => {
      expect(parseHostPort(text)).toBeUndefined();
    },
  );

  it('formats back, with brackets around IPv6', () => {
    expect(formatHostPort({ host: '::', port: 8000 })).toBe('[::]:8000');
    expect(formatHostPort({ host: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
    expect(parseHostPort(formatHostPort({ host: '::1', port: 7 }))).toEqual({ host: '::1', port: 7 });
  });
});
