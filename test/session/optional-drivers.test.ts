import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

// An honest "not installed": a copy of the sources next to a node_modules that links every installed package
// except the ones left out, so Node's own resolution fails exactly as it would in an app that never ran
// `npm install ioredis`. No loader tricks, no mocks.
const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let app: string;

const LEFT_OUT = new Set(['ioredis', 'pg', '@aws-sdk/client-dynamodb']);

before(async () => {
  app = await mkdtemp(join(tmpdir(), 'clones-no-drivers-'));
  await cp(join(root, 'src'), join(app, 'src'), { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
  const modules = join(app, 'node_modules');
  await mkdir(modules);
  for (const name of await readdir(join(root, 'node_modules'))) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      await mkdir(join(modules, name));
      for (const inner of await readdir(join(root, 'node_modules', name))) {
        if (LEFT_OUT.has(`${name}/${inner}`)) continue;
        await symlink(join(root, 'node_modules', name, inner), join(modules, name, inner));
      }
    } else if (name === 'better-sqlite3') {
      // A copy without its build output: what an install whose native build failed leaves behind.
      await cp(join(root, 'node_modules', name), join(modules, name), {
        recursive: true,
        filter: (src) => !src.includes(`${name}/build`),
      });
    } else if (!LEFT_OUT.has(name)) {
      await symlink(join(root, 'node_modules', name), join(modules, name));
    }
  }
});

after(async () => {
  if (app) await rm(app, { recursive: true, force: true });
});

/** Runs `body` as an ES module inside the copy and returns what it printed as JSON. */
async function inApp(body: string): Promise<unknown> {
  const file = join(app, `probe-${Math.random().toString(36).slice(2)}.ts`);
  await writeFile(file, body);
  const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: app, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const SECRET = 'x'.repeat(32);
const probe = (setup: string) => `
const out = (err) => console.log(JSON.stringify({ code: err?.code, message: err?.message }));
try { ${setup} ; out(undefined); } catch (err) { out(err); }
`;

test('the copy really lacks the drivers (the test can fail)', async () => {
  const r = (await inApp(probe(`await import('ioredis')`))) as { message: string };
  assert.match(r.message, /Cannot find package 'ioredis'/);
});

for (const [url, pkg] of [
  ['redis://127.0.0.1:1', 'ioredis'],
  ['redis+cluster://127.0.0.1:1', 'ioredis'],
  ['postgres://u@127.0.0.1:1/db', 'pg'],
  ['dynamodb://t?region=us-east-1&endpoint=http://127.0.0.1:1', '@aws-sdk/client-dynamodb'],
] as const) {
  test(`a ${url.split(':')[0]} session store without ${pkg}: CLONES_DRIVER_MISSING naming npm install ${pkg}`, async () => {
    const r = await inApp(
      probe(`
      const { sessions } = await import('./src/session/index.ts');
      const s = sessions({ secret: '${SECRET}', store: '${url}' });
      await s.engine.store();`),
    );
    assert.deepEqual(r, {
      code: 'CLONES_DRIVER_MISSING',
      message: `the ${url.split('//')[0]}// session store needs the "${pkg}" package, which is not installed: run \`npm install ${pkg}\``,
    });
  });
}

test('a request on a store whose driver is missing is answered with the coded JSON error, not a crash', async () => {
  const r = (await inApp(`
    import http from 'node:http';
    const { sessions } = await import('./src/session/index.ts');
    const s = sessions({ secret: '${SECRET}', store: 'redis://127.0.0.1:1' });
    const server = http.createServer(s.node(async (req, res) => { req.session.n = 1; res.end('ok'); }));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const res = await fetch('http://127.0.0.1:' + server.address().port + '/');
    console.log(JSON.stringify({ status: res.status, body: await res.json() }));
    server.close();`)) as { status: number; body: { error: { code: string; message: string } } };
  assert.equal(r.status, 500);
  assert.equal(r.body.error.code, 'CLONES_DRIVER_MISSING');
  assert.match(r.body.error.message, /npm install ioredis/);
});

test('the data layer and fromConnectRedis without pg / ioredis: the same coded error', async () => {
  const pg = await inApp(
    probe(`
    const { database } = await import('./src/data/index.ts');
    database({ primary: 'postgres://u@127.0.0.1:1/db', replicas: [] });`),
  );
  assert.deepEqual(pg, {
    code: 'CLONES_DRIVER_MISSING',
    message: 'a postgres:// database needs the "pg" package, which is not installed: run `npm install pg`',
  });
  const legacy = (await inApp(
    probe(`
    const { fromConnectRedis } = await import('./src/session/index.ts');
    const old = fromConnectRedis({ url: 'redis://127.0.0.1:1', secret: 'keyboard cat' });
    await old.read('abc');`),
  )) as { code: string; message: string };
  // read() reports a store outage as 503; the cause must still be the missing driver.
  assert.match(legacy.message, /npm install ioredis/);
});

test('the SQLite default with a failed native build: CLONES_DRIVER_BROKEN saying how to fix it', async () => {
  const r = (await inApp(
    probe(`
    const { sessions } = await import('./src/session/index.ts');
    const s = sessions({ secret: '${SECRET}', store: 'sqlite:' + ${JSON.stringify(join(tmpdir(), 'clones-broken.db'))} });
    await s.engine.store();`),
  )) as { code: string; message: string };
  assert.equal(r.code, 'CLONES_DRIVER_BROKEN');
  assert.match(r.message, /npm rebuild better-sqlite3/);
});

test('an app using only memory: and the sealed cookie loads with none of the drivers', async () => {
  const r = await inApp(
    probe(`
    const { sessions } = await import('./src/session/index.ts');
    const s = sessions({ secret: '${SECRET}', store: 'cookie:' });
    const m = sessions({ secret: '${SECRET}', store: 'memory:' });
    await m.engine.store();`),
  );
  assert.deepEqual(r, {}); // no error: JSON drops the undefined code and message
});
