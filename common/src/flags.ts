/**
 * Command-line flags of both programs, on `node:util` `parseArgs`: `--name value`, `--name=value`,
 * repeatable flags, true|false flags that may stand alone, and the `RIPPLECACHE_<FLAG>` environment
 * fallback. Pure: argv and env are passed in. What a value means is the caller's business; this module
 * only says which flag got which string, or throws a {@link FlagError} saying what is wrong.
 *
 * `parseArgs` runs non-strict with `tokens: true`, and the rules are checked here on its tokens: its strict
 * mode words errors its own way and refuses any value that begins with `-` (`--workers -1`), where both
 * programs have always taken such a value and then said what is wrong with it.
 */
import { parseArgs } from 'node:util';

export interface FlagSpec {
  /** The flag without dashes, e.g. `l1-max-bytes`. */
  name: string;
  /** May be given more than once; the environment variable takes a comma-separated list. */
  repeatable?: boolean;
  /**
   * A true|false flag: alone (or followed by another `--flag`) it means `true`; `--name false`,
   * `--name=false` give a value.
   */
  boolean?: boolean;
}

/** What is wrong with the command line. */
export type FlagProblem = 'unknown-flag' | 'missing-value' | 'unexpected-argument';

export class FlagError extends Error {
  override readonly name = 'FlagError';
  readonly code = 'InvalidFlag';
  constructor(
    readonly problem: FlagProblem,
    /** The flag's name without dashes (unknown-flag, missing-value) or the argument itself (unexpected-argument). */
    readonly subject: string,
  ) {
    super(
      problem === 'unknown-flag'
        ? `unknown flag --${subject}`
        : problem === 'missing-value'
          ? `--${subject} needs a value`
          : `unexpected argument "${subject}"`,
    );
  }
}

export interface ParsedFlags {
  /** Every flag given, in command-line order. */
  given: Array<{ name: string; value: string }>;
  /** `--help` or `-h` was given (only with `builtins`). */
  help: boolean;
  /** `--version` was given (only with `builtins`). */
  version: boolean;
}

export interface ParseFlagsOptions {
  /** Recognise `--help`, `-h` and `--version` (anywhere on the line). Default false: they are unknown flags. */
  builtins?: boolean;
  /**
   * Called for each flag as it is read, in order, before the rest of the line is looked at; so a bad value
   * the callback throws for is reported before a problem further right, as a hand-written loop would.
   */
  onFlag?: (name: string, value: string) => void;
}

/** `--l1-policy` → `RIPPLECACHE_L1_POLICY`. */
export function envName(flag: string): string {
  return `RIPPLECACHE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Reads `argv` (without node and the script). A value that begins with `--` (and is more than `--`) is
 * taken for the next flag, not a value: `--a --b` is "--a needs a value"; `--a=--b` gives it one.
 * Throws {@link FlagError} for the first problem from the left.
 */
export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  options: ParseFlagsOptions = {},
): ParsedFlags {
  const known = new Map(specs.map((s) => [s.name, s]));
  const parseOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const s of specs) parseOptions[s.name] = { type: s.boolean ? 'boolean' : 'string' };
  if (options.builtins) {
    parseOptions['help'] = { type: 'boolean', short: 'h' };
    parseOptions['version'] = { type: 'boolean' };
  }
  const { tokens } = parseArgs({
    args: [...argv],
    options: parseOptions,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const result: ParsedFlags = { given: [], help: false, version: false };
  /** argv indexes taken as the value of a preceding true|false flag. */
  const consumed = new Set<number>();
  for (const token of tokens) {
    if (consumed.has(token.index)) continue;
    if (token.kind === 'positional') throw new FlagError('unexpected-argument', token.value);
    if (token.kind === 'option-terminator') throw new FlagError('unknown-flag', '');
    const raw = argv[token.index] ?? '';
    if (!token.rawName.startsWith('--') && !(options.builtins && token.rawName === '-h'))
      throw new FlagError('unexpected-argument', raw);
    const { name } = token;
    if (options.builtins && (name === 'help' || name === 'version') && !token.inlineValue) {
      result[name] = true;
      continue;
    }
    const spec = known.get(name);
    if (!spec) throw new FlagError('unknown-flag', name);
    let value = token.value;
    if (spec.boolean && !token.inlineValue) {
      const next = argv[token.index + 1];
      if (next === undefined || next.startsWith('--')) value = 'true';
      else {
        value = next;
        consumed.add(token.index + 1);
      }
    } else if (value === undefined || (!token.inlineValue && value.startsWith('--') && value.length > 2)) {
      throw new FlagError('missing-value', name);
    }
    options.onFlag?.(name, value ?? '');
    result.given.push({ name, value: value ?? '' });
  }
  return result;
}

/** The values of each flag given on the command line, in order. */
export function valuesByFlag(given: ParsedFlags['given']): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { name, value } of given) out.set(name, [...(out.get(name) ?? []), value]);
  return out;
}

/**
 * The environment fallback: for each flag whose `RIPPLECACHE_<FLAG>` is set and not empty, its value; a
 * repeatable flag's is split at commas (entries trimmed, empty ones dropped).
 */
export function envValues(env: Readonly<Record<string, string | undefined>>, specs: readonly FlagSpec[]) {
  const out = new Map<string, string[]>();
  for (const spec of specs) {
    const raw = env[envName(spec.name)];
    if (raw === undefined || raw === '') continue;
    out.set(
      spec.name,
      spec.repeatable
        ? raw
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [raw],
    );
  }
  return out;
}
