// A fleet across 3 test hosts: a crashed canary clone restarts as the canary, the clones' writable data
// directory on each host (and a one-host fleet whose SQLite data survives a deploy), `clones logs -f` and
// `--since` across hosts, and `clones hosts add|remove` written into clones.json.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, cliAsync, get, startUp, tempApp, touchApp, useSources } from './fleet-harness.ts';
import { hostsFleet, hostsStatus, UP_ARGS, until } from './hosts-harness.ts';

const f = hostsFleet();
const { dir, app } = f;
/** A host's clones directory (`clones` under its home, as setup makes it). */
const clonesDir = (name: string) => join(f.hosts.hosts.find((h) => h.name === name)!.dir, 'clones');
const releasesOn = (name: string) =>
  readdirSync(join(clonesDir(name), 'releases')).filter((n) => /^[0-9a-f]{64}$/.test(n));

f.test('every clone gets CLONES_DATA_DIR on its own host; nothing is written into a release', async () => {
  const s = f.status();
  assert.equal(s.clones.length, 6);
  assert.equal((await get(f.up.port, '/api/products')).status, 200);
  for (const h of f.hosts.hosts) {
    const data = join(clonesDir(h.name), 'data');
    assert.ok(existsSync(join(data, 'data.db')), `${h.name}: the shop's SQLite file is in ${data}`);
    for (const r of releasesOn(h.name))
      assert.equal(existsSync(join(clonesDir(h.name), 'releases', r, '.clones')), false, `${h.name} ${r}`);
    for (const c of s.clones.filter((c) => c.host === h.name)) {
      const env = readFileSync(`/proc/${c.pid}/environ`, 'utf8').split('\0');
      assert.ok(
        env.includes(`CLONES_DATA_DIR=${data}`),
        `${c.id}: ${env.filter((e) => e.startsWith('CLONES_'))}`,
      );
    }
  }
});

f.test('clones scale N --host NAME scales that host only; clones scale N sets every host again', async () => {
  const one = cli(dir, ['scale', '3', '--host', 'h2', '--json']);
  assert.equal(one.code, 0, one.stderr);
  await until('h2 runs 3 serving clones', () => {
    const s = f.status();
    return s.clones.filter((c) => c.host === 'h2' && c.state === 'serving').length === 3;
  });
  let s = f.status();
  const wanted = Object.fromEntries(s.hosts.map((h) => [h.name, h.clonesWanted]));
  assert.deepEqual(wanted, { h1: 2, h2: 3, h3: 2 });
  assert.deepEqual(
    ['h1', 'h2', 'h3'].map((h) => s.clones.filter((c) => c.host === h).length),
    [2, 3, 2],
    'the other hosts keep their count',
  );
  assert.equal(s.clonesWanted, 7, 'the fleet wants the sum of its hosts');
  assert.match(cli(dir, ['hosts']).stdout, /^h2\s.*\s3 of 3$/m);
  const unknown = cli(dir, ['scale', '1', '--host', 'nowhere']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /nowhere/);
  const all = cli(dir, ['scale', '2', '--json']);
  assert.equal(all.code, 0, all.stderr);
  await until('every host back to 2 clones', () => {
    const now = f.status();
    return ['h1', 'h2', 'h3'].every((h) => now.clones.filter((c) => c.host === h).length === 2);
  });
  s = f.status();
  assert.equal(s.clonesWanted, 6);
});

f.test('a canary clone killed on its host comes back as the canary release, not the stable one', async () => {
  const stable = f.status().release;
  touchApp(app, 'canary-crash');
  const args = 'deploy shop --strategy canary --steps 50,100 --step-wait 25s';
  const deploy = cliAsync(dir, args.split(' '));
  let canary: { id: string; pid: number; release: string } | undefined;
  await until(
    'a canary clone serves',
    () => {
      canary = f.status().clones.find((c) => c.release !== stable && c.state === 'serving');
      return canary !== undefined;
    },
    120_000,
  );
  process.kill(canary!.pid, 'SIGKILL');
  let back: { pid: number; release: string; state: string } | undefined;
  await until(
    'the killed canary clone is back',
    () => {
      back = f
        .status()
        .clones.find((c) => c.id === canary!.id && c.pid !== canary!.pid && c.state === 'serving');
      return back !== undefined;
    },
    20_000,
  );
  assert.equal(back!.release, canary!.release, 'restarted as the canary release');
  const done = await deploy;
  assert.equal(done.code, 0, done.stderr);
  const s = f.status();
  assert.ok(s.clones.every((c) => c.release === canary!.release));
});

