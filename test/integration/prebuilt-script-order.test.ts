/**
 * Scripts that publish (the write-back append announces its writes with an invalidation sequence number)
 * must run in the order a client sends them: a receiver takes a number seen before its predecessor for a
 * lost message and drops its L1. Against a real redis-server.
 *
 * The race (CI, issue 16): a client sends EVALSHA for a script Redis does not have yet and gets NOSCRIPT;
 * meanwhile another client loads that script; the first client's next EVALSHA, sent before the NOSCRIPT
 * reply came back, now runs — before the first call, resent as EVAL. Fixed by sending EVAL for a script's
 * first use on each connection (as ioredis does for its own defined commands).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { luaScript, runScript } from '../../sidecar/src/redis/prebuilt-script.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisProcess } from '../harness/redis.js';

let server: RedisProcess;
const clients: Redis[] = [];
const client = () => {
  const c = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

/** KEYS[1] unused; ARGV channel, message. */
const PUBLISH = luaScript(`return redis.call('PUBLISH', ARGV[1], ARGV[2])`);

describe('runScript', () => {
  it('keeps one connection’s publishing scripts in send order while other clients load the same script', async () => {
    const channel = 'it-prebuilt-order';
    const sub = client();
    await sub.connect();
    const seen = new Map<string, number[]>();
    sub.on('message', (_c: string, m: string) => {
      const [sender, seq] = m.split(':');
      const list = seen.get(sender as string) ?? [];
      list.push(Number(seq));
      seen.set(sender as string, list);
    });
    await sub.subscribe(channel);
    const admin = client();
    await admin.connect();
    const rounds = 30;
    const perRound = 40;
    let sent = 0;
    for (let round = 0; round < rounds; round++) {
      // Redis forgets the script; new connections (as after a restart).
      await admin.script('FLUSH');
      const senders = Array.from({ length: 4 }, () => client());
      await Promise.all(senders.map((c) => c.connect()));
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < perRound; i++) {
        senders.forEach((c, s) => {
          calls.push(runScript(c, PUBLISH, ['k'], [channel, `s${s}-${round}:${i}`]));
        });
        // Let replies (NOSCRIPT among them) come back between some of the sends.
        if (i % 8 === 7) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(calls);
      sent += perRound * senders.length;
      for (const c of senders) c.disconnect();
    }
    await waitFor(
      'every message',
      async () => [...seen.values()].reduce((n, l) => n + l.length, 0) === sent,
      10_000,
      20,
    );
    const outOfOrder = [...seen].filter(([, seqs]) => seqs.some((q, i) => i > 0 && q !== (seqs[i - 1] as number) + 1));
    expect(outOfOrder.map(([s, seqs]) => `${s}: ${seqs.join(',')}`)).toEqual([]);
    expect(seen.size).toBe(rounds * 4);
  }, 60_000);
});
