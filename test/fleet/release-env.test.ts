// A clone runs with the env its release declares, over the host's, and with production packages only.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { readRelease, removeTree, startFleet } from '../../src/fleet/index.ts';
import { get } from './fleet-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-release-env-'));
after(() => removeTree(dir));

const SERVER = `import { createServer } from 'node:http';
const load = (name) => import(name).then((m) => m.word, () => 'missing');
const word = await load('prod-pkg');
const dev = await load('dev-pkg');
createServer((req, res) => {
  if (req.url === '/up') return res.end('ok');
  const e = process.env;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ GREETING: e.GREETING, LIMIT: e.LIMIT, HOST_ONLY: e.HOST_ONLY,
    secret: typeof e.SESSION_SECRET === 'string' && e.SESSION_SECRET.length > 0, word, dev }));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

test('a clone sees the declared env (release over host), gets SESSION_SECRET from the fleet, and no dev package', async () => {
  const app = join(dir, 'app');
  const file = (path: string, text: string) => {
    mkdirSync(join(app, path, '..'), { recursive: true });
    writeFileSync(join(app, path), text);
  };
  file('server.mjs', SERVER);
  file('package.json', JSON.stringify({ name: 'env-app', main: 'server.mjs' }));
  file('clones.json', JSON.stringify({ env: { GREETING: 'hello', LIMIT: 20 } }));
  file(
    'package-lock.json',
    JSON.stringify({
      lockfileVersion: 3,
      packages: {
        '': { name: 'env-app' },
        'node_modules/prod-pkg': { version: '1.0.0' },
        'node_modules/dev-pkg': { version: '1.0.0', dev: true },
      },
    }),
  );
  for (const name of ['prod-pkg', 'dev-pkg']) {
    file(`node_modules/${name}/package.json`, `{"name":"${name}","type":"module","main":"index.js"}`);
    file(`node_modules/${name}/index.js`, `export const word = '${name}';\n`);
  }
  const up = await startFleet({
    appDir: app,
    home: join(dir, '.clones'),
    clones: 1,
    port: 0,
    env: { PATH: process.env.PATH, GREETING: 'from-host', HOST_ONLY: 'host' },
    releaseEnv: { LIMIT: '5' },
    logger: pino({ level: 'silent' }),
    supervisor: { stopGrace: 1000 },
  });
  try {
    const r = await get(up.address.port, '/env');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), {
      GREETING: 'hello',
      LIMIT: '5',
      HOST_ONLY: 'host',
      secret: true,
      word: 'prod-pkg',
      dev: 'missing',
    });
    const manifest = readRelease(up.fleet.paths, up.runtime.release).manifest;
    assert.deepEqual(manifest.env, { GREETING: 'hello', LIMIT: '5' });
  } finally {
    await up.stop();
  }
});
