// A fleet across 3 test hosts: what happens when a host's agent is killed, its link goes down, it cannot be
// reached during a deploy, or its SSH host key changed.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, cliAsync, load, touchApp } from './fleet-harness.ts';
import { events, hostsFleet, until } from './hosts-harness.ts';

const f = hostsFleet();
const { dir, app } = f;

f.test(
  'kill -9 of a host agent: its clones keep serving, the agent comes back and takes them over',
  async () => {
    const h1 = f.hosts.hosts[0]!;
    const pidFile = join(h1.dir, 'clones/agent.pid');
    const before = f.status().clones.filter((c) => c.host === 'h1');
    const agentPid = readFileSync(pidFile, 'utf8').trim();
    const traffic = load(f.up.port, '/up', 4);
    const killed = await f.hosts.exec('h1', ['kill', '-9', agentPid]);
    assert.equal(killed.code, 0);
    await until('a new agent on h1', () => readFileSync(pidFile, 'utf8').trim() !== agentPid);
    await until('h1 reachable again', () => f.status().hosts[0]!.reachable);
    await sleep(1000);
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
    const afterPids = f
      .status()
      .clones.filter((c) => c.host === 'h1')
      .map((c) => c.pid);
    assert.deepEqual(afterPids.sort(), before.map((c) => c.pid).sort(), 'the same clone processes, adopted');
  },
);

f.test(
  "a host's link down under load: 0 failed GETs, its clones ejected; link up: it serves again",
  async () => {
    const traffic = load(f.up.port, '/up', 4);
    await f.hosts.linkDown('h2');
    await until('h2 clones ejected', () =>
      f
        .status()
        .clones.filter((c) => c.host === 'h2')
        .every((c) => c.health !== 'healthy'),
    );
    const during = traffic.samples.length;
    await sleep(2000);
    assert.ok(traffic.samples.slice(during).every((s) => !s.clone.startsWith('h2:')));
    await f.hosts.linkUp('h2');
    await until('h2 healthy again', () =>
      f
        .status()
        .clones.filter((c) => c.host === 'h2')
        .every((c) => c.health === 'healthy'),
    );
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
  },
);

f.test(
  'a deploy while a host is unreachable fails naming it; --skip-unreachable goes on and the host catches up before it serves',
  async () => {
    await f.hosts.linkDown('h3');
    touchApp(app, 'unreachable');
    const refused = await cliAsync(dir, ['deploy', 'shop']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /CLONES_FLEET_AGENT_UNAVAILABLE/);
    assert.match(refused.stderr, /host h3: deploy: reach the agent/);
    const old = f.status().release;
    const r = await cliAsync(dir, ['deploy', 'shop', '--skip-unreachable', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const release = String(events(r.stdout).find((e) => e.type === 'done')!.release);
    assert.notEqual(release, old);
    const traffic = load(f.up.port, '/up', 4);
    await f.hosts.linkUp('h3');
    await until(
      'h3 caught up and in service',
      () => {
        const s = f.status();
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
  },
);

f.test(
  'a changed host key is refused; an unreachable host is reported with its name and the step',
  async () => {
    const h1 = f.hosts.hosts[0]!;
    const knownHosts = join(dir, 'bad_known_hosts');
    const other = readFileSync(f.hosts.knownHosts, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(f.hosts.hosts[1]!.address))!
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
          { name: 'gone', address: `198.18.${f.hosts.k}.99`, user: 'root' },
        ],
        ssh: { identity: f.hosts.identity, knownHosts },
      }),
    );
    const r = cli(dir, ['setup', 'bad']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /h1 +failed: .*CLONES_HOST_KEY_CHANGED/);
    assert.match(
      r.stdout,
      /gone +failed: host gone is unreachable \(step "setup: directory"\).*CLONES_HOST_UNREACHABLE/,
    );
  },
);
