// docs/errors.md lists exactly the codes of ERROR_CODES (the union ErrorCode that ClonesError takes), each one
// is raised somewhere, and every code src/ throws is listed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ClonesError, ERROR_CODES } from '../../src/errors.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const documented = [
  ...readFileSync(join(repo, 'docs/errors.md'), 'utf8').matchAll(/^\| `(CLONES_[A-Z0-9_]+)`/gm),
].map((m) => m[1]!);

test('docs/errors.md lists exactly the codes of ERROR_CODES, once each', () => {
  assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'a code listed twice in ERROR_CODES');
});

test('docs/errors.md lists every code src/ throws, and each code it lists is used', () => {
  const thrown = new Set<string>();
  // Where codes are raised: the code (less the list itself), bin/clones.js, and the test harness.
  const text = [
    ...sources(join(repo, 'src')).filter((file) => !file.endsWith(join('errors', 'codes.ts'))),
    ...sources(join(repo, 'test/harness')),
    join(repo, 'bin/clones.js'),
  ]
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  for (const m of text.matchAll(/new ClonesError\(\s*'(CLONES_[A-Z0-9_]+)'/g)) thrown.add(m[1]!);
  assert.ok(thrown.size > 50, `found ${thrown.size} codes: the pattern still matches how errors are made`);
  assert.deepEqual(
    [...thrown].filter((c) => !documented.includes(c)).sort(),
    [],
    'thrown but not in docs/errors.md',
  );
  // A listed code appears where errors are made (some are built by helpers from a table, or printed by bin/clones.js).
  const unused = documented.filter((c) => !new RegExp(`\\b${c}\\b`).test(text));
  assert.deepEqual(unused.sort(), [], 'in docs/errors.md but raised nowhere in src/, bin/ or test/harness/');
});

test('a code outside ERROR_CODES does not compile (tsc checks the @ts-expect-error below)', () => {
  // @ts-expect-error: CLONES_NO_SUCH_CODE is not an ErrorCode
  const e = new ClonesError('CLONES_NO_SUCH_CODE', 'a typo');
  assert.equal(e.code, 'CLONES_NO_SUCH_CODE');
});
