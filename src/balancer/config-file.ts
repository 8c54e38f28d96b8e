import { DURATION_EXAMPLES, parseDuration } from '../duration.ts';
import type { OptionIssues } from '../option-issues.ts';
import { type BalancerOptions, balancerDefaults } from './options.ts';

/**
 * The options a config file may give as a duration (`"30s"`, `"5m"`, `"1h"`) as well as a number in their
 * unit: milliseconds, except `hsts.maxAge`, which HSTS counts in seconds.
 *
 * @example
 *   DURATION_OPTIONS['healthCheck.interval']; // 'ms'
 */
export const DURATION_OPTIONS: Readonly<Record<string, 'ms' | 's'>> = Object.freeze({
  'healthCheck.interval': 'ms',
  'healthCheck.timeout': 'ms',
  'healthCheck.transitionInterval': 'ms',
  'passive.baseEjection': 'ms',
  'passive.maxEjection': 'ms',
  'upstream.timeout': 'ms',
  'upstream.idleTimeout': 'ms',
  'upstream.queueTimeout': 'ms',
  'sticky.duration': 'ms',
  'groupStickiness.duration': 'ms',
  'drain.deadline': 'ms',
  slowStart: 'ms',
  'server.keepAliveTimeout': 'ms',
  'server.headersTimeout': 'ms',
  'server.requestTimeout': 'ms',
  'server.bodyTimeout': 'ms',
  'server.bodyIdleTimeout': 'ms',
  'tls.reloadDebounce': 'ms',
  'tls.ticketKeyRotation': 'ms',
  'http2.resetWindow': 'ms',
  'hsts.maxAge': 's',
});

/** What a balancer config file holds: the options of docs/balancer.md, and where to listen. */
export interface BalancerFileConfig extends BalancerOptions {
  port?: number;
  host?: string;
}

/** Keys a file may have besides the shape of `balancerDefaults`, with their JSON type. */
const TOP_LEVEL_EXTRA: Record<string, string> = {
  port: 'number',
  host: 'string',
  targets: 'array',
  groups: 'object',
};

/**
 * Checks a parsed JSON or YAML config file against the shape of `balancerDefaults`: unknown keys and wrong
 * types anywhere go to `issues`, each with its path, and are left out of what is returned (so the value rules
 * of `resolveOptions`, run next on the same `issues`, do not report them twice). Durations may be written as
 * on the command line (`"30s"`); they come back in the option's unit.
 *
 * @example
 *   const issues = new OptionIssues();
 *   const options = checkBalancerConfig({ healthCheck: { interval: '2s' } }, issues); // interval: 2000
 *   resolveOptions(options, issues);
 *   issues.throwIfAny('--config lb.yaml');
 */
export function checkBalancerConfig(
  value: Record<string, unknown>,
  issues: OptionIssues,
): BalancerFileConfig {
  return walk(
    value,
    balancerDefaults as unknown as Record<string, unknown>,
    '',
    issues,
  ) as BalancerFileConfig;
}

function walk(
  obj: Record<string, unknown>,
  shape: Record<string, unknown>,
  path: string,
  issues: OptionIssues,
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    const where = path ? `${path}.${key}` : key;
    const extra = path === '' ? TOP_LEVEL_EXTRA[key] : undefined;
    if (extra) {
      if (extra === 'array' ? !Array.isArray(v) : typeof v !== extra)
        issues.add(where, `must be ${extra === 'array' ? 'an array' : `a ${extra}`}`);
      else kept[key] = v;
      continue;
    }
    if (where === 'sticky.secret') {
      kept[key] = v;
      continue;
    }
    if (!Object.hasOwn(shape, key)) {
      issues.add(where, 'unknown option');
      continue;
    }
    const d = shape[key];
    const unit = DURATION_OPTIONS[where];
    if (Array.isArray(d)) {
      if (!Array.isArray(v)) issues.add(where, 'must be an array');
      else kept[key] = v;
    } else if (d !== null && typeof d === 'object') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) issues.add(where, 'must be an object');
      else kept[key] = walk(v as Record<string, unknown>, d as Record<string, unknown>, where, issues);
    } else if (unit !== undefined && typeof v === 'string') {
      const ms = parseDuration(v, { unit: 'required' });
      if (ms === undefined)
        issues.add(
          where,
          `must be a number (${unit === 'ms' ? 'milliseconds' : 'seconds'}) or a duration such as ${DURATION_EXAMPLES}; got ${JSON.stringify(v)}`,
        );
      else kept[key] = unit === 'ms' ? ms : ms / 1000;
    } else if (d !== undefined && typeof v !== typeof d)
      issues.add(where, `must be a ${typeof d}, got ${JSON.stringify(v)}`);
    else kept[key] = v;
  }
  return kept;
}
