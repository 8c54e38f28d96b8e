// clones logs: size-based rotation of the files the supervisor writes (copy and truncate, under a real
// writer holding the file open), reading across rotated files with --since, the release filter and -f
// against a real `clones up`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { lineTime, readLogLines } from '../../src/fleet/log-reader.ts';
import { logRotationOptions, rotateLog, startLogRotation } from '../../src/fleet/log-rotation.ts';
import { cli, cliAsync, startUp, status, tempApp, type Up, useSources } from './fleet-harness.ts';

useSources();
const tmp = mkdtempSync(join(tmpdir(), 'clones-logs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('rotation: copy and truncate under a writer that holds the file open; only `keep` files are kept', async () => {
  const file = join(tmp, 'c1.log');
  // A real writer with the log as its stdout, like a detached clone: it writes a numbered line every 2 ms.
  const writer = spawn(
    process.execPath,
    [
      '-e',
      "let i = 0; setInterval(() => process.stdout.write('line ' + i++ + ' ' + 'x'.repeat(200) + '\\n'), 2)",
    ],
    { stdio: ['ignore', openSync(file, 'a'), 'ignore'] },
  );
  try {
    const o = logRotationOptions({ maxBytes: 4096, keep: 2 });
    let rotations = 0;
    const deadline = Date.now() + 20_000;
    while (rotations < 4 && Date.now() < deadline) {
      if (rotateLog(file, o)) rotations++;
      await sleep(20);
    }
    assert.equal(rotations, 4);
    assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`));
    assert.equal(existsSync(`${file}.3`), false, 'keep: 2');
    await sleep(100);
    // The writer went on at the start of the truncated file: no hole of zeros where the old content was.
    const now = readFileSync(file, 'utf8');
    assert.ok(statSync(file).size < 64 * 1024);
    assert.equal(now.includes('\0'), false);
    assert.match(now, /^line \d+ x+\n/);
    // Oldest first across the rotated files: the numbers only go up.
    const numbers = readLogLines(tmp, 'c1').map((l) => Number(/^line (\d+)/.exec(l.text)?.[1]));
    assert.ok(numbers.length > 20);
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => a - b),
    );
  } finally {
    writer.kill();
  }
  assert.throws(() => logRotationOptions({ keep: 0 }), { code: 'CLONES_INVALID_OPTION', message: /keep/ });
  // Every wrong option in one error, not the first only.
  assert.throws(() => logRotationOptions({ maxBytes: 10, keep: 1.5, everyMs: 0 }), {
    code: 'CLONES_INVALID_OPTION',
    message: /maxBytes[\s\S]*keep[\s\S]*everyMs/,
  });
});

test('the rotation timer rotates every big log in the directory', async () => {
  const dir = join(tmp, 'timer');
  mkdirSync(dir);
  writeFileSync(join(dir, 'c7.log'), 'y'.repeat(5000));
  writeFileSync(join(dir, 'c8.log'), 'small\n');
  const stop = startLogRotation(dir, { maxBytes: 1024, everyMs: 20 });
  try {
    for (let i = 0; i < 100 && !existsSync(join(dir, 'c7.log.1')); i++) await sleep(20);
    assert.equal(statSync(join(dir, 'c7.log')).size, 0);
    assert.equal(statSync(join(dir, 'c7.log.1')).size, 5000);
    assert.equal(existsSync(join(dir, 'c8.log.1')), false);
  } finally {
    stop();
  }
});

test('--since goes by the time a line carries; a line without one goes with the line before it', () => {
  const dir = join(tmp, 'since');
  mkdirSync(dir);
  const old = Date.now() - 3_600_000;
  const recent = Date.now() - 60_000;
  writeFileSync(
    join(dir, 'c2.log'),
    [
      JSON.stringify({ level: 30, time: old, msg: 'old' }),
      'old stack line',
      `${new Date(recent).toISOString()} recent`,
      'recent stack line',
    ].join('\n'),
  );
  assert.equal(lineTime(JSON.stringify({ time: new Date(old).toISOString() })), old);
  const lines = readLogLines(dir, 'c2', { since: Date.now() - 600_000 }).map((l) => l.text);
  assert.deepEqual(
    lines.map((l) => l.replace(/^\S+Z /, '')),
    ['recent', 'recent stack line'],
  );
  assert.equal(readLogLines(dir, 'c2', { lines: 1 })[0]?.text, 'recent stack line');
});

let app: ReturnType<typeof tempApp>;
let up: Up;
before(async () => {
  app = tempApp();
  up = await startUp(app.dir, ['--clones', '2']);
});
after(async () => {
  await up?.stop();
  app?.cleanup();
});

test('clones logs against a real fleet: by clone, by release, -f follows new lines, bad names are refused', async () => {
  const s = status(app.dir);
  const logs = join(app.dir, '.clones/logs');
  const [c1, c2] = s.clones.map((c) => c.id);
  // The clones' own output goes into these files; a marker line in each makes the answer checkable.
  appendFileSync(join(logs, `${c1}.log`), 'hello from the first\n');
  appendFileSync(join(logs, `${c2}.log`), 'hello from the second\n');
  const one = cli(app.dir, ['logs', c1!]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`^${c1} hello from the first$`, 'm'));
  assert.doesNotMatch(one.stdout, /the second/);
  const byRelease = cli(app.dir, ['logs', s.release.slice(0, 8)]);
  assert.equal(byRelease.code, 0, byRelease.stderr);
  assert.match(byRelease.stdout, /hello from the first/);
  assert.match(byRelease.stdout, /hello from the second/);
  const bad = cli(app.dir, ['logs', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /CLONES_USAGE/);
  assert.match(cli(app.dir, ['logs', '--since', 'soon']).stderr, /--since must be a duration/);

  const follow = cliAsync(app.dir, ['logs', '-f', '--lines', '1']);
  let seen = '';
  follow.child.stdout?.on('data', (c) => (seen += c));
  try {
    for (let i = 0; i < 100 && !seen.includes('hello from the second'); i++) await sleep(100);
    appendFileSync(join(logs, `${c2}.log`), 'a new line\n');
    for (let i = 0; i < 100 && !seen.includes('a new line'); i++) await sleep(100);
    assert.match(seen, new RegExp(`^${c2} a new line$`, 'm'));
  } finally {
    follow.child.kill('SIGINT');
  }
  assert.equal((await follow).code, 0);
});
