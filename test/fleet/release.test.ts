import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  buildRelease,
  fleetPaths,
  gcReleases,
  listReleases,
  readRelease,
  removeTree,
} from '../../src/fleet/index.ts';
import { repo } from './fleet-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-release-'));
after(() => removeTree(dir));

test('the same inputs give the same digest, wherever they are; a change gives a new one', () => {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  cpSync(join(repo, 'examples/shop'), a, { recursive: true });
  cpSync(join(repo, 'examples/shop'), b, { recursive: true });
  const paths = fleetPaths(join(dir, 'home1'));
  const first = buildRelease(a, paths);
  assert.equal(first.created, true);
  assert.match(first.digest, /^[0-9a-f]{64}$/);
  const again = buildRelease(a, paths);
  assert.equal(again.created, false);
  assert.equal(again.digest, first.digest);
  assert.equal(buildRelease(b, fleetPaths(join(dir, 'home2'))).digest, first.digest);
  writeFileSync(join(b, 'server.ts'), `${readFileSync(join(b, 'server.ts'), 'utf8')}\n// changed\n`);
  assert.notEqual(buildRelease(b, paths).digest, first.digest);
});

test('a release is read-only, names its entry, and resolves clones/session from inside', () => {
  const paths = fleetPaths(join(dir, 'home1'));
  const release = readRelease(paths, listReleases(paths).at(-1)!.digest.slice(0, 8));
  assert.equal(release.manifest.entry, 'server.ts');
  assert.equal(release.manifest.node, process.version);
  assert.equal(statSync(join(release.dir, 'server.ts')).mode & 0o222, 0);
  assert.equal(statSync(release.dir).mode & 0o222, 0);
  assert.ok(existsSync(join(release.dir, 'node_modules/clones/src/session/index.ts')));
});

test('a release answers to its shortest unique prefix of 4+ characters; an ambiguous one says so', () => {
  const paths = fleetPaths(join(dir, 'home1'));
  const digest = listReleases(paths).at(-1)!.digest;
  assert.equal(readRelease(paths, digest.slice(0, 4)).digest, digest);
  assert.throws(() => readRelease(paths, digest.slice(0, 3)), { code: 'CLONES_FLEET_UNKNOWN_RELEASE' });
  // Two releases sharing a prefix (directories named like digests, as the release store keeps them).
  const home = fleetPaths(join(dir, 'home-ambiguous'));
  for (const tail of ['1', '2'])
    mkdirSync(join(home.releases, `abcd${tail.repeat(60)}`), { recursive: true });
  assert.throws(
    () => readRelease(home, 'abcd'),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_FLEET_AMBIGUOUS_RELEASE');
      assert.match(err.message, /abcd11111111, abcd22222222/);
      return true;
    },
  );
});

test('a link out of the app is refused; a link inside is kept and the digest covers what it points to', () => {
  const paths = fleetPaths(join(dir, 'home-links'));
  const app = join(dir, 'links-app');
  cpSync(join(repo, 'examples/shop'), app, { recursive: true });
  writeFileSync(join(dir, 'secret'), 'the fleet admin token');
  symlinkSync('../secret', join(app, 'link'));
  assert.throws(
    () => buildRelease(app, paths),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_FLEET_LINK_OUTSIDE_APP');
      assert.match(err.message, /link -> \.\.\/secret points outside the app/);
      return true;
    },
  );
  rmSync(join(app, 'link'));
  symlinkSync('/etc/hostname', join(app, 'abs'));
  assert.throws(() => buildRelease(app, paths), { code: 'CLONES_FLEET_LINK_OUTSIDE_APP' });
  rmSync(join(app, 'abs'));
  writeFileSync(join(app, 'data.txt'), 'one');
  symlinkSync('data.txt', join(app, 'inside'));
  const first = buildRelease(app, paths);
  assert.equal(readFileSync(join(first.dir, 'inside'), 'utf8'), 'one');
  writeFileSync(join(app, 'data.txt'), 'two');
  assert.notEqual(buildRelease(app, paths).digest, first.digest);
});

