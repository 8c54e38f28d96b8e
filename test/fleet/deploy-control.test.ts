// The operator's hand on a running fleet, through the CLI (the dashboard calls the same API): pause, resume
// and abort a canary deploy from another terminal, and drain one clone (a new one first, then the old one
// drains and stops), under load with 0 failed requests.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, deployCanary, load, startUp, status, tempApp, touchApp, type Up } from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;

before(async () => {
  up = await startUp(dir, ['--clones', '2', '--drain-timeout', '2s', '--ready-timeout', '20s']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

/** Polls `clones status` until `check` holds. */
async function until(what: string, check: (s: ReturnType<typeof status>) => boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = status(dir);
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}\n${JSON.stringify(s)}`);
    await sleep(200);
  }
}

type Deploying = { deploy?: { paused: boolean; strategy: string; release: string } | null };

test('nothing to pause, resume or abort: CLONES_FLEET_NO_DEPLOY, exit 1', () => {
  for (const flag of ['--pause', '--resume', '--abort']) {
    const r = cli(dir, ['deploy', flag]);
    assert.equal(r.code, 1, `${flag}: ${r.stderr}`);
    assert.match(r.stderr, /CLONES_FLEET_NO_DEPLOY/);
    assert.match(r.stderr, /no deploy is in progress/);
  }
  assert.equal(cli(dir, ['deploy', '--pause', '--abort']).code, 2, 'one of them at a time');
});

test('a paused canary holds its step past its wait; resumed, it finishes', async () => {
  const old = status(dir).release;
  touchApp(app, 'paused-canary');
  const traffic = load(up.port, '/up', 2);
  const deploy = deployCanary(dir, '50,100', '8s');
  await until(
    'the canary at its step',
    (s) =>
      (s as Deploying).deploy?.strategy === 'canary' &&
      s.clones.some((c) => c.release !== old && c.state === 'serving'),
  );
  const paused = cli(dir, ['deploy', '--pause']);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /paused/);
  assert.equal((status(dir) as Deploying).deploy?.paused, true);
  // Longer than the step's wait: a running canary would have been promoted by now.
  await sleep(10_000);
  const held = status(dir);
  assert.equal(held.release, old, 'still the stable release while paused');
  assert.equal((held as Deploying).deploy?.paused, true);
  assert.equal(deploy.child.exitCode, null, 'the deploy still runs');
  const resumed = cli(dir, ['deploy', '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const done = await deploy;
  await traffic.stop();
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /paused by an operator/);
  assert.match(done.stdout, /resumed/);
  const s = status(dir);
  assert.notEqual(s.release, old);
  assert.equal((s as Deploying).deploy, null);
  assert.ok(s.clones.every((c) => c.release === s.release));
  assert.deepEqual(traffic.failures, []);
});

test('an aborted canary rolls back: the deploy exits 1 saying an operator aborted it', async () => {
  const old = status(dir).release;
  touchApp(app, 'aborted-canary');
  const traffic = load(up.port, '/up', 2);
  const deploy = deployCanary(dir, '50,100', '60s');
  await until('the canary at its step', (s) =>
    s.clones.some((c) => c.release !== old && c.state === 'serving'),
  );
  const aborted = cli(dir, ['deploy', '--abort']);
  assert.equal(aborted.code, 0, aborted.stderr);
  assert.match(aborted.stdout, /aborted/);
  const done = await deploy;
  await traffic.stop();
  assert.equal(done.code, 1);
  assert.match(done.stderr, /CLONES_FLEET_DEPLOY_FAILED/);
  assert.match(done.stderr, /aborted by an operator/);
  const s = status(dir);
  assert.equal(s.release, old);
  assert.ok(
    s.clones.every((c) => c.release === old),
    'no canary clone left',
  );
  assert.deepEqual(traffic.failures, []);
});

test('drain a clone: a new one serves first, then the old one leaves; 0 failed requests', async () => {
  const before = status(dir);
  const victim = before.clones[0]!;
  const traffic = load(up.port, '/up', 4);
  const r = cli(dir, ['drain', victim.id]);
  await traffic.stop();
  assert.equal(r.code, 0, r.stderr);
  const after = status(dir);
  assert.equal(after.clones.length, before.clones.length);
  assert.ok(!after.clones.some((c) => c.id === victim.id), `${victim.id} is gone`);
  assert.ok(after.clones.every((c) => c.release === before.release && c.state === 'serving'));
  assert.deepEqual(traffic.failures, []);
  const unknown = cli(dir, ['drain', 'c99']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /CLONES_FLEET_UNKNOWN_CLONE/);
});
