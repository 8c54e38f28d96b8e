import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ClonesError } from '../../src/errors.ts';
import { assertSharedStore, hostCountsOf, hostsConfig } from '../../src/fleet/host-config.ts';
import { batchSize } from '../../src/fleet/rollout/across-hosts.ts';
import { resolveSshOptions } from '../../src/fleet/ssh-options.ts';
import { cli, tempApp, useSources } from './fleet-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-hosts-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function withConfig(config: unknown): string {
  const app = mkdtempSync(join(dir, 'app-'));
  writeFileSync(join(app, 'clones.json'), JSON.stringify(config));
  return app;
}

test('hosts from clones.json: defaults filled in, paths resolved, frozen', () => {
  const app = withConfig({
    hosts: [
      { address: '10.0.0.11' },
      { name: 'web-2', address: '10.0.0.12', port: 2222, clones: 4, bind: '10.0.1.12' },
    ],
    ssh: { identity: 'keys/deploy', parallel: 3 },
  });
  const c = hostsConfig(app)!;
  assert.equal(c.hosts.length, 2);
  assert.deepEqual(
    { ...c.hosts[0] },
    {
      name: '10.0.0.11',
      user: c.hosts[0]!.user,
      address: '10.0.0.11',
      port: 22,
      identity: join(app, 'keys/deploy'),
      dir: 'clones',
      clones: 2,
      bind: '10.0.0.11',
      agentPort: 7077,
    },
  );
  assert.equal(c.hosts[1]!.bind, '10.0.1.12');
  assert.equal(c.ssh.parallel, 3);
  assert.ok(Object.isFrozen(c.hosts[0]));
  assert.equal(hostsConfig(withConfig({ env: { A: '1' } })), undefined, 'no hosts: one machine');
});

test('--host user@address[:port] replaces the list; every problem is reported at once', () => {
  const app = withConfig({ hosts: [{ address: '10.0.0.11' }] });
  const c = hostsConfig(app, { host: ['deploy@10.0.0.21:2200', '10.0.0.22'], clones: 3 })!;
  assert.deepEqual(
    c.hosts.map((h) => [h.user, h.address, h.port, h.clones]),
    [
      ['deploy', '10.0.0.21', 2200, 3],
      [c.hosts[1]!.user, '10.0.0.22', 22, 3],
    ],
  );
  const bad = withConfig({
    hosts: [{ address: '10.0.0.1', port: 70000, colour: 'red' }, { dir: '../x' }, { address: '10.0.0.1' }],
    ssh: { parallel: 0 },
  });
  assert.throws(
    () => hostsConfig(bad),
    (err: ClonesError) => {
      assert.equal(err.code, 'CLONES_FLEET_HOSTS_CONFIG');
      for (const part of [
        'ssh.parallel',
        'hosts[0].colour: unknown option',
        'hosts[0].port',
        'hosts[1].address: is required',
        'hosts[1].dir',
        'host 10.0.0.1: listed twice',
      ])
        assert.ok(err.message.includes(part), `${part} in ${err.message}`);
      return true;
    },
  );
  assert.throws(() => hostsConfig(app, { host: ['a@b@c'] }), /--host a@b@c: must be user@address/);
});

test('a one-host session store is refused for many hosts, with the redis:// suggestion', () => {
  assert.doesNotThrow(() => assertSharedStore(undefined, 1));
  assert.doesNotThrow(() => assertSharedStore('redis://10.0.0.5:6379', 3));
  for (const store of [undefined, 'sqlite:/srv/sessions.db', 'memory:']) {
    assert.throws(
      () => assertSharedStore(store, 2),
      (err: ClonesError) => err.code === 'CLONES_FLEET_STORE_NOT_SHARED' && /redis:\/\//.test(err.message),
    );
  }
  // Through the CLI: refused before any host is contacted.
  useSources();
  const { dir: appDir, cleanup } = tempApp();
  try {
    const r = cli(appDir, ['up', 'shop', '--host', 'root@198.18.255.1', '--host', 'root@198.18.255.2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CLONES_FLEET_STORE_NOT_SHARED/);
  } finally {
    cleanup();
  }
});

test('rolling batches: a number of hosts or a percentage, at least one', () => {
  assert.equal(batchSize(undefined, 5), 1);
  assert.equal(batchSize(2, 5), 2);
  assert.equal(batchSize(9, 5), 5);
  assert.equal(batchSize('50%', 5), 3);
  assert.equal(batchSize('1%', 5), 1);
});

test("a host's own clones count goes into the desired state; hosts at the fleet's count are not listed", () => {
  const config = hostsConfig(
    withConfig({
      hosts: [
        { address: '10.0.0.11', name: 'a' },
        { address: '10.0.0.12', name: 'big', clones: 6 },
        { address: '10.0.0.13', name: 'none', clones: 0 },
      ],
    }),
  )!;
  assert.deepEqual(hostCountsOf(config.hosts, 2), { big: 6, none: 0 });
  assert.equal(hostCountsOf(config.hosts.slice(0, 1), 2), undefined);
});

test('wrong SSH options are reported together, each named', () => {
  assert.throws(
    () =>
      resolveSshOptions({
        knownHosts: '/k',
        parallel: 0,
        readyTimeout: 5,
        acceptNewHostKeys: 'yes' as never,
      }),
    (err: ClonesError) =>
      err.code === 'CLONES_INVALID_OPTION' &&
      /ssh\.parallel: must be an integer >= 1, got 0/.test(err.message) &&
      /ssh\.readyTimeout: must be an integer >= 100, got 5/.test(err.message) &&
      /ssh\.acceptNewHostKeys: must be true or false/.test(err.message),
  );
});
