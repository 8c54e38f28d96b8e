// The package as a user gets it: `npm pack`, installed from the tarball into a fresh app with no network
// (npm --offline, from the cache that installing this project filled), then a JavaScript app, a TypeScript
// app (tsx and tsc), `npx clones` and `clones up` of a TypeScript app, with and without tsx.
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { removeTree } from '../../src/fleet/release.ts';
import { freePort } from '../harness/free-port.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = join(repo, 'test/package/fixtures');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

type LockEntry = Record<string, unknown> & {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, CLONES_LOG_LEVEL: 'error' },
  });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * The app's lockfile: the entries of this project's lockfile that `roots` need, so that npm --offline
 * installs exactly the versions `npm ci` put in the cache (a fresh resolution could pick a newer version
 * the cache lacks). npm recomputes the dev/optional flags itself.
 */
function appLock(roots: Record<string, string>, dev: Record<string, string>): object {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages: Record<string, LockEntry> = {
    '': { name: 'pack-app', dependencies: { ...roots }, devDependencies: { ...dev } },
  };
  const find = (from: string, name: string): string | undefined => {
    for (let at = from; ; at = at.replace(/\/?node_modules\/(@[^/]+\/)?[^/]+$/, '')) {
      const loc = `${at ? `${at}/` : ''}node_modules/${name}`;
      if (lock.packages[loc]) return loc;
      if (!at) return undefined;
    }
  };
  const visit = (from: string, names: string[]) => {
    for (const name of names) {
      const loc = find(from, name);
      if (!loc || packages[loc]) continue;
      const { dev: _d, devOptional: _o, peer: _p, ...entry } = lock.packages[loc] as LockEntry;
      packages[loc] = entry;
      const optionalPeers = Object.entries(entry.peerDependenciesMeta ?? {})
        .filter(([, m]) => m.optional)
        .map(([n]) => n);
      visit(loc, [
        ...Object.keys(entry.dependencies ?? {}),
        ...Object.keys(entry.optionalDependencies ?? {}),
        ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.includes(n)),
      ]);
    }
  };
  visit('', [...Object.keys(roots).filter((n) => n !== 'clones'), ...Object.keys(dev)]);
  return { name: 'pack-app', lockfileVersion: 3, requires: true, packages };
}