f.test('clones logs -f and --since across hosts: host:clone prefixed, new lines followed', async () => {
  const s = f.status();
  const on = (host: string) => s.clones.find((c) => c.host === host)!;
  const [, h2, h3] = f.hosts.hosts;
  const c2 = on(h2!.name);
  const c3 = on(h3!.name);
  const logOf = (host: string, id: string) => join(clonesDir(host), 'logs', `${id.split(':')[1]}.log`);
  // --since goes by the time a line carries (the clone's pino lines): the old line is left out.
  const now = Date.now();
  appendFileSync(
    logOf(h3!.name, c3.id),
    `${JSON.stringify({ level: 30, time: now - 7_200_000, msg: 'old-mark' })}\n${JSON.stringify({ level: 30, time: now, msg: 'new-mark' })}\n`,
  );
  const since = cli(dir, ['logs', '--since', '1h', '--lines', '50']);
  assert.equal(since.code, 0, since.stderr);
  assert.match(since.stdout, new RegExp(`^${c3.id} \\{.*"new-mark"`, 'm'));
  assert.doesNotMatch(since.stdout, /old-mark/);

  const follow = cliAsync(dir, ['logs', '-f', '--lines', '0']);
  let seen = '';
  follow.child.stdout?.on('data', (c) => (seen += c));
  try {
    // Lines appended until one shows: the stream may take a moment to reach every host.
    for (let i = 0; i < 60 && !seen.includes(`${c2.id} tick`); i++) {
      appendFileSync(logOf(h2!.name, c2.id), `tick ${i}\n`);
      await sleep(500);
    }
    assert.match(seen, new RegExp(`^${c2.id} tick \\d+$`, 'm'));
    assert.doesNotMatch(seen, /new-mark/, '--lines 0: only new lines');
  } finally {
    follow.child.kill('SIGINT');
  }
  const ended = await follow;
  assert.equal(ended.code, 0, ended.stderr);
});

f.test('clones hosts remove/add are written into clones.json: a restarted clones up keeps them', async () => {
  const h3 = f.hosts.hosts[2]!;
  const file = join(app, 'clones.json');
  const removed = cli(dir, ['hosts', 'remove', h3.name]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /removed from .*clones\.json/);
  let saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(
    saved.hosts.map((h: { name: string }) => h.name),
    ['h1', 'h2'],
  );
  assert.ok(saved.ssh?.identity, 'the other keys are kept');
  const added = cli(dir, ['hosts', 'add', `root@${h3.address}`]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /added to .*clones\.json/);
  saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(saved.hosts.at(-1), { address: h3.address, user: 'root' });
  await f.up.stop();
  f.up = await startUp(dir, UP_ARGS);
  const s = f.status();
  const back = s.hosts.find((h) => h.name === h3.address);
  assert.ok(back?.inService, JSON.stringify(s.hosts));
  assert.equal(s.clones.filter((c) => c.host === h3.address).length, 2);
});

f.test(
  'one host, default SQLite: sessions and data live in the host data directory and survive a deploy',
  async () => {
    const h4 = await f.hosts.addHost();
    const one = tempApp();
    try {
      writeFileSync(
        join(one.app, 'clones.json'),
        JSON.stringify({
          hosts: [{ name: h4.name, address: h4.address, user: 'root', clones: 2 }],
          ssh: { identity: f.hosts.identity, knownHosts: f.hosts.knownHosts },
        }),
      );
      useSources({}); // no SESSION_STORE: each clone's default, SQLite on its host
      const up = await startUp(one.dir, UP_ARGS);
      try {
        const login = await get(up.port, '/login', { method: 'POST', body: 'name=ada' });
        const cookie = String(login.headers['set-cookie']).split(';')[0]!;
        const note = await get(up.port, '/profile', { method: 'POST', body: 'note=kept', cookie });
        assert.ok(note.status < 400, note.body);
        touchApp(one.app, 'one-host');
        const deployed = await cliAsync(one.dir, ['deploy', 'shop']);
        assert.equal(deployed.code, 0, deployed.stderr);
        assert.equal(hostsStatus(one.dir).clones.length, 2);
        for (let i = 0; i < 4; i++) {
          const profile = JSON.parse((await get(up.port, '/api/profile', { cookie })).body);
          assert.deepEqual(profile, { user: 'ada', note: 'kept' }, 'session and data survive the deploy');
        }
        const data = join(clonesDir(h4.name), 'data');
        assert.ok(existsSync(join(data, 'sessions.db')) && existsSync(join(data, 'data.db')));
        for (const r of releasesOn(h4.name))
          assert.equal(existsSync(join(clonesDir(h4.name), 'releases', r, '.clones')), false);
      } finally {
        await up.stop();
      }
    } finally {
      rmSync(join(one.dir, '.clones', 'up.json'), { force: true });
      one.cleanup();
    }
  },
);
