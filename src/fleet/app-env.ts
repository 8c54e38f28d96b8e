import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badAppEnv } from '../errors.ts';

/** The app's own fleet config file, next to its package.json. */
export const APP_CONFIG = 'clones.json';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Keys of clones.json that configure the fleet, not the release: hosts (host-config.ts), health-path.ts. */
const FLEET_KEYS = new Set(['hosts', 'ssh', 'healthPath']);
/** Set by the fleet for every clone, so a release cannot declare them. */
const RESERVED = new Set(['PORT', 'HOST', 'SESSION_STORE', 'SESSION_SECRET']);
/** Names that hold credentials: a release is a readable directory and its env is in its manifest. */
const SECRET = /(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIALS?)(_|$)/i;

/**
 * The environment a release declares, which becomes part of its digest and of every clone's environment:
 * the `env` object of the app's `clones.json`, then `extra` (the `--env KEY=VALUE` flags) over it. Keys are
 * sorted, so the same declarations give the same digest. Secrets (SESSION_SECRET, `*_PASSWORD`, `*_TOKEN`,
 * ...) and the variables the fleet sets itself are refused: secrets reach clones through the environment
 * of `clones up`, never through a release. Every problem is reported at once (CLONES_FLEET_APP_ENV).
 *
 * @example
 *   // clones.json: { "env": { "GREETING": "hello", "CART_LIMIT": 20 } }
 *   appEnv('examples/shop', { FEATURE_X: 'on' }); // { CART_LIMIT: '20', FEATURE_X: 'on', GREETING: 'hello' }
 */
export function appEnv(appDir: string, extra: Record<string, string> = {}): Record<string, string> {
  const errors: string[] = [];
  const declared: Record<string, string> = {};
  const file = join(appDir, APP_CONFIG);
  if (existsSync(file)) {
    let config: unknown;
    try {
      config = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw badAppEnv(appDir, [`${APP_CONFIG}: ${(err as Error).message}`]);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config))
      throw badAppEnv(appDir, [`${APP_CONFIG}: must be a JSON object`]);
    for (const [key, value] of Object.entries(config)) {
      if (FLEET_KEYS.has(key)) continue; // read by hostsConfig and appHealthPath, not part of the env
      if (key !== 'env') errors.push(`${APP_CONFIG} ${key}: unknown option`);
      else if (value === null || typeof value !== 'object' || Array.isArray(value))
        errors.push(`${APP_CONFIG} env: must be an object of NAME: value`);
      else {
        for (const [name, v] of Object.entries(value)) {
          if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
            declared[name] = String(v);
          else errors.push(`${APP_CONFIG} env.${name}: must be a string, number or boolean`);
        }
      }
    }
  }
  const where = (name: string) =>
    Object.hasOwn(extra, name) ? `--env ${name}` : `${APP_CONFIG} env.${name}`;
  const env = { ...declared, ...extra };
  for (const name of Object.keys(env)) {
    if (!NAME.test(name)) errors.push(`${where(name)}: not a valid variable name`);
    else if (RESERVED.has(name) || name.startsWith('CLONES_'))
      errors.push(`${where(name)}: set by the fleet for every clone; a release cannot declare it`);
    else if (SECRET.test(name))
      errors.push(
        `${where(name)}: looks like a secret; secrets are not put in releases, give it to the environment of "clones up"`,
      );
  }
  if (errors.length > 0) throw badAppEnv(appDir, errors);
  return Object.fromEntries(
    Object.keys(env)
      .sort()
      .map((name) => [name, env[name]!]),
  );
}
