// saveHostsChange: `clones hosts add|remove` written into clones.json, keeping the user's other keys, their
// order and the file's indentation; adding a listed host or removing an unlisted one changes nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { hostFromFlag, hostsConfig } from '../../src/fleet/host-config.ts';
import { saveHostsChange } from '../../src/fleet/hosts-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-hosts-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'clones.json');

test('add and remove keep the other keys, their order, the indentation and the mode', () => {
  const original = {
    env: { GREETING: 'hi' },
    hosts: [{ name: 'web-1', address: '10.0.0.11', user: 'deploy', clones: 3 }],
    ssh: { identity: 'keys/deploy' },
  };
  writeFileSync(file, `${JSON.stringify(original, null, 4)}\n`, { mode: 0o640 });
  const config = hostsConfig(dir)!;
  assert.equal(saveHostsChange(file, { add: hostFromFlag('ops@10.0.0.12:2222', config, 2) }), true);
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^\{\n {4}"env"/, 'indented as before');
  const saved = JSON.parse(text);
  assert.deepEqual(Object.keys(saved), ['env', 'hosts', 'ssh']);
  assert.deepEqual(saved.hosts, [...original.hosts, { address: '10.0.0.12', user: 'ops', port: 2222 }]);
  assert.equal(statSync(file).mode & 0o777, 0o640);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
  // The new host is read back as the fleet will read it on the next `clones up`.
  assert.deepEqual(
    hostsConfig(dir)!.hosts.map((h) => [h.name, h.user, h.port]),
    [
      ['web-1', 'deploy', 22],
      ['10.0.0.12', 'ops', 2222],
    ],
  );
  assert.equal(saveHostsChange(file, { add: hostFromFlag('ops@10.0.0.12:2222', config, 2) }), false);
  assert.equal(saveHostsChange(file, { remove: 'web-1' }), true);
  assert.equal(saveHostsChange(file, { remove: 'web-1' }), false);
  assert.deepEqual(
    JSON.parse(readFileSync(file, 'utf8')).hosts.map((h: { address: string }) => h.address),
    ['10.0.0.12'],
  );
});

test('a clones.json that is not a JSON object is refused with a coded error, and left as it was', () => {
  writeFileSync(file, '{ "hosts": [');
  assert.throws(() => saveHostsChange(file, { remove: 'web-1' }), { code: 'CLONES_FLEET_HOSTS_CONFIG' });
  assert.equal(readFileSync(file, 'utf8'), '{ "hosts": [');
});
