// The package ships docs/ and README.md; its users have neither the design notes nor the issue tracker, so
// the docs must not send them there.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const INTERNAL = /\.\.\/shared|\breferences\/|\bissue #?\d+|issue-\d+|DESIGN\.md/gi;

test('docs and README cite no internal file (design notes, references/, issue numbers)', () => {
  const files = [
    'README.md',
    ...readdirSync(join(repo, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const found: string[] = [];
  for (const file of files) {
    readFileSync(join(repo, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const m of line.matchAll(INTERNAL)) found.push(`${file}:${i + 1}: ${m[0]}`);
      });
  }
  assert.deepEqual(found, []);
});
