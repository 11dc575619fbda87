import { describe, expect, it } from 'vitest';
import { parseReplicas } from './redis-l2.js';

describe('redis-l2 (pure helpers)', () => {
  it('parses the replicas of INFO replication', () => {
    const info = [
      '# Replication',
      'role:master',
      'connected_slaves:2',
      'slave0:ip=10.0.0.5,port=6379,state=online,offset=100,lag=0',
      'slave1:ip=sessions-2.sessions-headless,port=6380,state=wait_bgsave,offset=0,lag=1',
      'master_replid:abc',
    ].join('\r\n');
    expect(parseReplicas(info)).toEqual([
      { host: '10.0.0.5', port: 6379 },
      { host: 'sessions-2.sessions-headless', port: 6380 },
    ]);
    expect(parseReplicas('role:master\r\nconnected_slaves:0\r\n')).toEqual([]);
  });
});
