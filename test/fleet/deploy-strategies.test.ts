import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  breakApp,
  cli,
  cliAsync,
  get,
  load,
  startUp,
  status,
  tempApp,
  touchApp,
  type Up,
} from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;
let traffic: ReturnType<typeof load>;

before(async () => {
  up = await startUp(dir, ['--clones', '3', '--drain-timeout', '3s', '--ready-timeout', '8s']);
  traffic = load(up.port, '/up', 3);
});
after(async () => {
  await traffic?.stop();
  await up?.stop();
  cleanup();
});

function deployedRelease(stdout: string): string {
  const done = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((e) => e.type === 'done');
  assert.ok(done, stdout);
  return done.release;
}

test('blue-green under load: 0 failed requests, every clone on the new release when it returns', async () => {
  const old = status(dir).release;
  touchApp(app, 'blue-green');
  // cliAsync, not cli: spawnSync would block this process's event loop, and the load with it.
  const sent = traffic.samples.length;
  const r = await cliAsync(dir, ['deploy', 'shop', '--strategy', 'blue-green', '--json']);
  const returned = Date.now();
  assert.ok(traffic.samples.length - sent > 100, 'traffic ran during the deploy');
  assert.equal(r.code, 0, r.stderr);
  const release = deployedRelease(r.stdout);
  await sleep(1000);
  const later = traffic.samples.filter((s) => s.at > returned);
  assert.ok(later.length > 100);
  assert.equal(later.filter((s) => s.release === old).length, 0);
  assert.deepEqual(traffic.failures, []);
  assert.ok(status(dir).clones.every((c) => c.release === release));
});

test('canary under load with --sticky 1h: users who got the canary stay on it; promoted at 100 %', async () => {
  const stable = status(dir).release;
  touchApp(app, 'canary');
  const deploy = cliAsync(dir, [
    'deploy',
    'shop',
    '--strategy',
    'canary',
    '--steps',
    '50,100',
    '--step-wait',
    '4s',
    '--sticky',
    '1h',
    '--json',
  ]);
  let canary: string | undefined;
  for (let i = 0; i < 100 && !canary; i++) {
    await sleep(100);
    const s = status(dir);
    if (s.guard?.length === 2 && s.clones.some((c) => c.release !== stable && c.state === 'serving')) {
      canary = s.clones.find((c) => c.release !== stable)!.release;
    }
  }
  assert.ok(canary, 'the canary started');
  assert.equal(status(dir).groupStickiness, 3_600_000, "the running balancer took the deploy's --sticky");
  const groupCookies: string[] = [];
  // 20 users with cookie jars, 5 requests each, during the 50 % step.
  let canaryUsers = 0;
  for (let u = 0; u < 20; u++) {
    let cookie: string | undefined;
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await get(up.port, '/up', { cookie });
      assert.equal(r.status, 200);
      const set = r.headers['set-cookie'];
      if (set) cookie = String(set).split(';')[0];
      for (const c of set ?? []) if (c.startsWith('clones_group=')) groupCookies.push(c);
      seen.add(String(r.headers['x-clones-release']));
    }
    assert.equal(seen.size, 1, `user ${u} moved between releases: ${[...seen].join(', ')}`);
    if (seen.has(canary)) canaryUsers++;
  }
  assert.ok(canaryUsers > 0 && canaryUsers < 20, `${canaryUsers} of 20 users on the canary`);
  assert.ok(groupCookies.length >= 20, 'every user got a group cookie');
  for (const c of groupCookies) assert.match(c, /; Max-Age=3600;/);
  const done = await deploy;
  assert.equal(done.code, 0, done.stderr);
  assert.equal(deployedRelease(done.stdout), canary);
  assert.deepEqual(traffic.failures, []);
  const s = status(dir);
  assert.equal(s.clones.length, 3);
  assert.ok(s.clones.every((c) => c.release === canary));
});

test('a release whose /up never passes: deploy rolls back by itself, exits 1 with the reason, 0 failed requests', async () => {
  const good = status(dir).release;
  breakApp(app);
  const sent = traffic.samples.length;
  const r = await cliAsync(dir, ['deploy', 'shop']);
  assert.ok(traffic.samples.length - sent > 100, 'traffic ran during the deploy');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /CLONES_FLEET_DEPLOY_FAILED/);
  assert.match(r.stderr, /clone c\d+ was not ready within 8s: GET \/up answered 503 "ok"/);
  assert.match(r.stderr, /rolled back to/);
  const s = status(dir);
  assert.equal(s.release, good);
  assert.equal(s.clones.length, 3);
  assert.ok(s.clones.every((c) => c.release === good && c.state === 'serving'));
  assert.deepEqual(s.guard, [good]);
  assert.deepEqual(traffic.failures, []);
});

test('clones rollback goes back to the previous release; clones releases lists them', () => {
  const before = status(dir).release;
  const r = cli(dir, ['rollback', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = status(dir);
  assert.notEqual(s.release, before);
  assert.ok(s.clones.every((c) => c.release === s.release));
  const list = JSON.parse(cli(dir, ['releases', '--json']).stdout).releases as {
    release: string;
    current: boolean;
  }[];
  assert.ok(list.length >= 3);
  assert.equal(list.find((x) => x.current)?.release, s.release);
  assert.deepEqual(traffic.failures, []);
});
