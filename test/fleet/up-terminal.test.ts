// `clones up` on a terminal shows human lines only: no JSON line through up, a canary deploy, scale, kill -9 of
// a clone and a rollback, each of which it reports (issue 14).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliAsync, get, startUpOnTerminal, status, tempApp, touchApp, type Up } from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;

before(async () => {
  up = await startUpOnTerminal(dir, ['--clones', '2', '--drain-timeout', '2s', '--ready-timeout', '10s']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

/** The terminal's lines, without colours and cursor moves. */
const lines = () =>
  up
    .output()
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter(Boolean);

/** Waits until the terminal shows a line matching `re` (the fleet prints asynchronously). */
async function shows(re: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!lines().some((l) => re.test(l))) {
    if (Date.now() > deadline) assert.fail(`the terminal never showed ${what}:\n${lines().join('\n')}`);
    await sleep(100);
  }
}

test('up, canary deploy, scale, kill -9, rollback: each reported in human lines, not one JSON line', async () => {
  assert.equal((await get(up.port, '/up')).status, 200);
  const first = status(dir).release;

  touchApp(app, 'terminal canary');
  const canary = await cliAsync(dir, [
    'deploy',
    'shop',
    '--strategy',
    'canary',
    '--steps',
    '50,100',
    '--step-wait',
    '1s',
  ]);
  assert.equal(canary.code, 0, canary.stderr);
  const second = status(dir).release;
  assert.notEqual(second, first);
  await shows(/canary/i, 'the canary deploy');

  const scale = await cliAsync(dir, ['scale', '3']);
  assert.equal(scale.code, 0, scale.stderr);
  await shows(/scale/i, 'the scale');

  const victim = status(dir).clones.find((c) => c.state === 'serving')!;
  process.kill(victim.pid!, 'SIGKILL');
  await shows(new RegExp(`${victim.id}\\b.*(exit|crash|kill|restart)`, 'i'), `clone ${victim.id} dying`);

  const rollback = await cliAsync(dir, ['rollback']);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.equal(status(dir).release, first);
  await shows(/roll(ed)? ?back/i, 'the rollback');

  const json = lines().filter((l) => l.startsWith('{') || l.startsWith('['));
  assert.deepEqual(json, [], `JSON lines on the terminal:\n${lines().join('\n')}`);
});
