// A fleet across 3 test hosts (network namespaces with their own sshd, see test/harness/hosts.ts), 2 clones
// of examples/shop each, sessions in Redis on the cache host, one balancer here. One set of hosts for the
// whole file: each test leaves the fleet serving for the next.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fleetPaths } from '../../src/fleet/fleet-paths.ts';
import { setupHost, shipRelease } from '../../src/fleet/host-setup.ts';
import { stageInstall } from '../../src/fleet/install-tree.ts';
import { listReleases } from '../../src/fleet/release.ts';
import { SshTransport } from '../../src/fleet/ssh-transport.ts';
import { startTestHosts, type TestHosts } from '../harness/hosts.ts';
import {
  cli,
  cliAsync,
  get,
  load,
  startUp,
  status,
  tempApp,
  touchApp,
  type Up,
  useTestHosts,
} from './fleet-harness.ts';

let hosts: TestHosts;
let up: Up;
const { dir, app, cleanup } = tempApp();
type Status = Omit<ReturnType<typeof status>, 'clones'> & {
  hosts: { name: string; reachable: boolean; inService: boolean; release: string | null; clones: number }[];
  clones: { id: string; host: string; release: string; pid: number; state: string; health: string }[];
};
const fleetStatus = () => status(dir) as unknown as Status;

function events(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(250);
  }
}

before(async () => {
  hosts = await startTestHosts({ count: 3, cache: true });
  useTestHosts(app, hosts);
  up = await startUp(dir, ['--drain-timeout', '2s', '--ready-timeout', '20s']);
});

after(async () => {
  await up?.stop();
  await hosts?.stop();
  cleanup();
});

test('up sets every host up over SSH and runs 2 clones on each; setup again changes nothing', async () => {
  const s = fleetStatus();
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
  for (const h of hosts.hosts) {
    const r = await hosts.exec(h.name, [
      'cat',
      join(h.dir, 'clones/releases', s.release, '.clones-release.json'),
    ]);
    assert.equal(JSON.parse(r.stdout).digest, s.release);
    const link = await hosts.exec(h.name, [
      'readlink',
      join(h.dir, 'clones/releases', s.release, 'node_modules/clones'),
    ]);
    assert.equal(link.stdout.trim(), '../../../clones', 'the release links the host install');
  }
  // Twice: the first may install a newer clones if this checkout changed since up (tests run in a live one).
  await cliAsync(dir, ['setup', 'shop']);
  const again = await cliAsync(dir, ['setup', 'shop']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.match(/unchanged/g)?.length, 3, again.stdout);
});

test("a user's session follows them across hosts (Redis on the cache host)", async () => {
  const login = await get(up.port, '/login', { method: 'POST', body: 'name=ann' });
  assert.equal(login.status, 303);
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const seen = new Set<string>();
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let i = 0; i < 8; i++) {
        const r = await get(up.port, '/api/session', { cookie });
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).user, 'ann');
        seen.add(String(r.headers['x-clones-clone']).split(':')[0]!);
      }
    }),
  );
  assert.ok(seen.size >= 2, `served by hosts ${[...seen].join(', ')}`);
});

test('rolling deploy in batches of hosts under load: 0 failed, 0 old-release responses after it returns; a one-file change ships little', async () => {
  const old = fleetStatus().release;
  const traffic = load(up.port, '/up', 4);
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
  for (const e of shipped)
    assert.ok(Number(e.bytes) < 20_000, `one changed file: ${e.bytes} bytes to ${e.host}`);
  const s = fleetStatus();
  assert.equal(s.release, done.release);
  assert.ok(s.clones.every((c) => c.release === done.release));
  assert.deepEqual(s.guard, [done.release]);
});

test('blue-green and canary across hosts under load: 0 failed, 0 old-release responses after return', async () => {
  for (const args of [
    ['--strategy', 'blue-green'],
    ['--strategy', 'canary', '--steps', '50,100', '--step-wait', '2s'],
  ]) {
    const old = fleetStatus().release;
    const traffic = load(up.port, '/up', 4);
    touchApp(app, args[1]!);
    const r = await cliAsync(dir, ['deploy', 'shop', '--json', ...args]);
    const returned = Date.now();
    assert.equal(r.code, 0, r.stderr);
    await sleep(1500);
    await traffic.stop();
    assert.deepEqual(traffic.failures, [], args.join(' '));
    assert.equal(traffic.samples.filter((s) => s.at > returned && s.release === old).length, 0);
    const s = fleetStatus();
    assert.equal(s.clones.length, 6);
    assert.ok(s.clones.every((c) => c.release === s.release && s.release !== old));
  }
});

