import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DURATION_EXAMPLES, parseDuration } from '../duration.ts';
import { usageError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every verb takes. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h' },
  home: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

// Spelled out so that the compiled .d.ts can name it (node:util does not export parseArgs's result type).
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{
    args: string[];
    options: typeof commonOptions & O;
    allowPositionals: true;
    strict: true;
  }>
>;

/**
 * node:util parseArgs, strict, with its errors turned into CLONES_USAGE (exit code 2).
 *
 * @example
 *   const { values, positionals } = parse(argv, { port: { type: 'string' } });
 */
export function parse<O extends Options>(argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({
      args: argv,
      options: { ...commonOptions, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
}

/**
 * A whole number within bounds, or CLONES_USAGE naming the flag.
 *
 * @example
 *   const clones = int('--clones', values.clones, 1, 256) ?? 3;
 */
export function int(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw usageError(`${flag} must be a whole number from ${min} to ${max}; got "${value}"`);
  return n;
}

/**
 * A duration such as `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is seconds), in milliseconds.
 *
 * @example
 *   duration('--step-wait', '30s'); // 30000
 */
export function duration(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined)
    throw usageError(`${flag} must be a duration such as ${DURATION_EXAMPLES}; got "${value}"`);
  return ms;
}

/**
 * A duration (as `duration`) that must lie within `min`..`max` ms, or CLONES_USAGE naming the flag.
 *
 * @example
 *   durationWithin('--sticky', '1h', 1000, 7 * 86_400_000); // 3600000
 */
export function durationWithin(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  const ms = duration(flag, value);
  if (ms !== undefined && (ms < min || ms > max))
    throw usageError(`${flag} must be from ${min / 1000} s to ${max / 86_400_000} days; got "${value}"`);
  return ms;
}

/**
 * Repeated `--env KEY=VALUE` flags as an object (the value may be empty or hold `=`).
 *
 * @example
 *   envFlags(['GREETING=hi', 'EMPTY=']); // { GREETING: 'hi', EMPTY: '' }
 */
export function envFlags(list: readonly string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw usageError(`--env must be KEY=VALUE; got "${item}"`);
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

/**
 * One of a fixed set of words.
 *
 * @example
 *   const strategy = oneOf('--strategy', values.strategy, ['rolling', 'blue-green', 'canary']);
 */
export function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T))
    throw usageError(`${flag} must be one of ${allowed.join(', ')}; got "${value}"`);
  return value as T;
}

/** At most `n` positional arguments. */
export function positionals(list: string[], n: number, usage: string): string[] {
  if (list.length > n) throw usageError(`unexpected argument "${list[n]}"; usage: ${usage}`);
  return list;
}
