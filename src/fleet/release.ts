import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ambiguousRelease, badAppDir, linkOutsideApp, unknownRelease } from '../errors.ts';
import { appEnv } from './app-env.ts';
import { compileTypeScript, outputOf, typeScriptPlan } from './compile-release.ts';
import { devPackages, inPackages } from './dev-packages.ts';
import type { FleetPaths } from './fleet-paths.ts';

/** What `.clones-release.json` inside every release says about it. */
export interface ReleaseManifest {
  digest: string;
  /** The app's package.json name, or its directory name. */
  name: string;
  /** The app's entry file, relative to the release directory. */
  entry: string;
  /** The JavaScript compiled from a TypeScript entry at build, which clones run with plain Node; absent when
   * the app runs through tsx (a JavaScript app, or TypeScript that per-file compiling cannot follow). */
  run?: string;
  node: string;
  clones: string;
  files: number;
  /** The environment the release declares (clones.json `env`, then `--env`): every clone gets it. */
  env: Record<string, string>;
  /** Installed packages left out because the lockfile marks them dev-only. */
  devPackagesPruned: number;
  builtAt: string;
  source: string;
}

export interface BuildOptions {
  /** Variables declared on top of the app's `clones.json` `env` (the `--env KEY=VALUE` flags). */
  env?: Record<string, string>;
}

export interface Release {
  digest: string;
  dir: string;
  manifest: ReleaseManifest;
}

const MANIFEST = '.clones-release.json';
// clones.json configures the fleet (hosts, counts, balancer), not the app: editing it, or `clones hosts add`
// saving a host there, must not make a new release. Its `env`, which the app does see, is in the manifest.
const SKIP_TOP = new Set(['.clones', '.git', 'clones.json']);
const ENTRIES = [
  'server.ts',
  'server.js',
  'server.mjs',
  'index.ts',
  'index.js',
  'index.mjs',
  'app.ts',
  'app.js',
];

/** The installed clones package: releases link to it as `node_modules/clones`. */
export const clonesRoot = fileURLToPath(new URL('../../', import.meta.url));

