// Issue 11's systemd path: a host whose init is systemd (test/harness/systemd-host.ts) gets the host agent as
// a systemd unit from `clones setup`; running setup again changes nothing; systemd restarts a killed agent,
// whose clones keep serving (KillMode=process) and are taken over, with no failed request.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestHosts, type TestHosts } from '../harness/hosts.ts';
import { cliAsync, isAlive, load, startUp, tempApp, type Up, useSources } from './fleet-harness.ts';
import { hostsDiagnosis, hostsStatus, UP_ARGS, until } from './hosts-harness.ts';

const UNIT = 'clones-agent-h1';

describe('a host run by systemd', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const { dir, app, cleanup } = tempApp();
  let hosts: TestHosts;
  let up: Up | undefined;

  /** `systemctl show -p <prop> --value clones-agent-h1` on the host. */
  const unit = async (prop: string) => {
    const r = await hosts.exec('h1', ['systemctl', 'show', '-p', prop, '--value', UNIT]);
    return r.stdout.trim();
  };
  const check = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error) err.message += `\n${hostsDiagnosis(hosts, up)}`;
        throw err;
      }
    });

  before(async () => {
    hosts = await startTestHosts({ count: 1, systemd: true });
    useSources();
    // One host: the embedded SQLite store on it is allowed.
    const h = hosts.hosts[0]!;
    writeFileSync(
      join(app, 'clones.json'),
      JSON.stringify({
        hosts: [{ name: h.name, address: h.address, user: 'root', clones: 2 }],
        ssh: { identity: hosts.identity, knownHosts: hosts.knownHosts },
      }),
    );
  });
  after(async () => {
    await up?.stop();
    await hosts?.stop();
    cleanup();
  });

  check('clones setup installs the agent as a systemd unit on the host, not on this machine', async () => {
    const r = await cliAsync(dir, ['setup', 'shop', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`systemd unit ${UNIT}`), r.stdout);
    assert.equal(await unit('ActiveState'), 'active');
    assert.equal(await unit('UnitFileState'), 'enabled', 'the agent starts again when the host boots');
    const pid = await hosts.exec('h1', ['cat', join(hosts.hosts[0]!.dir, 'clones/agent.pid')]);
    assert.equal(pid.stdout.trim(), await unit('MainPID'), 'the agent is the unit main process');
    assert.equal(existsSync(`/etc/systemd/system/${UNIT}.service`), false);
    const log = await hosts.exec('h1', [
      'sh',
      '-c',
      `test -s ${join(hosts.hosts[0]!.dir, 'clones/logs/agent.log')}`,
    ]);
    assert.equal(log.code, 0, 'the unit writes logs/agent.log, as the detached agent does');
  });

  check('setup run again changes nothing: the same agent process, no restart', async () => {
    const before = await unit('MainPID');
    const r = await cliAsync(dir, ['setup', 'shop']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /h1\s+unchanged/, r.stdout);
    assert.equal(await unit('MainPID'), before);
    assert.equal(await unit('NRestarts'), '0');
  });

  check('systemd restarts a killed agent; its clones keep serving and are taken over', async () => {
    up = await startUp(dir, UP_ARGS);
    const clones = hostsStatus(dir).clones;
    assert.equal(clones.length, 2);
    const traffic = load(up.port, '/up', 2);
    try {
      await until('some answers', () => traffic.samples.length >= 20, 20_000);
      const agent = await unit('MainPID');
      const kill = await hosts.exec('h1', ['kill', '-9', agent]);
      assert.equal(kill.code, 0, kill.stderr);
      await until(
        'systemd restarted the agent',
        async () => (await unit('NRestarts')) === '1' && !['0', agent].includes(await unit('MainPID')),
        20_000,
      );
      await until(
        'the new agent reports both clones serving',
        () => {
          const s = hostsStatus(dir);
          return (
            s.clones.length === 2 && s.clones.every((c) => c.state === 'serving' && c.health === 'healthy')
          );
        },
        30_000,
      );
      const seen = traffic.samples.length;
      await until('more answers after the takeover', () => traffic.samples.length >= seen + 20, 20_000);
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(traffic.failures, [], 'no request failed');
    const after = hostsStatus(dir).clones;
    assert.deepEqual(
      after.map((c) => c.pid).sort(),
      clones.map((c) => c.pid).sort(),
      'the same clone processes serve (taken over, not restarted)',
    );
    // Their uptime counts from their own start (read from /proc, whose boot time has 1 s resolution), not
    // from the takeover, which came seconds later (systemd waits 1 s, then the agent starts).
    for (const c of after) {
      const was = clones.find((x) => x.id === c.id)!;
      const drift = Math.abs(Date.parse(c.startedAt!) - Date.parse(was.startedAt!));
      assert.ok(drift <= 1500, `${c.id} started ${was.startedAt}, after the takeover ${c.startedAt}`);
    }
  });

  check('stopping the run ends the host: no process, namespace or cgroup of it is left', async () => {
    await up?.stop();
    up = undefined;
    const { ns, systemdPid } = hosts.hosts[0]!;
    const at = mkdtempSync(join(tmpdir(), 'cg-'));
    assert.equal(spawnSync('mount', ['-t', 'cgroup', '-o', 'none,name=systemd', 'cgroup', at]).status, 0);
    try {
      assert.equal(existsSync(join(at, ns)), true, `the host's systemd runs in cgroup ${ns}`);
      await hosts.stop();
      // Its parent (unshare) reaps it a moment after it died.
      await until('the host systemd is gone', () => !isAlive(systemdPid!), 5000);
      assert.doesNotMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, new RegExp(ns));
      assert.equal(existsSync(join(at, ns)), false, `cgroup ${ns} removed`);
    } finally {
      spawnSync('umount', [at]);
      rmSync(at, { recursive: true, force: true });
    }
  });
});
