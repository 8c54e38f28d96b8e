import { type ParseArgsConfig, parseArgs } from 'node:util';
import { usageError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every verb takes. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h' },
  home: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

/**
 * node:util parseArgs, strict, with its errors turned into CLONES_USAGE (exit code 2).
 *
 * @example
 *   const { values, positionals } = parse(argv, { port: { type: 'string' } });
 */
export function parse<O extends Options>(argv: string[], options: O) {
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

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration such as `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is seconds), in milliseconds.
 *
 * @example
 *   duration('--step-wait', '30s'); // 30000
 */
export function duration(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw usageError(`${flag} must be a duration such as 500ms, 30s, 5m, 1h; got "${value}"`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
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

/** Prints a fleet event: NDJSON with --json, else one short human line. */
export function printEvent(event: Record<string, unknown>, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(event)}\n`);
    return;
  }
  const short = (r: unknown) => (typeof r === 'string' ? r.slice(0, 12) : '');
  switch (event.type) {
    case 'release':
      console.log(`release ${short(event.release)} ${event.created ? 'built' : 'already built'}`);
      break;
    case 'deploy':
      console.log(`${event.action} ${short(event.from)} -> ${short(event.release)} (${event.strategy})`);
      break;
    case 'clone':
      console.log(
        `  ${String(event.clone).padEnd(5)} ${short(event.release)}  ${event.state}${event.port ? ` :${event.port}` : ''}${event.reason ? `  ${event.reason}` : ''}`,
      );
      break;
    case 'step':
      console.log(`  canary at ${event.weight}%, watching for ${Number(event.wait) / 1000} s`);
      break;
    case 'rollback':
      console.log(`failed: ${event.reason}\nrolling back to ${short(event.to)}`);
      break;
    case 'converged':
      console.log(`  converged on ${short(event.release)} (epoch ${event.epoch})`);
      break;
    case 'unchanged':
      console.log(`release ${short(event.release)} is already deployed; nothing to do`);
      break;
    case 'done':
      console.log(
        `done: ${short(event.release)}${event.ms !== undefined ? ` in ${(Number(event.ms) / 1000).toFixed(1)} s` : ''}`,
      );
      break;
    default:
      break;
  }
}
