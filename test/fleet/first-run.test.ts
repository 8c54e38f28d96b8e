// What a new user sees on a first run that goes wrong: an app that throws at start, the order of a canary's
// progress, the strategy `status` shows after a failed deploy. A small plain-JavaScript app (no tsx), so that
// each crash loop is quick.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { removeTree } from '../../src/fleet/release.ts';
import { cliAsync, startUp, type Up } from './fleet-harness.ts';

const GOOD = `import { createServer } from 'node:http';
createServer((req, res) => res.end(req.url === '/up' ? 'ok' : 'hello')).listen(Number(process.env.PORT), '127.0.0.1');
// version MARK
`;
const THROWS = `console.log('booting');
throw new Error('DATABASE_URL is not set');
`;

const dir = mkdtempSync(join(tmpdir(), 'clones-first-run-'));
const app = join(dir, 'shop');
const write = (text: string) => writeFileSync(join(app, 'server.mjs'), text);
let up: Up;

before(async () => {
  mkdirSync(app);
  write(GOOD.replace('MARK', '1'));
  up = await startUp(dir, ['--clones', '2', '--drain-timeout', '1s', '--ready-timeout', '10s']);
});
after(async () => {
  await up?.stop();
  removeTree(dir);
});

const count = (text: string, what: string) => text.split(what).length - 1;

test('clones up of an app that throws at start: the app error and its first stack line, once', async () => {
  const other = mkdtempSync(join(tmpdir(), 'clones-first-run-'));
  try {
    mkdirSync(join(other, 'shop'));
    writeFileSync(join(other, 'shop', 'server.mjs'), THROWS);
    const r = await cliAsync(other, ['up', 'shop', '--port', '0', '--clones', '1']);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 1, out);
    assert.match(r.stderr, /CLONES_FLEET_CLONE_FAILED/);
    assert.equal(count(out, 'Error: DATABASE_URL is not set'), 1, out);
    assert.equal(count(out, 'server.mjs:2'), 1, `the first stack line, once:\n${out}`);
    assert.doesNotMatch(out, /Node\.js v\d/, 'not the tail of the stack');
  } finally {
    removeTree(other);
  }
});

test('canary progress reads in order: the canary serves beside the stable release, then its step, then converged on it', async () => {
  const stable = (await cliAsync(dir, ['status', '--json'])).stdout;
  const from = (JSON.parse(stable) as { release: string }).release.slice(0, 12);
  write(GOOD.replace('MARK', '2'));
  const r = await cliAsync(dir, [
    'deploy',
    'shop',
    '--strategy',
    'canary',
    '--steps',
    '50',
    '--step-wait',
    '1s',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const to = /-> ([0-9a-f]{12})/.exec(r.stdout)?.[1];
  assert.ok(to, r.stdout);
  const lines = r.stdout.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.equal(
    at(new RegExp(`converged on ${from}`)),
    -1,
    `never "converged on" the old release:\n${r.stdout}`,
  );
  const beside = at(new RegExp(`canary ${to} serving beside ${from}`));
  const step = at(/canary at 50%/);
  const done = at(new RegExp(`converged on ${to}`));
  assert.ok(beside >= 0 && beside < step && step < done, r.stdout);
});

let failed: Awaited<ReturnType<typeof cliAsync>> | undefined;

test('a rolling deploy of an app that throws: the app error once, rolled back', async () => {
  write(THROWS);
  const r = await cliAsync(dir, ['deploy', 'shop']);
  failed = r;
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(r.stderr, /CLONES_FLEET_DEPLOY_FAILED/);
  assert.match(r.stderr, /rolled back to [0-9a-f]{12}/);
  assert.equal(count(out, 'Error: DATABASE_URL is not set'), 1, out);
  assert.equal(count(out, 'server.mjs:2'), 1, out);
  // The terminal of clones up, which gets no command error, shows it with the rollback. Which of the two
  // endings comes first depends on the machine: the crash loop is counted, or on a loaded one the ready
  // deadline falls while the last restart still boots; either names the clone and shows the app's error.
  assert.match(
    up.output(),
    /failed: clone c\d+ (failed|was not ready within)[^\n]*\n {2}Error: DATABASE_URL is not set\n/,
  );
});

test('status after that failed rolling deploy shows strategy rolling, not the canary before it', async () => {
  assert.equal(failed?.code, 1, 'the rolling deploy before failed');
  // The canary before it left a record with strategy canary; the record now current is this deploy's rollback.
  const s = await cliAsync(dir, ['status']);
  assert.match(s.stdout, /strategy rolling/, s.stdout);
});

test('Ctrl-C during a canary: exit 130, saying the deploy was cancelled and what the fleet runs', async () => {
  const from = (JSON.parse((await cliAsync(dir, ['status', '--json'])).stdout) as { release: string })
    .release;
  write(GOOD.replace('MARK', '3'));
  const deploy = cliAsync(dir, ['deploy', 'shop', '--strategy', 'canary', '--step-wait', '60s']);
  let out = '';
  deploy.child.stdout?.on('data', (c) => (out += c));
  const deadline = Date.now() + 60_000;
  while (!out.includes('canary at 10%') && Date.now() < deadline) await sleep(100);
  assert.match(out, /canary at 10%/);
  deploy.child.kill('SIGINT');
  const r = await deploy;
  assert.equal(r.code, 130, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `deploy cancelled \\(Ctrl-C\\): the fleet runs ${from.slice(0, 12)} \\(2 of 2 clones serving\\)`,
    ),
  );
  const s = JSON.parse((await cliAsync(dir, ['status', '--json'])).stdout) as {
    release: string;
    canary: unknown;
  };
  assert.equal(s.release, from);
  assert.equal(s.canary, null);
});
