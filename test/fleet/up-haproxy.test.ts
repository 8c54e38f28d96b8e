// `clones up --balancer haproxy`: the example shop behind the HAProxy engine, deployed under load (issue 13).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliAsync, load, startUp, status, tempApp, touchApp, type Up } from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;
let traffic: ReturnType<typeof load>;

before(async () => {
  up = await startUp(dir, [
    '--clones',
    '3',
    '--balancer',
    'haproxy',
    '--drain-timeout',
    '3s',
    '--ready-timeout',
    '10s',
  ]);
  traffic = load(up.port, '/up', 3);
});
after(async () => {
  await traffic?.stop();
  await up?.stop();
  cleanup();
});

for (const strategy of ['rolling', 'blue-green'] as const) {
  test(`HAProxy engine, ${strategy} deploy under load: 0 failed requests, 0 old-release answers after it returns`, async () => {
    const old = status(dir).release;
    touchApp(app, `haproxy ${strategy}`);
    const sent = traffic.samples.length;
    const r = await cliAsync(dir, ['deploy', 'shop', '--strategy', strategy, '--json']);
    const returned = Date.now();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(traffic.samples.length - sent > 100, 'traffic ran during the deploy');
    await sleep(1000);
    const later = traffic.samples.filter((s) => s.at > returned);
    assert.ok(later.length > 100, `${later.length} answers after the deploy returned`);
    assert.equal(later.filter((s) => s.release === old).length, 0, 'no answer from the old release');
    assert.deepEqual(traffic.failures, []);
    const s = status(dir);
    assert.notEqual(s.release, old);
    assert.ok(s.clones.every((c) => c.release === s.release && c.state === 'serving'));
  });
}