describe('npm pack, installed offline into a fresh app', { concurrency: false }, () => {
  let dir = '';
  let app = '';
  let files: string[] = [];
  const clones = () => join(app, 'node_modules/.bin/clones');

  before(() => {
    assert.ok(
      existsSync(join(repo, 'dist/cli/main.js')),
      'dist/ is not built: run "npm run build" (npm test does it first)',
    );
    dir = mkdtempSync(join(tmpdir(), 'clones-pack-'));
    // --ignore-scripts: npm test built dist/ already, and rebuilding it here would rewrite files that other
    // tests running at the same time import. `npm pack` alone runs "prepare", which builds it.
    const packed = JSON.parse(
      ok(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], repo), 'npm pack'),
    ) as { filename: string; files: { path: string }[] }[];
    const tarball = packed[0]!.filename;
    files = packed[0]!.files.map((f) => f.path);

    app = join(dir, 'app');
    mkdirSync(app);
    const roots = { clones: `file:../${tarball}`, ...pkg.dependencies, ...pkg.optionalDependencies };
    const dev = {
      tsx: pkg.devDependencies.tsx,
      typescript: pkg.devDependencies.typescript,
      '@types/node': pkg.devDependencies['@types/node'],
    };
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'pack-app',
        private: true,
        type: 'module',
        dependencies: { clones: roots.clones },
        devDependencies: dev,
      }),
    );
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(appLock(roots, dev), null, 2));
    ok(
      run('npm', ['install', '--offline', '--no-audit', '--no-fund'], app, 300_000),
      'npm install --offline of the tarball',
    );
    // The SQLite binding is native; npm skips its build script unless the app allows it (npm 11's
    // allowScripts). Take this project's build of the same locked version instead of compiling it again.
    const binding = 'node_modules/better-sqlite3/build';
    assert.ok(existsSync(join(app, 'node_modules/better-sqlite3/package.json')), 'better-sqlite3 installed');
    cpSync(join(repo, binding), join(app, binding), { recursive: true });
    for (const name of ['app.mjs', 'app.ts']) cpSync(join(fixtures, name), join(app, name));
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['app.ts'],
      }),
    );
  });

  after(() => {
    if (dir) removeTree(dir);
  });

  test('the tarball ships dist, bin, docs and the sources, and no tests, benches or CI', () => {
    for (const path of [
      'package.json',
      'README.md',
      'bin/clones.js',
      'dist/cli/main.js',
      'dist/session/index.js',
      'dist/session/index.d.ts',
      'dist/balancer/index.js',
      'dist/data/index.js',
      'dist/fleet/index.js',
      'src/session/index.ts',
      'src/errors.ts',
      'docs/errors.md',
    ])
      assert.ok(files.includes(path), `${path} is in the tarball`);
    const extra = files.filter((f) => /^(test|bench|\.ci|scripts|examples|node_modules)\//.test(f));
    assert.deepEqual(extra, []);
  });

  test('installs without the drivers: ioredis, pg, the AWS SDK and tsx are optional peers', () => {
    for (const name of ['ioredis', 'pg', '@aws-sdk/client-dynamodb', 'clones/node_modules/tsx'])
      assert.equal(existsSync(join(app, 'node_modules', name)), false, `${name} is not installed`);
    assert.ok(existsSync(join(app, 'node_modules/better-sqlite3')), 'better-sqlite3 is installed by default');
  });

  const expected = { counts: ['1', '2'], clone: 'c1', answer: 42, paths: 'string' };

  test('a JavaScript app imports every entry point from dist/', () => {
    const out = ok(run(process.execPath, ['app.mjs'], app), 'node app.mjs');
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), expected);
  });

  test('a TypeScript app runs with tsx, on dist/ and on the shipped sources, and type-checks', () => {
    for (const args of [
      ['--import', 'tsx', 'app.ts'],
      ['--conditions=clones-source', '--import', 'tsx', 'app.ts'],
    ]) {
      const out = ok(run(process.execPath, args, app), `node ${args.join(' ')}`);
      assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), expected);
    }
    const tsc = join(app, 'node_modules/typescript/bin/tsc');
    ok(run(process.execPath, [tsc, '-p', 'tsconfig.json'], app), 'tsc -p tsconfig.json');
  });

  test('npx clones runs the compiled CLI', () => {
    const help = ok(run('npx', ['--offline', 'clones', '--help'], app), 'npx clones --help');
    assert.match(help, /Usage: clones <command>/);
    const version = ok(run('npx', ['--offline', 'clones', '--version'], app), 'npx clones --version');
    assert.equal(version.trim(), pkg.version);
  });

  test('clones up runs a TypeScript app with the app’s tsx; without tsx it names the install command', async () => {
    const site = join(app, 'site');
    mkdirSync(site);
    cpSync(join(fixtures, 'server.ts'), join(site, 'server.ts'));
    writeFileSync(
      join(site, 'package.json'),
      JSON.stringify({ name: 'site', private: true, type: 'module', main: 'server.ts' }),
    );
    const port = await freePort();
    const up = spawn(clones(), ['up', 'site', '--clones', '1', '--port', String(port)], {
      cwd: app,
      env: { ...process.env, CLONES_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    up.stdout.on('data', (c) => (output += c));
    up.stderr.on('data', (c) => (output += c));
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes('clones up: http') && up.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /clones up: http/, `clones up did not start:\n${output}`);
      const first = await fetch(`http://127.0.0.1:${port}/`);
      const cookie = first.headers.get('set-cookie')?.split(';')[0] ?? '';
      assert.match(await first.text(), /^visit 1 from c\d+$/);
      const second = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie } });
      assert.match(await second.text(), /^visit 2 from c\d+$/);
    } finally {
      up.kill('SIGTERM');
      const timer = setTimeout(() => up.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }

    rmSync(join(app, 'node_modules/tsx'), { recursive: true, force: true });
    rmSync(join(app, 'node_modules/.bin/tsx'), { force: true });
    const again = run(clones(), ['up', 'site', '--clones', '1', '--port', String(await freePort())], app);
    assert.equal(again.status, 1, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stderr, /CLONES_DRIVER_MISSING/);
    assert.match(again.stderr, /npm install tsx/);
  });
});
