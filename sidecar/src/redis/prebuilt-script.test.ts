import { describe, expect, it } from 'vitest';
import { encodeCommand, isTryAgain, luaScript, retryWhileTryAgain } from './prebuilt-script.js';

describe('encodeCommand', () => {
  it('writes a RESP array of bulk strings: text as UTF-8, buffers as they are, numbers in decimal', () => {
    const binary = Buffer.from([0, 13, 10, 255]);
    const bytes = encodeCommand(['evalsha', 'é€', binary, 42, '', Buffer.alloc(0)]);
    const expected = Buffer.concat([
      Buffer.from('*6\r\n$7\r\nevalsha\r\n$5\r\n'),
      Buffer.from('é€', 'utf8'),
      Buffer.from('\r\n$4\r\n'),
      binary,
      Buffer.from('\r\n$2\r\n42\r\n$0\r\n\r\n$0\r\n\r\n'),
    ]);
    expect(bytes.equals(expected)).toBe(true);
  });

  it('sizes the buffer exactly, for lengths of any number of digits', () => {
    const big = Buffer.alloc(12_345, 'x');
    const parts = Array.from({ length: 11 }, (_, i) => 'k'.repeat(i * 3));
    const bytes = encodeCommand([...parts, big]);
    expect(bytes.subarray(0, 5).toString()).toBe('*12\r\n');
    expect(bytes.subarray(bytes.length - 2).toString()).toBe('\r\n');
    const tail = Buffer.concat([Buffer.from('$12345\r\n'), big, Buffer.from('\r\n')]);
    expect(bytes.subarray(bytes.length - tail.length).equals(tail)).toBe(true);
  });
});

describe('luaScript', () => {
  it('carries the SHA-1 that EVALSHA names the script by', () => {
    expect(luaScript('return 1').sha).toBe('e0e1f9fabfc9d4800c877a703b823ac0578ff8db');
  });
});

describe('retryWhileTryAgain', () => {
  const tryAgain = () =>
    Object.assign(new Error('TRYAGAIN Multiple keys request during rehashing of slot'), { name: 'ReplyError' });
  const fake = () => {
    let now = 0;
    const sleeps: number[] = [];
    return {
      clock: () => now,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        now += ms;
      },
      advance: (ms: number) => (now += ms),
      sleeps,
    };
  };

  it("recognises TRYAGAIN and ioredis' redirection limit (whatever its last answer), nothing else", () => {
    expect(isTryAgain(tryAgain())).toBe(true);
    expect(isTryAgain(new Error('Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys'))).toBe(
      true,
    );
    expect(
      isTryAgain(new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 12 127.0.0.1:7000')),
    ).toBe(true);
    expect(isTryAgain(new Error('CLUSTERDOWN The cluster is down'))).toBe(false);
    expect(isTryAgain(new Error('ERR TRYAGAIN is not the first word'))).toBe(false);
    expect(isTryAgain('TRYAGAIN')).toBe(false);
  });

  it('retries TRYAGAIN, 25 ms doubling to 200 ms, until the call succeeds', async () => {
    const t = fake();
    let calls = 0;
    const r = await retryWhileTryAgain(
      async () => {
        if (++calls < 7) throw tryAgain();
        return 'ok';
      },
      5000,
      t.clock,
      t.sleep,
    );
    expect(r).toBe('ok');
    expect(calls).toBe(7);
    expect(t.sleeps).toEqual([25, 50, 100, 200, 200, 200]);
  });

  it('gives up with the TRYAGAIN error once the budget is spent, never sleeping past it', async () => {
    const t = fake();
    let calls = 0;
    const p = retryWhileTryAgain(
      async () => {
        calls++;
        t.advance(100); // each try takes 100 ms
        throw tryAgain();
      },
      700,
      t.clock,
      t.sleep,
    );
    await expect(p).rejects.toThrow(/^TRYAGAIN/);
    // try 100, sleep 25, try 100, sleep 50, try 100, sleep 100, try 100, sleep 125 (the rest of 700), try → spent.
    expect(t.sleeps).toEqual([25, 50, 100, 125]);
    expect(calls).toBe(5);
    expect(t.clock()).toBeGreaterThanOrEqual(700);
  });

  it('passes any other error through at once', async () => {
    const t = fake();
    let calls = 0;
    const p = retryWhileTryAgain(
      async () => {
        calls++;
        throw new Error('CLUSTERDOWN The cluster is down');
      },
      5000,
      t.clock,
      t.sleep,
    );
    await expect(p).rejects.toThrow(/CLUSTERDOWN/);
    expect(calls).toBe(1);
    expect(t.sleeps).toEqual([]);
  });
});
