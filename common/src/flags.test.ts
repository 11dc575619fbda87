import { describe, expect, it } from 'vitest';
import { envName, envValues, FlagError, parseFlags, valuesByFlag, type FlagSpec } from './flags.js';

const SPECS: FlagSpec[] = [
  { name: 'listen' },
  { name: 'replica', repeatable: true },
  { name: 'leader-elect', boolean: true },
];

function problem(argv: string[], builtins = false): [string, string] | undefined {
  try {
    parseFlags(argv, SPECS, { builtins });
  } catch (err) {
    if (err instanceof FlagError) return [err.problem, err.subject];
    throw err;
  }
  return undefined;
}

describe('parseFlags', () => {
  it('reads --name value and --name=value, in order, repeatable flags more than once', () => {
    const r = parseFlags(['--listen', 'a:1', '--replica=r1', '--replica', 'r2', '--listen=b:2'], SPECS);
    expect(r.given).toEqual([
      { name: 'listen', value: 'a:1' },
      { name: 'replica', value: 'r1' },
      { name: 'replica', value: 'r2' },
      { name: 'listen', value: 'b:2' },
    ]);
    expect(valuesByFlag(r.given)).toEqual(
      new Map([
        ['listen', ['a:1', 'b:2']],
        ['replica', ['r1', 'r2']],
      ]),
    );
    expect(r).toMatchObject({ help: false, version: false });
  });

  it('takes values that begin with a dash, and `--` itself, as values; --a=--b gives --a the value --b', () => {
    expect(parseFlags(['--listen', '-1'], SPECS).given).toEqual([{ name: 'listen', value: '-1' }]);
    expect(parseFlags(['--listen', '--'], SPECS).given).toEqual([{ name: 'listen', value: '--' }]);
    expect(parseFlags(['--listen=--odd'], SPECS).given).toEqual([{ name: 'listen', value: '--odd' }]);
    expect(parseFlags(['--listen='], SPECS).given).toEqual([{ name: 'listen', value: '' }]);
  });

  it('lets a true|false flag stand alone or take the next argument as its value', () => {
    const value = (argv: string[]) => valuesByFlag(parseFlags(argv, SPECS).given).get('leader-elect');
    expect(value(['--leader-elect'])).toEqual(['true']);
    expect(value(['--leader-elect', '--listen', 'a:1'])).toEqual(['true']);
    expect(value(['--leader-elect', 'false'])).toEqual(['false']);
    expect(value(['--leader-elect=false'])).toEqual(['false']);
    expect(value(['--leader-elect', '-x'])).toEqual(['-x']);
  });

  it('says "needs a value" for a flag at the end or followed by another flag', () => {
    expect(problem(['--listen'])).toEqual(['missing-value', 'listen']);
    expect(problem(['--listen', '--replica', 'r'])).toEqual(['missing-value', 'listen']);
    expect(problem(['--listen', '--bogus'])).toEqual(['missing-value', 'listen']);
  });

  it('names an unknown flag in every position and form, before what follows it', () => {
    for (const argv of [
      ['--bogus'],
      ['--bogus', 'x'],
      ['--bogus=x'],
      ['--bogus='],
      ['--bogus', '--listen'],
      ['--listen', 'a:1', '--bogus'],
      ['--leader-elect', '--bogus'],
    ]) {
      expect(problem(argv), argv.join(' ')).toEqual(['unknown-flag', 'bogus']);
    }
    expect(problem(['--'])).toEqual(['unknown-flag', '']);
  });

  it('refuses arguments that are not flags, naming them as given', () => {
    expect(problem(['stray'])).toEqual(['unexpected-argument', 'stray']);
    expect(problem(['-x'])).toEqual(['unexpected-argument', '-x']);
    expect(problem(['-abc'])).toEqual(['unexpected-argument', '-abc']);
    expect(problem(['--listen', 'a:1', 'b'])).toEqual(['unexpected-argument', 'b']);
  });

  it('knows --help, -h and --version only with builtins, anywhere on the line', () => {
    expect(parseFlags(['--listen', 'a:1', '--help'], SPECS, { builtins: true })).toMatchObject({ help: true });
    expect(parseFlags(['-h'], SPECS, { builtins: true })).toMatchObject({ help: true, version: false });
    expect(parseFlags(['--version'], SPECS, { builtins: true })).toMatchObject({ help: false, version: true });
    expect(problem(['--help'])).toEqual(['unknown-flag', 'help']);
    expect(problem(['-h'])).toEqual(['unexpected-argument', '-h']);
    expect(problem(['--help=yes'], true)).toEqual(['unknown-flag', 'help']);
  });

  it('calls onFlag in order, so a bad value is reported before a problem further right', () => {
    const seen: string[] = [];
    expect(() =>
      parseFlags(['--listen', 'a:1', '--replica', 'bad', '--bogus'], SPECS, {
        onFlag: (name, value) => {
          seen.push(`${name}=${value}`);
          if (value === 'bad') throw new Error('bad value');
        },
      }),
    ).toThrow('bad value');
    expect(seen).toEqual(['listen=a:1', 'replica=bad']);
  });

  it('words its errors in one default way', () => {
    expect(new FlagError('unknown-flag', 'x').message).toBe('unknown flag --x');
    expect(new FlagError('missing-value', 'x').message).toBe('--x needs a value');
    expect(new FlagError('unexpected-argument', 'x').message).toBe('unexpected argument "x"');
  });
});

describe('envName and envValues', () => {
  it('maps --foo-bar to RIPPLECACHE_FOO_BAR', () => {
    expect(envName('l1-max-bytes')).toBe('RIPPLECACHE_L1_MAX_BYTES');
  });

  it('reads non-empty variables; a repeatable one is a comma-separated list', () => {
    expect(
      envValues({ RIPPLECACHE_LISTEN: 'a:1', RIPPLECACHE_REPLICA: ' r1, ,r2 ', RIPPLECACHE_LEADER_ELECT: '' }, SPECS),
    ).toEqual(
      new Map([
        ['listen', ['a:1']],
        ['replica', ['r1', 'r2']],
      ]),
    );
    expect(envValues({ RIPPLECACHE_LISTEN: 'a,b' }, SPECS).get('listen')).toEqual(['a,b']);
  });
});
