import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badAppDir } from '../errors.ts';

/**
 * The installed packages a release leaves out: the `packages` entries of the app's lockfile
 * (`npm-shrinkwrap.json`, else `package-lock.json`, lockfileVersion 2 or 3) marked `"dev": true`, as
 * paths such as `node_modules/typescript` or `node_modules/a/node_modules/b`. Read from the lockfile
 * only: no npm, no network, so the same lockfile and tree always prune the same way. `devOptional`
 * packages stay (an optional dependency of a production package needs them, as `npm ci --omit=dev`
 * keeps them). No lockfile, or a version 1 lockfile: nothing is pruned.
 *
 * @example
 *   devPackages('examples/shop').has('node_modules/typescript'); // true when it is a dev dependency
 */
export function devPackages(appDir: string): Set<string> {
  const file = ['npm-shrinkwrap.json', 'package-lock.json']
    .map((name) => join(appDir, name))
    .find((path) => existsSync(path));
  if (!file) return new Set();
  let lock: { lockfileVersion?: unknown; packages?: unknown };
  try {
    lock = JSON.parse(readFileSync(file, 'utf8')) as typeof lock;
  } catch (err) {
    throw badAppDir(appDir, `${file} is not valid JSON: ${(err as Error).message}`);
  }
  const packages = lock?.packages;
  if (typeof lock?.lockfileVersion !== 'number' || lock.lockfileVersion < 2) return new Set();
  if (packages === null || typeof packages !== 'object') return new Set();
  const dev = new Set<string>();
  for (const [path, entry] of Object.entries(packages as Record<string, { dev?: unknown }>)) {
    if (path.startsWith('node_modules/') && entry?.dev === true) dev.add(path);
  }
  return dev;
}

/**
 * Whether a path inside the app (`node_modules/x/lib/a.js`) lies in one of the `pruned` package dirs.
 *
 * @example
 *   inPackages('node_modules/@types/node/index.d.ts', new Set(['node_modules/@types/node'])); // true
 */
export function inPackages(path: string, pruned: ReadonlySet<string>): boolean {
  if (pruned.size === 0) return false;
  const parts = path.split('/');
  for (let i = 2; i <= parts.length; i++) if (pruned.has(parts.slice(0, i).join('/'))) return true;
  return false;
}