test('kill -9 of a host agent: its clones keep serving, the agent comes back and takes them over', async () => {
  const h1 = hosts.hosts[0]!;
  const pidFile = join(h1.dir, 'clones/agent.pid');
  const before = fleetStatus().clones.filter((c) => c.host === 'h1');
  const agentPid = readFileSync(pidFile, 'utf8').trim();
  const traffic = load(up.port, '/up', 4);
  const killed = await hosts.exec('h1', ['kill', '-9', agentPid]);
  assert.equal(killed.code, 0);
  await until('a new agent on h1', () => readFileSync(pidFile, 'utf8').trim() !== agentPid);
  await until('h1 reachable again', () => fleetStatus().hosts[0]!.reachable);
  await sleep(1000);
  await traffic.stop();
  assert.deepEqual(traffic.failures, []);
  const afterPids = fleetStatus()
    .clones.filter((c) => c.host === 'h1')
    .map((c) => c.pid);
  assert.deepEqual(afterPids.sort(), before.map((c) => c.pid).sort(), 'the same clone processes, adopted');
});

test("a host's link down under load: 0 failed GETs, its clones ejected; link up: it serves again", async () => {
  const traffic = load(up.port, '/up', 4);
  await hosts.linkDown('h2');
  await until('h2 clones ejected', () =>
    fleetStatus()
      .clones.filter((c) => c.host === 'h2')
      .every((c) => c.health !== 'healthy'),
  );
  const during = traffic.samples.length;
  await sleep(2000);
  assert.ok(traffic.samples.slice(during).every((s) => !s.clone.startsWith('h2:')));
  await hosts.linkUp('h2');
  await until('h2 healthy again', () =>
    fleetStatus()
      .clones.filter((c) => c.host === 'h2')
      .every((c) => c.health === 'healthy'),
  );
  await traffic.stop();
  assert.deepEqual(traffic.failures, []);
});

