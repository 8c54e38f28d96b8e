import { createRequire } from 'node:module';
import { ClonesError, driverBroken, driverMissing } from './errors.ts';

/** The optional packages a backend may need; each is loaded only by the backend that uses it. */
export type DriverPackage = 'ioredis' | 'pg' | '@aws-sdk/client-dynamodb' | 'better-sqlite3';

const require = createRequire(import.meta.url);

/** How to repair a native binding that did not build: said once, used by every SQLite backend. */
export const SQLITE_FIX =
  'run `npm rebuild better-sqlite3` (it needs python3, make and a C++ compiler, e.g. ' +
  '`apt-get install build-essential python3`), or choose another store (SESSION_STORE=redis://...)';

/**
 * Loads an optional driver package on first use, so an app that never uses a backend need not install its
 * driver. A missing package becomes CLONES_DRIVER_MISSING with the `npm install` command (as kysely dialects
 * and knex say it); a package that is present but cannot load (better-sqlite3 whose native binding failed to
 * build) becomes CLONES_DRIVER_BROKEN saying how to fix it.
 *
 * @example
 *   const { Pool } = requireDriver<typeof import('pg')>('pg', 'postgres:// session stores');
 */
export function requireDriver<T>(pkg: DriverPackage, usedFor: string): T {
  try {
    return require(pkg) as T;
  } catch (err) {
    throw driverLoadFailed(err, pkg, usedFor);
  }
}

/**
 * The coded error for a failed load of `pkg` (by `require` or `import()`): CLONES_DRIVER_MISSING when the
 * package itself cannot be found, CLONES_DRIVER_BROKEN when it is there but fails to load. Errors of other
 * modules pass through unchanged.
 *
 * @example
 *   await import('./redis-store.ts').catch((err) => { throw driverLoadFailed(err, 'ioredis', 'redis://'); });
 */
export function driverLoadFailed(err: unknown, pkg: DriverPackage, usedFor: string): unknown {
  if (err instanceof ClonesError) return err;
  const e = err as NodeJS.ErrnoException;
  const missing = e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND';
  // Only the package itself: a missing file deeper inside it is a broken install, not a missing driver.
  if (missing && (e.message.includes(`'${pkg}'`) || e.message.includes(`"${pkg}"`))) {
    return driverMissing(pkg, usedFor);
  }
  if (pkg === 'better-sqlite3' && (missing || e?.code === 'ERR_DLOPEN_FAILED' || isBindingError(e))) {
    return driverBroken(pkg, firstLine(e), SQLITE_FIX);
  }
  return err;
}

/** better-sqlite3 finds its binding through `bindings`, which throws a plain Error when nothing was built. */
function isBindingError(e: NodeJS.ErrnoException | undefined): boolean {
  return (
    typeof e?.message === 'string' && /bindings file|better_sqlite3\.node|NODE_MODULE_VERSION/.test(e.message)
  );
}

function firstLine(e: Error | undefined): string {
  return String(e?.message ?? e)
    .split('\n')[0]!
    .slice(0, 300);
}
