import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

// Every ```ts / ```typescript block of docs/*.md and README.md is type-checked with tsc as its own module,
// against the sources (`clones/*` resolves to src/ through tsconfig's paths). A block that is a fragment may
// be skipped by the line `<!-- ts-skip: <reason> -->` right above its fence; the reason is required.
const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const FENCE = /^```(ts|typescript)\s*$/;
const SKIP = /^<!--\s*ts-skip:\s*(\S.*?)\s*-->$/;

interface Block {
  doc: string;
  line: number;
  code: string;
}

async function blocks(): Promise<{ checked: Block[]; skipped: (Block & { reason: string })[] }> {
  const docs = (await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  const checked: Block[] = [];
  const skipped: (Block & { reason: string })[] = [];
  for (const doc of [...docs, 'README.md']) {
    const lines = (await readFile(join(root, doc), 'utf8')).split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!FENCE.test(lines[i]!)) continue;
      const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
      const block = { doc, line: i + 1, code: lines.slice(i + 1, end).join('\n') };
      const skip = SKIP.exec(lines[i - 1] ?? '');
      if (skip) skipped.push({ ...block, reason: skip[1]! });
      else checked.push(block);
      i = end;
    }
  }
  return { checked, skipped };
}

test('every TypeScript block in docs/ and README.md type-checks (skips are marked, with a reason)', async () => {
  const { checked, skipped } = await blocks();
  assert.ok(checked.length >= 3, 'the docs hold TypeScript blocks to check');
  const dir = await mkdtemp(join(root, '.doc-blocks-'));
  try {
    const files: string[] = [];
    const where = new Map<string, Block>();
    for (const [n, block] of checked.entries()) {
      const file = `${block.doc.replace(/[/.]/g, '_')}_${block.line}_${n}.ts`;
      files.push(file);
      where.set(file, block);
      // `export {}`: each block is a module of its own, so two blocks may declare the same name.
      await writeFile(join(dir, file), `${block.code}\nexport {};\n`);
    }
    // A `declare module` in a block changes the types of every file in its program: such blocks get a program
    // each, the others share one.
    const augmenting = files.filter((f) => /^declare module /m.test(where.get(f)!.code));
    const groups = [files.filter((f) => !augmenting.includes(f)), ...augmenting.map((f) => [f])];
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    let out = '';
    for (const [g, include] of groups.entries()) {
      if (include.length === 0) continue;
      const config = join(dir, `tsconfig.${g}.json`);
      await writeFile(
        config,
        JSON.stringify({ extends: '../tsconfig.json', include, compilerOptions: { noEmit: true } }),
      );
      out += await run(process.execPath, [tsc, '-p', config], { cwd: root }).then(
        () => '',
        (err: { stdout?: string }) => err.stdout ?? String(err),
      );
    }
    const errors = out
      .split('\n')
      .filter((l) => l.includes('error TS'))
      .map((l) => {
        const m = /([^/\s]+\.ts)\((\d+),\d+\): (.*)$/.exec(l);
        const block = m && where.get(m[1]!);
        return block ? `${block.doc}:${block.line + Number(m[2])} ${m[3]}` : l;
      });
    assert.deepEqual(errors, [], `blocks that do not compile:\n${errors.join('\n')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const s of skipped) assert.ok(s.reason.length > 5, `${s.doc}:${s.line} skips without a reason`);
});
