// The canary's way out: a release that answers 500 on a route the stable release serves with 200, under
// load on that route. The balancer's 5xx counts must stop the deploy, which rolls back by itself.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readHistory } from '../../src/fleet/desired-state.ts';
import { cli, cliAsync, load, startUp, status, tempApp, type Up } from './fleet-harness.ts';

const { dir, app, cleanup } = tempApp();
let up: Up;

/** Gives the shop a GET /price route answering `code`: 200 in the stable release, 500 in the bad one. */
function priceRoute(code: number): void {
  const file = join(app, 'server.ts');
  const text = readFileSync(file, 'utf8').replace(/\n {4}if \(route === 'GET \/price'\)[^\n]*/, '');
  const anchor = "    if (route === 'GET /up')";
  assert.ok(text.includes(anchor));
  writeFileSync(
    file,
    text.replace(
      anchor,
      `    if (route === 'GET /price') return send(res, ${code}, 'text/plain', '${code}');\n${anchor}`,
    ),
  );
}

before(async () => {
  priceRoute(200);
  up = await startUp(dir, ['--clones', '3', '--drain-timeout', '2s', '--ready-timeout', '10s']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

test('a canary answering 500 where stable answers 200: abort, roll back by itself, exit 1, no canary clone left', async (t) => {
  const stable = status(dir).release;
  const traffic = load(up.port, '/price', 3);
  await sleep(300);
  priceRoute(500);
  const started = Date.now();
  // Long steps: only a breach can end this deploy within the test's time.
  const deploy = await cliAsync(dir, [
    'deploy',
    'shop',
    '--strategy',
    'canary',
    '--steps',
    '20,50,100',
    '--step-wait',
    '60s',
  ]);
  const returned = Date.now();
  t.diagnostic(`deploy aborted after ${returned - started} ms`);
  assert.equal(deploy.code, 1, deploy.stderr);
  assert.match(deploy.stderr, /CLONES_FLEET_DEPLOY_FAILED/);
  assert.match(
    deploy.stderr,
    /canary failed: 5xx rate \d+(\.\d)?% \(\d+\/\d+\) exceeds the stable group's 0\.0%/,
  );
  assert.match(deploy.stderr, new RegExp(`rolled back to ${stable.slice(0, 12)}`));

  // Responses from after the return: stable release only, all 200.
  const mark = traffic.samples.length;
  await sleep(1000);
  await traffic.stop();
  const later = traffic.samples.slice(mark).filter((s) => s.at > returned);
  assert.ok(later.length > 50, `${later.length} responses after the deploy returned`);
  assert.ok(
    later.every((s) => s.status === 200 && s.release === stable),
    'only the stable release answers',
  );
  // The canary did get traffic, and the only failures users saw were its 500s: none from the rollout itself.
  const canary = traffic.samples.find((s) => s.release !== stable && s.release !== '')?.release;
  assert.ok(canary, 'the canary served some requests');
  const failed = traffic.samples.filter((s) => s.status !== 200);
  assert.ok(failed.length > 0);
  assert.ok(
    failed.every((s) => s.status === 500 && s.release === canary),
    `failures other than the canary's 500s: ${JSON.stringify(failed.filter((s) => s.status !== 500).slice(0, 3))}`,
  );

  const s = status(dir);
  assert.equal(s.release, stable);
  assert.equal(s.clones.length, 3);
  assert.ok(s.clones.every((c) => c.release === stable && c.state === 'serving'));
  assert.deepEqual(s.guard, [stable]);
  assert.equal((s as { canary?: unknown }).canary, null);
  const releases = JSON.parse(cli(dir, ['releases', '--json']).stdout).releases as {
    release: string;
    current: boolean;
    canary: boolean;
  }[];
  assert.ok(!releases.some((r) => r.canary), 'no release pinned as canary');
  assert.equal(releases.find((r) => r.current)?.release, stable);
  const last = readHistory(join(dir, '.clones/history.json')).at(-1);
  assert.equal(last?.release, canary);
  assert.equal(last?.outcome, 'failed');
  assert.match(last?.reason ?? '', /^canary failed: 5xx rate/);
});
