import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { FleetPaths } from './fleet-paths.ts';
import { clonesRoot, readRelease, removeTree } from './release.ts';

/** What of the clones package a host needs (no tests, no benchmarks, no docs). */
const PACKAGE_PARTS = ['package.json', 'bin', 'src', 'dist'];

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * The installed packages clones needs at run time, as lockfile paths (`node_modules/pino`, nested ones too):
 * its dependencies and optional dependencies, plus the optional peers that are installed here (tsx runs the
 * CLI and TypeScript apps; ioredis, pg and the DynamoDB client are the session store drivers), and everything
 * those need, resolved the way Node does (nearest `node_modules` first, then up).
 *
 * @example
 *   runtimePackages(clonesRoot).has('node_modules/tsx'); // true when tsx is installed
 */
export function runtimePackages(root: string): Set<string> {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages = lock.packages;
  const out = new Set<string>();
  const resolveFrom = (from: string, name: string): string | undefined => {
    let dir = from;
    for (;;) {
      const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (!dir) return undefined;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const visit = (path: string, entry: LockEntry, withPeers: boolean) => {
    const names = {
      ...entry.dependencies,
      ...entry.optionalDependencies,
      ...(withPeers ? entry.peerDependencies : {}),
    };
    for (const name of Object.keys(names)) {
      const found = resolveFrom(path, name);
      if (!found || out.has(found) || !existsSync(join(root, found))) continue;
      out.add(found);
      visit(found, packages[found]!, false);
    }
  };
  visit('', packages['']!, true);
  return out;
}

/**
 * A directory holding exactly what a host's install of clones is made of: the package (bin, src, dist,
 * package.json) and its run-time `node_modules`, as hard links into this install (copies where linking
 * is refused). Made once per content; shipTree then sends a host only the blobs it lacks.
 *
 * @example
 *   const dir = stageInstall(paths); // .clones/ship/install-<random>
 *   await shipTree(ssh, host, dir, `${root}/installs/${digest}`);
 */
export function stageInstall(paths: FleetPaths): string {
  const root = clonesRoot.replace(/\/$/, '');
  // A new directory each time: a staging is hashed once and shipped as it was, whatever comes after it.
  const ship = join(paths.home, 'ship');
  const dir = join(ship, `install-${randomBytes(4).toString('hex')}`);
  const tmp = `${dir}.tmp`;
  // The package's own files are copied (a checkout may be edited while a host receives them); the
  // installed packages, which only npm changes, are hard-linked.
  for (const part of PACKAGE_PARTS)
    if (existsSync(join(root, part))) linkTree(join(root, part), join(tmp, part), undefined, '', true);
  for (const pkg of [...runtimePackages(root)].sort()) {
    // Nested packages are copied with their parent already; copy only each package's own files.
    linkTree(join(root, pkg), join(tmp, pkg), (name) => name !== 'node_modules');
  }
  mkdirSync(ship, { recursive: true });
  renameSync(tmp, dir);
  for (const name of readdirSync(ship)) {
    if (name.startsWith('install-') && join(ship, name) !== dir) removeTree(join(ship, name));
  }
  return dir;
}

/**
 * A release's directory as a host gets it: the same files, and `node_modules/clones` a relative link to the
 * host's own install (`<host dir>/clones`), not to this machine's.
 *
 * @example
 *   const dir = stageRelease(paths, digest); // .clones/ship/releases/<digest>
 */
export function stageRelease(paths: FleetPaths, digest: string): string {
  const release = readRelease(paths, digest);
  const dir = join(paths.home, 'ship', 'releases', release.digest);
  if (existsSync(join(dir, '.clones-release.json'))) return dir;
  const tmp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
  linkTree(release.dir, tmp, (name, rel) => !(rel === 'node_modules' && name === 'clones'));
  mkdirSync(join(tmp, 'node_modules'), { recursive: true });
  // <host dir>/releases/<digest>/node_modules/clones -> <host dir>/clones
  symlinkSync('../../../clones', join(tmp, 'node_modules', 'clones'));
  renameSync(tmp, dir);
  return dir;
}

/** Mirrors a tree with hard links (symlinks copied as links); `keep` filters names per directory. */
function linkTree(
  from: string,
  to: string,
  keep: (name: string, rel: string) => boolean = () => true,
  rel = '',
  copy = false,
): void {
  const st = lstatSync(from);
  if (st.isSymbolicLink()) {
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(readlinkSync(from), to);
  } else if (st.isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) {
      if (!keep(name, rel)) continue;
      linkTree(join(from, name), join(to, name), keep, rel ? `${rel}/${name}` : name, copy);
    }
  } else if (st.isFile()) {
    mkdirSync(dirname(to), { recursive: true });
    try {
      if (copy) copyFileSync(from, to);
      else linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
}
