// A fleet across 3 test hosts: the control process killed mid-deploy, and a 4th host that joins late from an
// older image.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fleetPaths } from '../../src/fleet/fleet-paths.ts';
import { setupHost, shipRelease } from '../../src/fleet/host-setup.ts';
import { stageInstall } from '../../src/fleet/install-tree.ts';
import { listReleases } from '../../src/fleet/release.ts';
import { SshTransport } from '../../src/fleet/ssh-transport.ts';
import { cliAsync, load, startUp, touchApp } from './fleet-harness.ts';
import { hostsFleet, UP_ARGS, until } from './hosts-harness.ts';

const f = hostsFleet();
const { dir, app } = f;

f.test(
  'the control process killed mid-deploy: clones keep serving; the next up converges every host',
  async () => {
    const old = f.status().release;
    touchApp(app, 'interrupted');
    const deploy = cliAsync(dir, ['deploy', 'shop', '--json']);
    let running: { host: string; port: number } | undefined;
    await until(
      'the deploy started replacing clones',
      () => {
        running = f.status().clones.find((c) => c.release !== old && c.state === 'serving');
        return running !== undefined;
      },
      120_000,
    );
    f.up.child.kill('SIGKILL');
    await deploy;
    // The hosts still serve without the control process: straight to a new clone, no balancer in between.
    const address = f.hosts.hosts.find((h) => h.name === running!.host)!.address;
    const direct = await fetch(`http://${address}:${running!.port}/up`);
    assert.equal(direct.status, 200);
    rmSync(join(dir, '.clones/up.json'));
    f.up = await startUp(dir, UP_ARGS);
    const s = f.status();
    assert.notEqual(s.release, old);
    assert.equal(
      s.clones.length,
      6,
      JSON.stringify(s.clones.map((c) => [c.id, c.release.slice(0, 8), c.state])),
    );
    assert.ok(s.clones.every((c) => c.release === s.release && c.health === 'healthy'));
    for (const h of s.hosts) assert.equal(h.release, s.release);
    const traffic = load(f.up.port, '/up', 4);
    touchApp(app, 'after-interrupted');
    const next = await cliAsync(dir, ['deploy', 'shop']);
    await traffic.stop();
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(traffic.failures, []);
  },
);

f.test(
  'a 4th host started later from an older image converges before it serves: 0 old-release responses',
  async () => {
    const paths = fleetPaths(join(dir, '.clones'));
    const current = f.status().release;
    const oldest = listReleases(paths).at(-1)!.digest;
    assert.notEqual(oldest, current);
    const h4 = await f.hosts.addHost();
    // The "machine image": h4 boots 2 clones of an old release before it joins.
    const ssh = new SshTransport({ knownHosts: f.hosts.knownHosts });
    try {
      const spec = {
        name: h4.name,
        user: 'root',
        address: h4.address,
        port: 22,
        identity: f.hosts.identity,
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
        env: { SESSION_STORE: f.hosts.cache!.redisUrl, SESSION_SECRET: 'x'.repeat(44) },
      });
      assert.equal((await done.agent.status()).clones.filter((c) => c.release === oldest).length, 2);
    } finally {
      await ssh.close();
    }
    const traffic = load(f.up.port, '/up', 4);
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
    const s = f.status();
    const mine = s.clones.filter((c) => c.host === h4.address);
    assert.equal(mine.length, 2);
    assert.ok(mine.every((c) => c.release === current));
  },
);
