import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, cliAsync, load, startUp, status, tempApp, touchApp, type Up } from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;

before(async () => {
  up = await startUp(dir, ['--clones', '3', '--drain-timeout', '5s']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

test('rolling deploy of 3 clones under 30 s of load: 0 failed requests, 0 of 10,000 later responses old', async () => {
  const old = status(dir).release;
  const traffic = load(up.port, '/up', 4);
  const started = Date.now();
  await sleep(3000);
  touchApp(app, 'v2');
  const deploy = await cliAsync(dir, ['deploy', 'shop', '--strategy', 'rolling', '--json']);
  const returned = Date.now();
  assert.equal(deploy.code, 0, deploy.stderr);
  const events = deploy.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const done = events.find((e) => e.type === 'done');
  assert.ok(done, 'a done event');
  // Surge style: each new clone serves before an old one drains.
  const order = events.filter((e) => e.type === 'clone' && (e.state === 'serving' || e.state === 'draining'));
  assert.deepEqual(
    order.map((e) => e.state),
    ['serving', 'draining', 'serving', 'draining', 'serving', 'draining'],
  );
  while (Date.now() - started < 30_000 || traffic.samples.filter((s) => s.at > returned).length < 10_000) {
    await sleep(250);
  }
  await traffic.stop();
  const after = traffic.samples.filter((s) => s.at > returned).slice(0, 10_000);
  assert.equal(after.length, 10_000);
  assert.equal(after.filter((s) => s.release === old).length, 0);
  assert.ok(after.every((s) => s.release === done.release));
  assert.deepEqual(traffic.failures, []);
  assert.ok(traffic.samples.some((s) => s.release === old && s.at < returned));
  const s = status(dir);
  assert.equal(s.release, done.release);
  assert.ok(s.clones.every((c) => c.release === done.release));
  assert.deepEqual(s.guard, [done.release]);
});

test('a killed deploy leaves no lock behind: the fleet rolls back and the next deploy runs', async () => {
  const before = status(dir).release;
  touchApp(app, 'v3');
  const doomed = cliAsync(dir, ['deploy', 'shop']);
  await sleep(1200);
  doomed.child.kill('SIGKILL');
  await doomed;
  let again = cli(dir, ['deploy', 'shop', '--json']);
  for (let i = 0; i < 40 && again.code !== 0 && again.stderr.includes('CLONES_FLEET_LOCKED'); i++) {
    await sleep(500);
    again = cli(dir, ['deploy', 'shop', '--json']);
  }
  assert.equal(again.code, 0, again.stderr);
  const s = status(dir);
  assert.notEqual(s.release, before);
  assert.ok(s.clones.every((c) => c.release === s.release));
});
