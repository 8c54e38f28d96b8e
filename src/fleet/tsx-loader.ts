import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { driverMissing } from '../errors.ts';

/**
 * The URL of tsx for `node --import`, which a TypeScript app's clones run with. tsx is an optional peer of
 * clones, so it is looked for where the app can have it: in each of `dirs` in order (the release first, as
 * the app's own dependency ships with it; then the app's source directory), then next to clones itself.
 * Throws CLONES_DRIVER_MISSING naming `npm install tsx` when none has it.
 *
 * @example
 *   const args = ['--import', tsxLoader('server.ts', [release.dir, manifest.source]), 'server.ts'];
 */
export function tsxLoader(entry: string, dirs: readonly string[]): string {
  const requires = [
    ...dirs.map((dir) => createRequire(join(dir, 'package.json'))),
    createRequire(import.meta.url),
  ];
  for (const require of requires) {
    try {
      return pathToFileURL(require.resolve('tsx')).href;
    } catch {
      // Not there: try the next place.
    }
  }
  // A regular dependency, not -D: releases leave dev packages out, so a dev tsx would not reach other hosts.
  throw driverMissing('tsx', `running the TypeScript app ${entry}`);
}
