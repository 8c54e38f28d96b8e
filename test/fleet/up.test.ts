import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, get, isAlive, load, startUp, status, tempApp, type Up } from './fleet-harness.ts';

const { dir, cleanup } = tempApp();
let up: Up;

before(async () => {
  // A home that exists already with a loose mode is made private by clones up.
  mkdirSync(join(dir, '.clones'), { mode: 0o755 });
  chmodSync(join(dir, '.clones'), 0o755);
  up = await startUp(dir, ['--clones', '3', '--drain-timeout', '2s']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

test('clones up: 3 clones of one release behind the balancer, with secrets kept 0600', () => {
  const s = status(dir);
  assert.equal(s.clones.length, 3);
  assert.ok(
    s.clones.every((c) => c.release === s.release && c.state === 'serving' && c.health === 'healthy'),
    `every clone serving and healthy: ${JSON.stringify(s.clones.map(({ id, state, health, restarts, reason }) => ({ id, state, health, restarts, reason })))}`,
  );
  assert.deepEqual(s.guard, [s.release]);
  for (const file of ['admin-token', 'secret', '', 'desired.json', 'logs', 'logs/c1.log']) {
    assert.equal(statSync(join(dir, '.clones', file)).mode & 0o077, 0, file || 'the home');
  }
  const release = join(dir, '.clones/releases', s.release);
  for (const file of ['', 'server.ts']) assert.equal(statSync(join(release, file)).mode & 0o077, 0, file);
  assert.equal(readFileSync(join(dir, '.clones/admin-token'), 'utf8').trim().length >= 32, true);
  assert.ok(existsSync(join(dir, '.clones/releases', s.release)));
});

test('sessions are shared: log in on one clone, see it from the others; x-clones-clone varies', async () => {
  const login = await get(up.port, '/login', { method: 'POST', body: 'name=ada' });
  assert.equal(login.status, 303, login.body);
  assert.equal(statSync(join(dir, '.clones/sessions.db')).mode & 0o077, 0, 'sessions.db is private');
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const clones = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await get(up.port, '/api/session', { cookie });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).user, 'ada');
    clones.add(String(r.headers['x-clones-clone']));
    await get(up.port, '/counter', { method: 'POST', cookie });
  }
  assert.ok(clones.size >= 2, `responses came from ${[...clones].join(', ')}`);
  const final = JSON.parse((await get(up.port, '/api/session', { cookie })).body);
  assert.equal(final.counter, 12);
});

test('kill -9 of a clone under load: 0 failed requests, a replacement from the current release', async (t) => {
  const before = status(dir);
  const victim = before.clones[0]!;
  const traffic = load(up.port, '/up', 4);
  await sleep(500);
  const killedAt = Date.now();
  process.kill(victim.pid, 'SIGKILL');
  let replaced: (typeof before.clones)[number] | undefined;
  while (Date.now() - killedAt < 15_000) {
    replaced = status(dir).clones.find(
      (c) => c.id === victim.id && c.pid !== victim.pid && c.state === 'serving',
    );
    if (replaced) break;
    await sleep(100);
  }
  const readyIn = Date.now() - killedAt;
  await sleep(500);
  await traffic.stop();
  assert.ok(replaced, 'the clone was replaced');
  assert.equal(replaced.release, before.release);
  assert.equal(replaced.restarts, 1);
  assert.equal(typeof replaced.readyMs, 'number');
  // The time is a figure to report (the issue asks for 2 s), not an assertion: a busy CI machine stretches it.
  t.diagnostic(
    `replacement ready ${replaced.readyMs} ms after its process started; serving in status ${readyIn} ms after the kill`,
  );
  assert.deepEqual(traffic.failures, []);
  assert.ok(traffic.samples.length > 100);
});

test('clones scale: up to 4, down to 2, new clones from the desired release', () => {
  const r = cli(dir, ['scale', '4']);
  assert.equal(r.code, 0, r.stderr);
  let s = status(dir);
  assert.equal(s.clones.filter((c) => c.state === 'serving').length, 4);
  assert.ok(s.clones.every((c) => c.release === s.release));
  assert.equal(cli(dir, ['scale', '2']).code, 0);
  s = status(dir);
  assert.equal(s.clones.length, 2);
});

test('Ctrl-C (SIGTERM) stops gracefully: exit 0, every clone process gone, up.json removed', async () => {
  const pids = status(dir).clones.map((c) => c.pid);
  const code = await up.stop();
  assert.equal(code, 0, up.output());
  await sleep(100);
  for (const pid of pids) assert.equal(isAlive(pid), false, `clone ${pid} still alive`);
  assert.equal(existsSync(join(dir, '.clones/up.json')), false);
});