function clonesVersion(): string {
  return (JSON.parse(readFileSync(join(clonesRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Builds the release of an app directory: an immutable, content-addressed bundle under
 * `releases/<sha256>/`, made read-only. The digest covers every file's path, executable bit and content
 * (the app's own `node_modules` included, minus `clones` and minus the packages the lockfile marks
 * dev-only), the declared environment (see `appEnv`), the Node version and the clones version, and
 * nothing else (no mtimes, no absolute paths), so the same inputs give the same digest on any host.
 *
 * The clones package is linked, not copied, as `node_modules/clones`: it is the runtime the release runs
 * on, like Node itself, and is named in the digest by its version. That keeps releases small and lets
 * `import 'clones/session'` resolve from inside the release whatever the app's own dependencies are.
 *
 * @example
 *   const release = buildRelease('examples/shop', fleetPaths());
 *   console.log(release.digest, release.dir);
 */
export function buildRelease(
  appDir: string,
  paths: FleetPaths,
  options: BuildOptions = {},
): Release & { created: boolean } {
  const source = resolve(appDir);
  if (!existsSync(source) || !statSync(source).isDirectory()) throw badAppDir(appDir, 'not a directory');
  const dev = devPackages(source);
  const { files, pruned } = listFiles(source, dev);
  const entry = findEntry(source);
  const env = appEnv(source, options.env);
  // A TypeScript app compiled now runs on plain Node (see compile-release.ts); the compiler is an input.
  const plan = existsSync(join(clonesRoot, 'dist/session/index.js'))
    ? typeScriptPlan(source, entry, files)
    : { why: 'clones is not built' };
  const hash = createHash('sha256');
  hash.update(`clones-release v3\nnode ${process.version}\nclones ${clonesVersion()}\nentry ${entry}\n`);
  if (plan.esbuild) hash.update(`compile esbuild ${plan.esbuild.version}\n`);
  for (const [name, value] of Object.entries(env)) hash.update(`env ${name}=${JSON.stringify(value)}\n`);
  for (const file of files) {
    const full = join(source, file);
    const st = lstatSync(full);
    if (st.isSymbolicLink()) {
      // The link stays a link, and the digest covers what it points to (inside the app, checked above).
      const target = statSync(full, { throwIfNoEntry: false });
      const sum = target?.isFile() ? createHash('sha256').update(readFileSync(full)).digest('hex') : '-';
      hash.update(`l ${file} ${readlinkSync(full)} ${sum}\n`);
    } else {
      const sum = createHash('sha256').update(readFileSync(full)).digest('hex');
      hash.update(`f ${st.mode & 0o111 ? 'x' : '-'} ${sum} ${file}\n`);
    }
  }
  const digest = hash.digest('hex');
  const dir = join(paths.releases, digest);
  if (existsSync(join(dir, MANIFEST))) return { ...readRelease(paths, digest), created: false };

  mkdirSync(paths.releases, { recursive: true });
  const tmp = join(paths.releases, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    for (const file of files) {
      const from = join(source, file);
      const to = join(tmp, file);
      mkdirSync(dirname(to), { recursive: true });
      if (lstatSync(from).isSymbolicLink()) symlinkSync(readlinkSync(from), to);
      else copyFileSync(from, to);
    }
    const run = plan.esbuild && compileTypeScript(tmp, files, plan.esbuild) ? outputOf(entry) : undefined;
    mkdirSync(join(tmp, 'node_modules'), { recursive: true });
    symlinkSync(clonesRoot.replace(/\/$/, ''), join(tmp, 'node_modules', 'clones'), 'dir');
    const pkg = readPackage(source);
    const manifest: ReleaseManifest = {
      digest,
      name: typeof pkg?.name === 'string' ? pkg.name : source.split('/').pop()!,
      entry,
      ...(run ? { run } : {}),
      node: process.version,
      clones: clonesVersion(),
      files: files.length,
      env,
      devPackagesPruned: pruned,
      builtAt: new Date().toISOString(),
      source,
    };
    writeFileSync(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    makeReadOnly(tmp);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another build of the same inputs won the rename: same digest, same content.
      if (!existsSync(join(dir, MANIFEST))) throw err;
      removeTree(tmp);
    }
  } catch (err) {
    if (existsSync(tmp)) removeTree(tmp);
    throw err;
  }
  return { ...readRelease(paths, digest), created: true };
}

/**
 * Reads a built release by digest, or by a prefix of at least 4 characters that names one release (as git
 * takes short ids): `clones rollback cf94` works when `releases` lists `cf94bac57a8b`. An ambiguous prefix
 * says which releases it matches.
 *
 * @example
 *   const { dir, manifest } = readRelease(fleetPaths(), '3f2a');
 */
export function readRelease(paths: FleetPaths, id: string): Release {
  let digest = id;
  if (!/^[0-9a-f]{64}$/.test(id)) {
    const matches = /^[0-9a-f]{4,63}$/.test(id) ? listDigests(paths).filter((d) => d.startsWith(id)) : [];
    if (matches.length > 1) throw ambiguousRelease(id, matches);
    if (matches.length !== 1) throw unknownRelease(id);
    digest = matches[0]!;
  }
  const dir = join(paths.releases, digest);
  let manifest: ReleaseManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as ReleaseManifest;
  } catch {
    throw unknownRelease(id);
  }
  return { digest, dir, manifest };
}

/**
 * Every built release, newest build first.
 *
 * @example
 *   for (const r of listReleases(fleetPaths())) console.log(r.digest.slice(0, 12), r.manifest.builtAt);
 */
export function listReleases(paths: FleetPaths): Release[] {
  const out: Release[] = [];
  for (const digest of listDigests(paths)) {
    try {
      out.push(readRelease(paths, digest));
    } catch {
      // A half-removed release dir: not a release.
    }
  }
  return out.sort((a, b) => b.manifest.builtAt.localeCompare(a.manifest.builtAt));
}

/**
 * Keeps the newest `keep` releases and every protected one (current, previous, pinned canary); removes
 * the rest. Returns the removed digests.
 *
 * @example
 *   gcReleases(paths, 5, [desired.release, previous]);
 */
export function gcReleases(paths: FleetPaths, keep: number, protect: Iterable<string | undefined>): string[] {
  const keepSet = new Set([...protect].filter((d): d is string => typeof d === 'string'));
  const removed: string[] = [];
  listReleases(paths).forEach((release, index) => {
    if (index < keep || keepSet.has(release.digest)) return;
    removeTree(release.dir);
    removed.push(release.digest);
  });
  return removed;
}

/** Removes a read-only tree: directories get their write bit back first (needed when not root). */
export function removeTree(dir: string): void {
  const unlock = (path: string) => {
    const st = lstatSync(path);
    if (!st.isDirectory()) return;
    chmodSync(path, 0o700);
    for (const name of readdirSync(path)) unlock(join(path, name));
  };
  if (existsSync(dir)) unlock(dir);
  rmSync(dir, { recursive: true, force: true });
}

function listDigests(paths: FleetPaths): string[] {
  if (!existsSync(paths.releases)) return [];
  return readdirSync(paths.releases).filter((name) => /^[0-9a-f]{64}$/.test(name));
}

function readPackage(dir: string): Record<string, unknown> | undefined {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    throw badAppDir(dir, 'package.json is not valid JSON');
  }
}

function findEntry(dir: string): string {
  const main = readPackage(dir)?.main;
  if (typeof main === 'string') {
    if (!existsSync(join(dir, main))) throw badAppDir(dir, `package.json "main" (${main}) does not exist`);
    return relative(dir, join(dir, main));
  }
  const found = ENTRIES.find((name) => existsSync(join(dir, name)));
  if (!found)
    throw badAppDir(dir, `no entry file: set "main" in package.json or add one of ${ENTRIES.join(', ')}`);
  return found;
}

const SKIP_PATHS = new Set([
  'node_modules/clones',
  'node_modules/.cache',
  // npm's cache of the installed tree: it names the pruned dev packages too, and npm rebuilds it at will.
  'node_modules/.package-lock.json',
]);

/**
 * Sorted relative paths of every file and symlink that goes into the release, and how many installed dev
 * packages were left out. `.clones`, `.git`, `node_modules/clones`, the dev packages and links into them
 * (`node_modules/.bin/tsc`) are left out.
 */
function listFiles(root: string, dev: ReadonlySet<string>): { files: string[]; pruned: number } {
  const out: string[] = [];
  let pruned = 0;
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (!rel && SKIP_TOP.has(name)) continue;
      if (SKIP_PATHS.has(path)) continue;
      if (dev.has(path)) {
        pruned++;
        continue;
      }
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) walk(path);
      else if (st.isSymbolicLink()) {
        const link = readlinkSync(join(root, path));
        const target = posix.normalize(posix.join(rel, link));
        // A link out of the app would ship whatever it points at on the building machine (the fleet's own
        // secrets, say), and the digest would cover only the link's text.
        if (posix.isAbsolute(link) || target === '..' || target.startsWith('../'))
          throw linkOutsideApp(root, path, link);
        if (!inPackages(target, dev)) out.push(path);
      } else if (st.isFile()) out.push(path);
    }
  };
  walk('');
  return { files: out, pruned };
}

function makeReadOnly(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) makeReadOnly(join(path, name));
    chmodSync(path, 0o500);
  } else chmodSync(path, st.mode & 0o111 ? 0o500 : 0o400);
}
