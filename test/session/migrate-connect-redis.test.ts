import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { createClient } from 'redis';
import { fromConnectRedis, unsignExpressCookie } from '../../src/session/from-connect-redis.ts';
import type { SessionOptions } from '../../src/session/index.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { startSessionApp } from '../harness/session-app.ts';

// The old app is express-session + connect-redis 9 (on a node-redis client) themselves. Both are loaded
// untyped: their types re-declare req.session for the whole program, clashing with the clones adapter's.
const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: see above
const expressSession: any = require('express-session');
// biome-ignore lint/suspicious/noExplicitAny: see above
const { RedisStore }: { RedisStore: any } = require('connect-redis');

const OLD_SECRET = 'the-old-express-session-secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let client: ReturnType<typeof createClient>;
let oldBase = '';
let closeOld: () => Promise<void> = async () => {};
const closers: Array<() => Promise<void>> = [];

/** A clones app on the same Redis that adopts connect-redis sessions. */
async function clonesApp(
  migration: Partial<Parameters<typeof fromConnectRedis>[0]> = {},
  options: SessionOptions = {},
) {
  const source = migration.client ? {} : { url: redis.url };
  const migrateFrom = fromConnectRedis({ ...source, secret: OLD_SECRET, ...migration });
  const app = await startSessionApp({ store: redis.url, migrateFrom, ...options });
  closers.push(() => app.close());
  return app;
}

/** Logs in on the old app: returns the browser holding its `connect.sid` cookie and the old sid. */
async function oldLogin(data: Record<string, unknown> = { userId: 'u1', cart: ['a', 'b'] }) {
  const browser = new CookieClient(oldBase);
  await browser.post('/login', {
    body: JSON.stringify(data),
    headers: { 'content-type': 'application/json' },
  });
  const value = browser.jar.get('connect.sid');
  assert.ok(value, 'express-session set its cookie');
  const sid = unsignExpressCookie(value, [OLD_SECRET]);
  assert.ok(sid, 'the old cookie is signed with the old secret');
  assert.ok(await client.exists(`sess:${sid}`), 'connect-redis wrote sess:<sid>');
  return { browser, sid, cookie: `connect.sid=${value}` };
}

