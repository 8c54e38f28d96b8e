const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** How a duration is written, for messages: the command line and config files say the same. */
export const DURATION_EXAMPLES = '500ms, 30s, 5m, 1h';

/**
 * A duration such as `500ms`, `30s`, `5m`, `1h`, `7d`, in milliseconds, or undefined when `text` is not one.
 * A bare number is seconds, as on the command line; `unit: 'required'` refuses it (in a config file a number
 * already means milliseconds, so `"30"` would be a trap). The one parser of the CLI's flags and config files.
 *
 * @example
 *   parseDuration('30s'); // 30000
 *   parseDuration('1.5m'); // 90000
 *   parseDuration('30', { unit: 'required' }); // undefined
 */
export function parseDuration(text: string, options: { unit?: 'required' } = {}): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m || (m[2] === undefined && options.unit === 'required')) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}
