import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