before(async () => {
  redis = await startRedis();
  client = createClient({ url: redis.url });
  await client.connect();
  const app = express();
  app.use(express.json());
  app.use(
    expressSession({
      secret: OLD_SECRET,
      resave: false,
      saveUninitialized: false,
      store: new RedisStore({ client }),
      cookie: { maxAge: 86_400_000 },
    }),
  );
  type OldReq = { session: Record<string, unknown> };
  app.post('/login', (req, res) => {
    Object.assign((req as unknown as OldReq).session, req.body);
    res.json({ ok: true });
  });
  app.get('/whoami', (req, res) => {
    const { cookie: _c, ...data } = (req as unknown as OldReq).session;
    res.json({ data });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  oldBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeOld = () => new Promise((r) => server.close(() => r()));
});

after(async () => {
  for (const close of closers) await close();
  await closeOld();
  await client.quit();
  await redis.stop();
});

describe('migration from express-session + connect-redis', () => {
  test('a request with only the old cookie gets the old data as a clones session; the old key is deleted', async () => {
    const a = await clonesApp();
    const { sid, cookie } = await oldLogin();
    const browser = new CookieClient(a.url);
    browser.jar.set('connect.sid', cookie.slice('connect.sid='.length)); // the browser still holds it
    const got = await browser.get('/get');
    assert.deepEqual(got.body.data, { userId: 'u1', cart: ['a', 'b'] }, 'no `cookie` member, the rest as is');
    assert.ok(browser.jar.has('clones.sid'), 'the clones cookie is set');
    assert.ok(!browser.jar.has('connect.sid'), 'the old cookie is cleared (Max-Age=0)');
    assert.ok(got.setCookies.some((h) => /^connect\.sid=;.*Max-Age=0/i.test(h)));
    assert.equal(await client.exists(`sess:${sid}`), 0, 'sess:<sid> deleted once migrated');
    const later = await new CookieClient(a.url).get('/get', { cookie: browser.cookieHeader() });
    assert.deepEqual(later.body.data, { userId: 'u1', cart: ['a', 'b'] }, 'the clones cookie alone names it');
    const other = await clonesApp();
    const elsewhere = await new CookieClient(other.url).get('/get', { cookie: browser.cookieHeader() });
    assert.deepEqual(elsewhere.body.data, { userId: 'u1', cart: ['a', 'b'] }, 'on another clone too');
  });

  test('a write without a load, first request after the move, keeps the old data and adds the key', async () => {
    const a = await clonesApp();
    const { cookie } = await oldLogin();
    const browser = new CookieClient(a.url);
    await browser.post('/set?k=theme&v=%22dark%22', { cookie });
    const got = await browser.get('/get');
    assert.deepEqual(got.body.data, { userId: 'u1', cart: ['a', 'b'], theme: 'dark' });
  });

  test('concurrent requests carrying the old cookie all land on one clones session', async () => {
    const a = await clonesApp();
    const { cookie } = await oldLogin({ userId: 'u2' });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => new CookieClient(a.url).post(`/set?k=k${i}&v=${i}`, { cookie })),
    );
    const ids = new Set(
      answers.map((r) => r.setCookies.find((h) => h.startsWith('clones.sid='))?.split(';')[0]),
    );
    assert.equal(ids.size, 1, `one clones session for all, got ${[...ids].join(' ')}`);
    const [clonesCookie] = [...ids];
    const got = await new CookieClient(a.url).get('/get', { cookie: clonesCookie! });
    const expected = {
      userId: 'u2',
      ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, i])),
    };
    assert.deepEqual(got.body.data, expected, 'no write lost');
  });

  test('after the grace period the old cookie names nothing', async () => {
    const a = await clonesApp({ graceMs: 300 });
    const { cookie } = await oldLogin();
    assert.deepEqual((await new CookieClient(a.url).get('/get', { cookie })).body.data.userId, 'u1');
    assert.deepEqual(
      (await new CookieClient(a.url).get('/get', { cookie })).body.data.userId,
      'u1',
      'in grace',
    );
    await sleep(400);
    const replay = await new CookieClient(a.url).get('/get', { cookie });
    assert.deepEqual(replay.body.data, {});
  });

  test('remove: false leaves sess:<sid> (old app versions keep serving it); a logout still cannot be undone', async () => {
    const a = await clonesApp({ remove: false, client });
    const { browser: old, sid, cookie } = await oldLogin();
    const browser = new CookieClient(a.url);
    assert.equal((await browser.get('/get', { cookie })).body.data.userId, 'u1');
    assert.equal(await client.exists(`sess:${sid}`), 1, 'the old key is left');
    assert.equal((await old.get('/whoami')).body.data.userId, 'u1', 'the old app still serves it');
    await browser.post('/destroy');
    const replay = await new CookieClient(a.url).get('/get', { cookie });
    assert.deepEqual(replay.body.data, {}, 'the tombstone stops a second migration');
  });

  test('a logout before any migration retires the old session', async () => {
    const a = await clonesApp();
    const { sid, cookie } = await oldLogin();
    const out = await new CookieClient(a.url).post('/destroy', { cookie });
    assert.ok(out.setCookies.some((h) => /^connect\.sid=;.*Max-Age=0/i.test(h)));
    assert.equal(await client.exists(`sess:${sid}`), 0);
    assert.deepEqual((await new CookieClient(a.url).get('/get', { cookie })).body.data, {});
  });

  test('an old cookie with a bad signature or another secret is ignored and the old key left alone', async () => {
    const a = await clonesApp({ secret: 'some-other-express-secret' });
    const { sid, cookie } = await oldLogin();
    const got = await new CookieClient(a.url).get('/get', { cookie });
    assert.deepEqual(got.body.data, {});
    assert.deepEqual(got.setCookies, []);
    assert.equal(await client.exists(`sess:${sid}`), 1);
    const rotated = await clonesApp({ secret: ['some-other-express-secret', OLD_SECRET] });
    const tampered = `${cookie.slice(0, -1)}${cookie.endsWith('A') ? 'B' : 'A'}`;
    assert.deepEqual((await new CookieClient(rotated.url).get('/get', { cookie: tampered })).body.data, {});
    const moved = await new CookieClient(rotated.url).get('/get', { cookie });
    assert.equal(moved.body.data.userId, 'u1', 'any secret of the list verifies, as in express-session');
  });

  test('a clones cookie wins over an old one; migrateFrom is refused for sealed cookies', async () => {
    const a = await clonesApp();
    const browser = new CookieClient(a.url);
    await browser.post('/set?k=mine&v=1');
    const { sid, cookie } = await oldLogin();
    const got = await browser.get('/get', { cookie: `${browser.cookieHeader()}; ${cookie}` });
    assert.deepEqual(got.body.data, { mine: 1 });
    assert.equal(await client.exists(`sess:${sid}`), 1, 'not migrated');
    await assert.rejects(clonesApp({}, { store: 'cookie:' }), { code: 'CLONES_INVALID_OPTION' });
  });
});