test('bad app directories are refused with CLONES_FLEET_APP_DIR', () => {
  const paths = fleetPaths(join(dir, 'home3'));
  assert.throws(() => buildRelease(join(dir, 'missing'), paths), { code: 'CLONES_FLEET_APP_DIR' });
  const empty = mkdtempSync(join(dir, 'empty-'));
  assert.throws(() => buildRelease(empty, paths), { code: 'CLONES_FLEET_APP_DIR' });
  assert.throws(() => readRelease(paths, 'ffffff'), { code: 'CLONES_FLEET_UNKNOWN_RELEASE' });
});

test('gc keeps the newest 5 and every protected release', async () => {
  const paths = fleetPaths(join(dir, 'home4'));
  const app = join(dir, 'gc-app');
  cpSync(join(repo, 'examples/shop'), app, { recursive: true });
  const digests: string[] = [];
  for (let i = 0; i < 8; i++) {
    writeFileSync(join(app, 'version.txt'), String(i));
    digests.push(buildRelease(app, paths).digest);
    await new Promise((r) => setTimeout(r, 5)); // distinct build times
  }
  const removed = gcReleases(paths, 5, [digests[0]]);
  assert.deepEqual(new Set(removed), new Set([digests[1], digests[2]]));
  const left = new Set(listReleases(paths).map((r) => r.digest));
  assert.ok(left.has(digests[0]!));
  for (const d of digests.slice(3)) assert.ok(left.has(d));
});

/** An app with an installed tree: a production package, dev packages (one scoped, one nested) and a .bin link. */
function appWithModules(name: string): string {
  const app = join(dir, name);
  const file = (path: string, text: string) => {
    mkdirSync(join(app, path, '..'), { recursive: true });
    writeFileSync(join(app, path), text);
  };
  file('server.mjs', "import { word } from 'prod-pkg';\nconsole.log(word);\n");
  file('package.json', JSON.stringify({ name, main: 'server.mjs', dependencies: { 'prod-pkg': '1.0.0' } }));
  file(
    'package-lock.json',
    JSON.stringify({
      name,
      lockfileVersion: 3,
      packages: {
        '': { name, dependencies: { 'prod-pkg': '1.0.0' }, devDependencies: { 'dev-pkg': '1.0.0' } },
        'node_modules/prod-pkg': { version: '1.0.0' },
        'node_modules/prod-pkg/node_modules/helper': { version: '1.0.0' },
        'node_modules/dev-pkg': { version: '1.0.0', dev: true, bin: { devtool: 'cli.js' } },
        'node_modules/@scope/dev-types': { version: '1.0.0', dev: true },
        'node_modules/both': { version: '1.0.0', devOptional: true },
      },
    }),
  );
  file('node_modules/prod-pkg/package.json', '{"name":"prod-pkg","type":"module","main":"index.js"}');
  file('node_modules/prod-pkg/index.js', "export const word = 'prod';\n");
  file('node_modules/prod-pkg/node_modules/helper/index.js', '');
  file('node_modules/dev-pkg/package.json', '{"name":"dev-pkg"}');
  file('node_modules/dev-pkg/cli.js', '');
  file('node_modules/@scope/dev-types/index.d.ts', '');
  file('node_modules/both/index.js', '');
  file('node_modules/.package-lock.json', '{}');
  mkdirSync(join(app, 'node_modules/.bin'));
  symlinkSync('../dev-pkg/cli.js', join(app, 'node_modules/.bin/devtool'));
  symlinkSync('../both/index.js', join(app, 'node_modules/.bin/both'));
  return app;
}

