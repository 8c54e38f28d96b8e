import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badHealthPath } from '../errors.ts';
import { APP_CONFIG } from './app-env.ts';

/** The path a clone answers 200 on when ready, unless `--health-path` or clones.json `healthPath` says. */
export const DEFAULT_HEALTH_PATH = '/up';

// RFC 3986 path and query characters, less quotes and `$`: Node refuses a request line with spaces or
// control characters, and the HAProxy engine writes the path into its config, where `#` starts a comment and
// quotes or `$` would be parsed. Anything else is percent-encoded. A query string is fine (`/up?deep=1`).
const HEALTH_PATH = /^\/[A-Za-z0-9\-._~%!&()*+,;=:@/?]{0,1023}$/;

/**
 * `value` when it is a path a check can GET, else CLONES_FLEET_HEALTH_PATH naming `where` (the flag or key).
 *
 * @example
 *   checkHealthPath('--health-path', '/healthz'); // '/healthz'
 *   checkHealthPath('--health-path', 'healthz'); // throws CLONES_FLEET_HEALTH_PATH
 */
export function checkHealthPath(where: string, value: unknown): string {
  if (typeof value !== 'string' || !HEALTH_PATH.test(value)) throw badHealthPath(where, value);
  return value;
}

/**
 * The fleet's health path: `flag` (`--health-path`) when given, else the `healthPath` of the app's
 * clones.json, else `/up`. Both the supervisor's readiness gate and the balancer's checks GET it.
 *
 * @example
 *   // clones.json: { "healthPath": "/healthz" }
 *   appHealthPath('examples/shop'); // '/healthz'
 *   appHealthPath('examples/shop', '/ready'); // '/ready'
 */
export function appHealthPath(appDir: string, flag?: string): string {
  if (flag !== undefined) return checkHealthPath('--health-path', flag);
  const file = join(appDir, APP_CONFIG);
  if (!existsSync(file)) return DEFAULT_HEALTH_PATH;
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return DEFAULT_HEALTH_PATH; // appEnv reports a malformed clones.json when the release is built
  }
  const value = (config as { healthPath?: unknown } | null)?.healthPath;
  return value === undefined ? DEFAULT_HEALTH_PATH : checkHealthPath(`${APP_CONFIG} healthPath`, value);
}