test('a deploy while a host is unreachable fails naming it; --skip-unreachable goes on and the host catches up before it serves', async () => {
  await hosts.linkDown('h3');
  touchApp(app, 'unreachable');
  const refused = await cliAsync(dir, ['deploy', 'shop']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /CLONES_FLEET_AGENT_UNAVAILABLE/);
  assert.match(refused.stderr, /host h3: deploy: reach the agent/);
  const old = fleetStatus().release;
  const r = await cliAsync(dir, ['deploy', 'shop', '--skip-unreachable', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const release = String(events(r.stdout).find((e) => e.type === 'done')!.release);
  assert.notEqual(release, old);
  const traffic = load(up.port, '/up', 4);
  await hosts.linkUp('h3');
  await until(
    'h3 caught up and in service',
    () => {
      const s = fleetStatus();
      const h3 = s.clones.filter((c) => c.host === 'h3');
      return (
        s.hosts[2]!.inService &&
        h3.length === 2 &&
        h3.every((c) => c.release === release && c.health === 'healthy')
      );
    },
    120_000,
  );
  await sleep(1000);
  await traffic.stop();
  assert.deepEqual(traffic.failures, []);
  assert.equal(
    traffic.samples.filter((s) => s.release === old).length,
    0,
    'no response from the old release',
  );
  assert.ok(
    traffic.samples.some((s) => s.clone.startsWith('h3:')),
    'h3 serves again',
  );
});

test('the control process killed mid-deploy: clones keep serving; the next up converges every host', async () => {
  const old = fleetStatus().release;
  touchApp(app, 'interrupted');
  const deploy = cliAsync(dir, ['deploy', 'shop', '--json']);
  await until(
    'the deploy started replacing clones',
    () => fleetStatus().clones.some((c) => c.release !== old),
    120_000,
  );
  up.child.kill('SIGKILL');
  await deploy;
  // The hosts still serve: straight to a clone of h1, no balancer in between.
  const h1 = hosts.hosts[0]!;
  const agentClones = JSON.parse(readFileSync(join(h1.dir, 'clones/agent-clones.json'), 'utf8')) as {
    port: number;
  }[];
  const direct = await fetch(`http://${h1.address}:${agentClones[0]!.port}/up`);
  assert.equal(direct.status, 200);
  rmSync(join(dir, '.clones/up.json'));
  up = await startUp(dir, ['--drain-timeout', '2s', '--ready-timeout', '20s']);
  const s = fleetStatus();
  assert.notEqual(s.release, old);
  assert.equal(
    s.clones.length,
    6,
    JSON.stringify(s.clones.map((c) => [c.id, c.release.slice(0, 8), c.state])),
  );
  assert.ok(s.clones.every((c) => c.release === s.release && c.health === 'healthy'));
  for (const h of s.hosts) assert.equal(h.release, s.release);
  const traffic = load(up.port, '/up', 4);
  touchApp(app, 'after-interrupted');
  const next = await cliAsync(dir, ['deploy', 'shop']);
  await traffic.stop();
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(traffic.failures, []);
});

test('a 4th host started later from an older image converges before it serves: 0 old-release responses', async () => {
  const paths = fleetPaths(join(dir, '.clones'));
  const current = fleetStatus().release;
  const oldest = listReleases(paths).at(-1)!.digest;
  assert.notEqual(oldest, current);
  const h4 = await hosts.addHost();
  // The "machine image": h4 boots 2 clones of an old release before it joins.
  const ssh = new SshTransport({ knownHosts: hosts.knownHosts });
  try {
    const spec = {
      name: h4.name,
      user: 'root',
      address: h4.address,
      port: 22,
      identity: hosts.identity,
      dir: 'clones',
      clones: 2,
      bind: h4.address,
      agentPort: 7077,
    };
    const done = await setupHost(ssh, spec, { paths, installDir: stageInstall(paths), emit: () => {} });
    await shipRelease(ssh, spec, done.root, paths, oldest);
    await done.agent.setDesired({
      release: oldest,
      epoch: 1,
      clones: 2,
      converge: true,
      env: { SESSION_STORE: hosts.cache!.redisUrl, SESSION_SECRET: 'x'.repeat(44) },
    });
    assert.equal((await done.agent.status()).clones.filter((c) => c.release === oldest).length, 2);
  } finally {
    await ssh.close();
  }
  const traffic = load(up.port, '/up', 4);
  const added = await cliAsync(dir, ['hosts', 'add', `root@${h4.address}`, '--json']);
  assert.equal(added.code, 0, added.stderr);
  await until('h4 serves', () => traffic.samples.some((s) => s.clone.startsWith(`${h4.address}:`)), 30_000);
  await traffic.stop();
  assert.deepEqual(traffic.failures, []);
  assert.equal(
    traffic.samples.filter((s) => s.release === oldest).length,
    0,
    'no response from the old image',
  );
  const s = fleetStatus();
  const mine = s.clones.filter((c) => c.host === h4.address);
  assert.equal(mine.length, 2);
  assert.ok(mine.every((c) => c.release === current));
});

test('a changed host key is refused; an unreachable host is reported with its name and the step', async () => {
  const h1 = hosts.hosts[0]!;
  const knownHosts = join(dir, 'bad_known_hosts');
  const other = readFileSync(hosts.knownHosts, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(hosts.hosts[1]!.address))!
    .split(' ')
    .slice(1)
    .join(' ');
  writeFileSync(knownHosts, `${h1.address} ${other}\n`);
  const bad = join(dir, 'bad');
  const { cpSync } = await import('node:fs');
  cpSync(app, bad, { recursive: true });
  writeFileSync(
    join(bad, 'clones.json'),
    JSON.stringify({
      hosts: [
        { name: 'h1', address: h1.address, user: 'root' },
        { name: 'gone', address: `198.18.${hosts.k}.99`, user: 'root' },
      ],
      ssh: { identity: hosts.identity, knownHosts },
    }),
  );
  const r = cli(dir, ['setup', 'bad']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /h1 +failed: .*CLONES_HOST_KEY_CHANGED/);
  assert.match(
    r.stdout,
    /gone +failed: host gone is unreachable \(step "setup: directory"\).*CLONES_HOST_UNREACHABLE/,
  );
});