test('dev-only packages (lockfile "dev": true) are pruned from the release, and do not count in the digest', () => {
  const paths = fleetPaths(join(dir, 'home5'));
  const app = appWithModules('pruned-app');
  const release = buildRelease(app, paths);
  const has = (path: string) => existsSync(join(release.dir, path));
  assert.ok(has('node_modules/prod-pkg/index.js'));
  assert.ok(has('node_modules/prod-pkg/node_modules/helper/index.js'));
  assert.ok(has('node_modules/both/index.js'), 'devOptional stays, as with npm --omit=dev');
  assert.ok(has('node_modules/.bin/both'));
  assert.ok(has('package-lock.json'));
  assert.equal(has('node_modules/dev-pkg'), false);
  assert.equal(has('node_modules/@scope/dev-types'), false);
  assert.equal(has('node_modules/.bin/devtool'), false, 'no link left dangling into a pruned package');
  assert.equal(has('node_modules/.package-lock.json'), false);
  assert.equal(release.manifest.devPackagesPruned, 2);
  // A change inside a pruned package is not a change of the release.
  writeFileSync(join(app, 'node_modules/dev-pkg/cli.js'), '// edited');
  assert.equal(buildRelease(app, paths).digest, release.digest);
  writeFileSync(join(app, 'node_modules/prod-pkg/index.js'), "export const word = 'changed';\n");
  assert.notEqual(buildRelease(app, paths).digest, release.digest);
});

test('the declared env (clones.json "env", then --env) is in the manifest and the digest; secrets are refused', () => {
  const paths = fleetPaths(join(dir, 'home6'));
  const app = join(dir, 'env-app');
  cpSync(join(repo, 'examples/shop'), app, { recursive: true });
  writeFileSync(join(app, 'clones.json'), JSON.stringify({ env: { GREETING: 'hello', LIMIT: 20 } }));
  const first = buildRelease(app, paths);
  assert.deepEqual(first.manifest.env, { GREETING: 'hello', LIMIT: '20' });
  assert.equal(buildRelease(app, paths).digest, first.digest, 'same declarations, same digest');
  const flagged = buildRelease(app, paths, { env: { GREETING: 'hi' } });
  assert.notEqual(flagged.digest, first.digest, 'a changed value is a new release');
  assert.deepEqual(flagged.manifest.env, { GREETING: 'hi', LIMIT: '20' });
  writeFileSync(join(app, 'clones.json'), JSON.stringify({ env: { GREETING: 'bonjour', LIMIT: 20 } }));
  assert.notEqual(buildRelease(app, paths).digest, first.digest);
  // The rest of clones.json configures the fleet, not the app: a host saved there is not a new release.
  writeFileSync(
    join(app, 'clones.json'),
    JSON.stringify({ env: { GREETING: 'hello', LIMIT: 20 }, hosts: [{ address: '198.18.0.9' }] }),
  );
  const fleetOnly = buildRelease(app, paths);
  assert.equal(fleetOnly.digest, first.digest, 'fleet settings in clones.json are not part of the release');
  assert.equal(existsSync(join(fleetOnly.dir, 'clones.json')), false);

  writeFileSync(
    join(app, 'clones.json'),
    JSON.stringify({
      env: { SESSION_SECRET: 'x'.repeat(40), DB_PASSWORD: 'p', PORT: 1, 'BAD-NAME': 'v' },
      envv: {},
    }),
  );
  assert.throws(
    () => buildRelease(app, paths, { env: { STRIPE_API_KEY: 'k' } }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_FLEET_APP_ENV');
      assert.match(err.message, /6 env error\(s\)/);
      for (const name of [
        'SESSION_SECRET',
        'DB_PASSWORD',
        'PORT',
        'BAD-NAME',
        'envv',
        '--env STRIPE_API_KEY',
      ])
        assert.ok(err.message.includes(name), `${name} in ${err.message}`);
      return true;
    },
  );
  assert.equal(
    listReleases(paths).some((r) => JSON.stringify(r.manifest).includes('x'.repeat(40))),
    false,
    'no release holds the secret',
  );
});
