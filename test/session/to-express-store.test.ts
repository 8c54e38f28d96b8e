import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import { openStore } from '../../src/session/stores/open-store.ts';
import type { SessionStore } from '../../src/session/stores/store.ts';
import { toExpressStore } from '../../src/session/to-express-store.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type MemcachedServer, startMemcached } from '../harness/memcached-server.ts';

// express-session itself, over a clones store (memcached here: a real server). Loaded untyped: its types
// re-declare req.session for the whole program, clashing with the clones express adapter's declaration.
// biome-ignore lint/suspicious/noExplicitAny: see above
const session: any = createRequire(import.meta.url)('express-session');
let mc: MemcachedServer;
let store: SessionStore;
let base = '';
let close: () => Promise<void> = async () => {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  mc = await startMemcached();
  store = await openStore(mc.url, { timeoutMs: 2000, prefix: 'express' });
  const app = express();
  app.use(
    session({
      secret: 'an-express-session-secret-of-32-bytes!',
      resave: false,
      saveUninitialized: false,
      store: toExpressStore(store, session.Store),
      cookie: { maxAge: 60_000 },
    }),
  );
  app.post('/set', (req, res) => {
    const s = (req as unknown as { session: Record<string, unknown> }).session;
    s[String(req.query.k)] = JSON.parse(String(req.query.v));
    res.json({ ok: true });
  });
  app.post('/slow-set', async (req, res) => {
    await sleep(300);
    (req as unknown as { session: Record<string, unknown> }).session.late = true;
    res.json({ ok: true });
  });
  app.get('/get', (req, res) => {
    const { cookie: _c, ...data } = (req as unknown as { session: Record<string, unknown> }).session;
    res.json({ data });
  });
  type Ended = { session: Record<'destroy' | 'regenerate', (cb: () => void) => void> };
  app.post('/destroy', (req, res) => (req as unknown as Ended).session.destroy(() => res.json({ ok: true })));
  app.post('/regenerate', (req, res) =>
    (req as unknown as Ended).session.regenerate(() => res.json({ ok: true })),
  );
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((r) => server.close(() => r()));
});
after(async () => {
  await close();
  await store.close();
  await mc.stop();
});

test('express-session keeps its sessions in the clones store', async () => {
  const c = new CookieClient(base);
  await c.post('/set?k=user&v=%22ada%22');
  await c.post(`/set?k=cart&v=${encodeURIComponent('[1,2]')}`);
  const got = await c.get('/get');
  assert.deepEqual(got.body.data, { user: 'ada', cart: [1, 2] });
  assert.match([...c.jar.values()][0]!, /^s%3A/, "the cookie is express-session's own s:<sid>.<sig>");
});

test('a save in flight when the session is destroyed does not bring it back (tombstone)', async () => {
  const c = new CookieClient(base);
  await c.post('/set?k=user&v=%22ada%22');
  const cookie = c.cookieHeader();
  const slow = new CookieClient(base).post('/slow-set', { cookie });
  await sleep(100);
  await c.post('/destroy');
  await slow;
  const after = await new CookieClient(base).get('/get', { cookie });
  assert.deepEqual(after.body.data, {}, 'the destroyed session stayed destroyed');
});

test('regenerate: the old id names nothing afterwards', async () => {
  const c = new CookieClient(base);
  await c.post('/set?k=a&v=1');
  const old = c.cookieHeader();
  await c.post('/regenerate');
  assert.deepEqual((await new CookieClient(base).get('/get', { cookie: old })).body.data, {});
});
