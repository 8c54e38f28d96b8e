// A TypeScript app compiled once at release build runs on plain Node; apps that per-file compiling cannot
// follow keep running through tsx.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fleetPaths } from '../../src/fleet/fleet-paths.ts';
import { buildRelease, removeTree } from '../../src/fleet/release.ts';

const root = mkdtempSync(join(tmpdir(), 'clones-compile-'));
after(() => removeTree(root));
let n = 0;

/** An app from `files` (path -> text), built into a release of its own home. */
function build(files: Record<string, string>) {
  const app = join(root, `app-${++n}`);
  for (const [file, text] of Object.entries({ 'package.json': '{"type":"module"}', ...files })) {
    mkdirSync(dirname(join(app, file)), { recursive: true });
    writeFileSync(join(app, file), text);
  }
  return buildRelease(app, fleetPaths(join(app, '.home')));
}

const run = (dir: string, file: string) =>
  spawnSync(process.execPath, ['--enable-source-maps', join(dir, file)], { cwd: dir, encoding: 'utf8' });

test('an ES module TypeScript app is compiled: relative .ts imports followed, run by plain node', () => {
  const r = build({
    'server.ts': [
      "import { twice } from './lib/twice.ts';",
      "import type { N } from './lib/twice.ts';",
      'const n: N = 21;',
      "const { label } = await import('./lib/label.ts');",
      'console.log(label, twice(n));',
    ].join('\n'),
    'lib/twice.ts': 'export type N = number;\nexport const twice = (n: N): N => n * 2;\n',
    'lib/label.ts': "export const label: string = 'answer';\n",
  });
  assert.equal(r.manifest.run, 'server.js');
  for (const file of ['server.js', 'lib/twice.js', 'lib/label.js'])
    assert.ok(existsSync(join(r.dir, file)), file);
  const out = run(r.dir, r.manifest.run!);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout.trim(), 'answer 42');
});

test("a compiled clone's stack trace names the .ts file and line", () => {
  const r = build({
    'server.ts': "type T = { a: number };\nconst t: T = { a: 1 };\nthrow new Error('boom ' + t.a);\n",
  });
  assert.equal(r.manifest.run, 'server.js');
  const out = run(r.dir, r.manifest.run!);
  assert.notEqual(out.status, 0);
  assert.match(out.stderr, /boom 1/);
  assert.match(out.stderr, /server\.ts:3/, out.stderr);
});

test('apps that per-file compiling cannot follow run through tsx, unchanged', () => {
  const cases: [string, Record<string, string>][] = [
    ['a CommonJS package', { 'package.json': '{}', 'server.ts': 'console.log(1);\n' }],
    ['a .cts file', { 'server.ts': 'console.log(1);\n', 'old.cts': 'module.exports = 1;\n' }],
    [
      'an import() of a computed name',
      { 'server.ts': "const m = './x.ts';\nawait import(m);\n", 'x.ts': '' },
    ],
    [
      'require()',
      {
        'server.ts':
          "import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)('./x.ts');\n",
        'x.ts': '',
      },
    ],
    [
      'tsconfig paths',
      { 'server.ts': 'console.log(1);\n', 'tsconfig.json': '{"compilerOptions":{"paths":{"@/*":["./*"]}}}' },
    ],
    ['a .js beside its .ts', { 'server.ts': 'console.log(1);\n', 'lib.ts': '', 'lib.js': '' }],
  ];
  for (const [why, files] of cases) {
    const r = build(files);
    assert.equal(r.manifest.run, undefined, why);
    assert.equal(existsSync(join(r.dir, 'server.js')), false, why);
  }
});

test('a JavaScript app is not touched', () => {
  const r = build({ 'server.js': 'console.log(1);\n' });
  assert.equal(r.manifest.run, undefined);
});
