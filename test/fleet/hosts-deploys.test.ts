// A fleet across 3 test hosts, 2 clones of examples/shop each, sessions in Redis on the cache host: setup,
// sessions across hosts, and rolling, blue-green and canary deploys under load.
import assert from 'node:assert/strict';
import { readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliAsync, get, load, touchApp } from './fleet-harness.ts';
import { events, hostsFleet } from './hosts-harness.ts';

const f = hostsFleet();
const { dir, app } = f;

f.test('up sets every host up over SSH and runs 2 clones on each; setup again changes nothing', async () => {
  const s = f.status();
  assert.equal(s.clones.length, 6);
  assert.deepEqual(
    s.hosts.map((h) => [h.name, h.inService, h.clones]),
    [
      ['h1', true, 2],
      ['h2', true, 2],
      ['h3', true, 2],
    ],
  );
  assert.ok(s.clones.every((c) => c.release === s.release && c.health === 'healthy'));
  // The release arrived over SSH: the host holds it in its own home, with the digest checked there.
  for (const h of f.hosts.hosts) {
    const r = await f.hosts.exec(h.name, [
      'cat',
      join(h.dir, 'clones/releases', s.release, '.clones-release.json'),
    ]);
    assert.equal(JSON.parse(r.stdout).digest, s.release);
    const link = await f.hosts.exec(h.name, [
      'readlink',
      join(h.dir, 'clones/releases', s.release, 'node_modules/clones'),
    ]);
    assert.equal(link.stdout.trim(), '../../../clones', 'the release links the host install');
    // Private on the host too: its clones directory, what the agent writes, the release and the install.
    const root = join(h.dir, 'clones');
    const release = join(root, 'releases', s.release);
    const install = readlinkSync(join(root, 'clones'));
    for (const file of [
      root,
      join(root, 'agent.pid'),
      join(root, 'desired.json'),
      join(root, 'logs'),
      join(root, 'logs/agent.log'),
      release,
      join(release, '.clones-release.json'),
      join(release, 'server.ts'),
      install,
      join(install, 'package.json'),
    ])
      assert.equal(statSync(file).mode & 0o077, 0, `${h.name}: ${file}`);
  }
  // Twice: the first may install a newer clones if this checkout changed since up (tests run in a live one).
  await cliAsync(dir, ['setup', 'shop']);
  const again = await cliAsync(dir, ['setup', 'shop']);
  // Both streams on failure: a fresh-clone CI run saw this exit 1 with nothing on stderr (not understood yet).
  assert.equal(again.code, 0, `exit ${again.code}\nstderr: ${again.stderr}\nstdout: ${again.stdout}`);
  assert.equal(again.stdout.match(/unchanged/g)?.length, 3, again.stdout);
});

f.test("a user's session follows them across hosts (Redis on the cache host)", async () => {
  const login = await get(f.up.port, '/login', { method: 'POST', body: 'name=ann' });
  assert.equal(login.status, 303, login.body);
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const seen = new Set<string>();
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      for (let i = 0; i < 12; i++) {
        const r = await get(f.up.port, '/api/session', { cookie });
        assert.equal(r.status, 200, r.body);
        assert.equal(JSON.parse(r.body).user, 'ann');
        seen.add(String(r.headers['x-clones-clone']).split(':')[0]!);
      }
    }),
  );
  assert.ok(seen.size >= 2, `served by hosts ${[...seen].join(', ')}`);
});

f.test(
  'rolling deploy in batches of hosts under load: 0 failed, 0 old-release responses after it returns; a one-file change ships little',
  async () => {
    const old = f.status().release;
    const traffic = load(f.up.port, '/up', 4);
    await sleep(500);
    touchApp(app, 'rolling');
    const r = await cliAsync(dir, ['deploy', 'shop', '--json', '--batch', '1']);
    const returned = Date.now();
    assert.equal(r.code, 0, r.stderr);
    await sleep(1500);
    await traffic.stop();
    const later = traffic.samples.filter((s) => s.at > returned);
    assert.ok(later.length > 50, `${later.length} requests after the deploy`);
    assert.equal(later.filter((s) => s.release === old).length, 0);
    assert.deepEqual(traffic.failures, []);
    const ev = events(r.stdout);
    const done = ev.find((e) => e.type === 'done')!;
    // Hosts one after another: every clone of h1 is replaced before any of h2.
    const starts = ev.filter((e) => e.type === 'clone' && e.state === 'serving').map((e) => String(e.host));
    assert.deepEqual(starts, ['h1', 'h1', 'h2', 'h2', 'h3', 'h3']);
    const shipped = ev.filter((e) => e.type === 'host' && String(e.step).startsWith('ship'));
    assert.equal(shipped.length, 3);
    // The changed server.ts, the server.js compiled from it, and the tree's manifest: not the release.
    const changed = statSync(join(app, 'server.ts')).size;
    for (const e of shipped)
      assert.ok(
        Number(e.bytes) < 3 * changed,
        `one changed file (${changed} bytes): ${e.bytes} bytes to ${e.host}`,
      );
    const s = f.status();
    assert.equal(s.release, done.release);
    assert.ok(s.clones.every((c) => c.release === done.release));
    assert.deepEqual(s.guard, [done.release]);
  },
);

f.test(
  'blue-green and canary across hosts under load: 0 failed, 0 old-release responses after return',
  async () => {
    for (const args of [
      ['--strategy', 'blue-green'],
      ['--strategy', 'canary', '--steps', '50,100', '--step-wait', '2s'],
    ]) {
      const old = f.status().release;
      const traffic = load(f.up.port, '/up', 4);
      touchApp(app, args[1]!);
      const r = await cliAsync(dir, ['deploy', 'shop', '--json', ...args]);
      const returned = Date.now();
      assert.equal(r.code, 0, r.stderr);
      await sleep(1500);
      await traffic.stop();
      assert.deepEqual(traffic.failures, [], args.join(' '));
      assert.equal(traffic.samples.filter((s) => s.at > returned && s.release === old).length, 0);
      const s = f.status();
      assert.equal(s.clones.length, 6);
      assert.ok(s.clones.every((c) => c.release === s.release && s.release !== old));
    }
  },
);
