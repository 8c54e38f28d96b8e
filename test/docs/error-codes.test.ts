// Every error code the code can throw is listed in docs/errors.md, and every code listed there exists.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

test('docs/errors.md lists every code src/ throws, and each code it lists is used', () => {
  const thrown = new Set<string>();
  const text = [...sources(join(repo, 'src')), join(repo, 'bin/clones.js')]
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  for (const m of text.matchAll(/new ClonesError\(\s*'(CLONES_[A-Z0-9_]+)'/g)) thrown.add(m[1]!);
  const documented = new Set(
    [...readFileSync(join(repo, 'docs/errors.md'), 'utf8').matchAll(/^\| `(CLONES_[A-Z0-9_]+)`/gm)].map(
      (m) => m[1]!,
    ),
  );
  assert.ok(thrown.size > 50, `found ${thrown.size} codes: the pattern still matches how errors are made`);
  assert.deepEqual(
    [...thrown].filter((c) => !documented.has(c)).sort(),
    [],
    'thrown but not in docs/errors.md',
  );
  // A listed code appears in the code (some are built by helpers from a table, or printed by bin/clones.js).
  const unused = [...documented].filter((c) => !new RegExp(`\\b${c}\\b`).test(text));
  assert.deepEqual(unused.sort(), [], 'in docs/errors.md but nowhere in src/ or bin/');
});
