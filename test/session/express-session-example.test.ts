import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';

// express-session's own README examples (view counter; login with regenerate/save callbacks and logout), with
// only the import (and the too-short secret, and the port) changed, run under Express 5 in their own process
// against real stores.
const fixtures = resolve(import.meta.dirname, 'fixtures');
const SECRET = 'an example secret of at least 32 bytes!!';
let redis: RedisServer;
let pg: PostgresCluster;
let dir: string;
const children: ChildProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clones-example-'));
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
});

after(async () => {
  for (const child of children) child.kill();
  await Promise.all([redis?.stop(), pg?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(
  file: string,
  env: Record<string, string>,
): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(fixtures, file)], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  for await (const chunk of child.stdout!) {
    out += chunk;
    const m = /listening (\d+)/.exec(out);
    if (m) return { base: `http://127.0.0.1:${m[1]}`, child };
  }
  throw new Error(`the example did not start: ${err}`);
}

test('with express-session\'s "keyboard cat" secret, the app stops at start with a coded error saying what to do', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(fixtures, 'express-session-views.js')], {
    env: { ...process.env, PORT: '0', SESSION_STORE: `sqlite:${join(dir, 'weak.db')}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const [code] = await once(child, 'exit');
  assert.notEqual(code, 0);
  assert.match(err, /CLONES_SESSION_SECRET_WEAK/);
  assert.match(err, /openssl rand -base64 32/);
});

/** A request whose redirect is not followed, so its Set-Cookie reaches the jar first, as in a browser. */
async function noFollow(browser: CookieClient, method: string, path: string, body?: string) {
  const res = await fetch(browser.base + path, {
    method,
    redirect: 'manual',
    headers: {
      cookie: browser.cookieHeader(),
      ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    ...(body ? { body } : {}),
  });
  browser.apply(res.headers.getSetCookie());
  await res.arrayBuffer();
  return res;
}

const stores = (): Record<string, string> => ({
  sqlite: `sqlite:${join(dir, 'sessions.db')}`,
  redis: redis.url,
  postgres: pg.primaryUrl,
});

for (const name of ['sqlite', 'redis', 'postgres']) {
  describe(`express-session README examples on ${name}`, () => {
    test('view counter: nested counts per path, kept across requests', async () => {
      const { base, child } = await run('express-session-views.js', {
        SESSION_STORE: stores()[name]!,
        EXAMPLE_SECRET: SECRET,
      });
      const browser = new CookieClient(base);
      const first = await browser.get('/foo');
      assert.equal(first.body, 'you viewed this page 1 times');
      assert.equal(first.setCookies.length, 1, 'saveUninitialized: the new session gets its cookie');
      assert.equal((await browser.get('/foo')).body, 'you viewed this page 2 times');
      assert.equal((await browser.get('/bar')).body, 'you viewed this page 1 times');
      assert.equal((await browser.get('/foo')).body, 'you viewed this page 3 times');
      const other = new CookieClient(base);
      assert.equal((await other.get('/foo')).body, 'you viewed this page 1 times');
      child.kill();
    });

    test('login (regenerate + save callbacks), then logout: new ids, the old ones dead', async () => {
      const { base, child } = await run('express-session-login.js', {
        SESSION_STORE: stores()[name]!,
        EXAMPLE_SECRET: SECRET,
      });
      const browser = new CookieClient(base);
      assert.match((await browser.get('/')).body, /<form action="\/login"/);
      const anonymous = browser.cookieHeader();
      const login = await noFollow(browser, 'POST', '/login', 'user=alice&pass=x');
      assert.equal(login.status, 302);
      assert.equal(login.headers.get('location'), '/');
      assert.equal((await browser.get('/')).body, 'hello, alice! <a href="/logout">Logout</a>');
      const loggedIn = browser.cookieHeader();
      assert.notEqual(loggedIn, anonymous, 'regenerate gave a new id at login');
      assert.match(
        (await new CookieClient(base).get('/', { cookie: anonymous })).body,
        /<form/,
        'the pre-login id is dead',
      );
      assert.equal((await noFollow(browser, 'GET', '/logout')).status, 302);
      assert.match((await browser.get('/')).body, /<form/);
      assert.notEqual(browser.cookieHeader(), loggedIn);
      assert.match(
        (await new CookieClient(base).get('/', { cookie: loggedIn })).body,
        /<form/,
        'the logged-in id is dead',
      );
      child.kill();
    });
  });
}
