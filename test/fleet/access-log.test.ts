// clones up --access-log: the balancer's access log in the fleet's logs, read with `clones logs balancer`.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cli, get, startUp, tempApp, type Up } from './fleet-harness.ts';

const { dir, cleanup } = tempApp();
let up: Up;

before(async () => {
  up = await startUp(dir, ['--clones', '1', '--access-log']);
});
after(async () => {
  await up?.stop();
  cleanup();
});

test('clones up --access-log: every request in Combined Log Format; clones logs balancer [--since] shows them', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await get(up.port, `/up?n=${i}`)).status, 200);
  let out = '';
  for (let i = 0; i < 50 && !out.includes('/up?n=2'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    out = cli(dir, ['logs', 'balancer']).stdout;
  }
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => l.includes('"GET /up?n='));
  assert.equal(lines.length, 3, out);
  assert.match(
    lines[0]!,
    /^balancer 127\.0\.0\.1 - - \[[^\]]+\] "GET \/up\?n=0 HTTP\/1\.1" 200 \d+ "-" "-" c\d+ \d+\.\d$/,
  );
  assert.equal(
    cli(dir, ['logs', 'balancer', '--since', '1m'])
      .stdout.split('\n')
      .filter((l) => l.includes('/up?n=')).length,
    3,
  );
  assert.equal(cli(dir, ['logs', 'balancer', '--lines', '1']).stdout.trim().split('\n').length, 1);
  assert.equal(statSync(join(dir, '.clones/logs/balancer-access.log')).mode & 0o077, 0);
});
