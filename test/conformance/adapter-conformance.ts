import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { SessionOptions } from '../../src/session/index.ts';
import { IdSigner, newSessionId } from '../../src/session/session-id.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { freePort } from '../harness/free-port.ts';
import { NO_HANG_MS, SECRET } from '../harness/session-app.ts';

/** A framework app the suite drives; it listens on 127.0.0.1 and port 0. */
export interface AdapterApp {
  url: string;
  close(): Promise<void>;
}

/**
 * One framework adapter as the suite sees it. `start` builds an app of that framework with these routes:
 *   GET  /none        never touches the session; answers text 'ok'
 *   GET  /get         `await session.load()`; answers { id, data }
 *   GET  /peek        reads `session.n` without load (eager mode); answers { n }
 *   POST /set?k=&v=   sets key k to JSON v without loading; answers { ok: true }
 *   POST /incr?k=     `session.update` adding one to k; answers { value }
 *   POST /regenerate  answers { id } (the new id)
 *   POST /destroy     answers { ok: true }
 * Session errors must reach the client as the adapter answers them (for Express, with `expressErrors()`).
 */
export interface AdapterUnderTest {
  name: string;
  start(options: SessionOptions): Promise<AdapterApp>;
}

const OUTAGE_CODES = ['CLONES_SESSION_STORE_UNAVAILABLE', 'CLONES_SESSION_STORE_TIMEOUT'];

let stores = 0;

/** A session cookie signed with the test secret, naming a session that no store holds. */
export function signedCookie(name = 'clones.sid'): string {
  return `${name}=${new IdSigner([SECRET]).sign(newSessionId())}`;
}

/** A Redis URL on a loopback port nobody listens on: every store call fails. */
export async function deadRedisUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

/** Asserts the fail-closed answer: 503, JSON `{ error: { code } }` with an outage code. */
export function assertOutage(
  res: { status: number; body: { error?: { code?: string } } | undefined; headers: Headers },
  label: string,
): void {
  assert.equal(res.status, 503, `${label}: status`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${label}: content-type`);
  assert.ok(
    OUTAGE_CODES.includes(res.body?.error?.code ?? ''),
    `${label}: body ${JSON.stringify(res.body)} has an outage code`,
  );
}

/**
 * What every framework adapter must do over real HTTP: cookie round trip, eager mode, atomic update, regenerate,
 * destroy, laziness, and the store-outage policy (fail-closed 503 JSON within the store timeout, or anonymous).
 */
export function adapterConformance(adapter: AdapterUnderTest): void {
  describe(`${adapter.name} adapter`, () => {
    const apps: AdapterApp[] = [];
    const start = async (options: SessionOptions = {}) => {
      const app = await adapter.start({
        secret: SECRET,
        store: `memory:adapter-${adapter.name}-${++stores}`,
        ...options,
      });
      apps.push(app);
      return app;
    };
    after(async () => {
      for (const app of apps) await app.close();
    });

    test('set then read across requests (cookie round trip)', async () => {
      const app = await start();
      const c = new CookieClient(app.url);
      const set = await c.post('/set?k=user&v=%22ada%22');
      assert.equal(set.status, 200);
      assert.equal(set.setCookies.length, 1, 'the first write sets the session cookie');
      assert.match(set.setCookies[0]!, /^clones\.sid=[^;]+; .*HttpOnly/i);
      await c.post('/set?k=cart&v=%5B1%2C2%5D');
      const got = await c.get('/get');
      assert.equal(got.status, 200);
      assert.deepEqual(got.body.data, { user: 'ada', cart: [1, 2] });
      assert.equal(typeof got.body.id, 'string');
      const other = new CookieClient(app.url);
      assert.deepEqual((await other.get('/get')).body.data, {}, 'another browser sees nothing');
    });

    test('a lazy route sets no cookie, with or without a session', async () => {
      const app = await start();
      const c = new CookieClient(app.url);
      const none = await c.get('/none');
      assert.equal(none.status, 200);
      assert.deepEqual(none.setCookies, []);
      await c.post('/set?k=a&v=1');
      const again = await c.get('/none');
      assert.equal(again.body, 'ok');
      assert.deepEqual(again.setCookies, []);
      const read = await c.get('/get');
      assert.deepEqual(read.setCookies, [], 'reading a fresh session sends no cookie either');
    });

    test('eager: property reads work without load', async () => {
      const app = await start({ eager: true });
      const c = new CookieClient(app.url);
      assert.deepEqual((await c.get('/peek')).body, { n: null }, 'no cookie: an empty session');
      await c.post('/set?k=n&v=41');
      const peek = await c.get('/peek');
      assert.equal(peek.status, 200);
      assert.deepEqual(peek.body, { n: 41 });
    });

    test('update increments atomically, sequential and concurrent', async () => {
      const app = await start();
      const c = new CookieClient(app.url);
      assert.deepEqual((await c.post('/incr?k=n')).body, { value: 1 });
      for (let i = 0; i < 4; i++) await c.post('/incr?k=n');
      const cookie = c.cookieHeader();
      await Promise.all(Array.from({ length: 20 }, () => c.post('/incr?k=n', { cookie })));
      assert.deepEqual((await c.get('/get')).body.data, { n: 25 });
    });

    test('regenerate: new id, same data, old id dead', async () => {
      const app = await start();
      const c = new CookieClient(app.url);
      await c.post('/set?k=role&v=%22admin%22');
      const before = (await c.get('/get')).body.id;
      const oldCookie = c.cookieHeader();
      const regen = await c.post('/regenerate');
      assert.equal(regen.status, 200);
      assert.equal(regen.setCookies.length, 1, 'a new cookie is sent');
      assert.notEqual(regen.body.id, before);
      const after = await c.get('/get');
      assert.equal(after.body.id, regen.body.id);
      assert.deepEqual(after.body.data, { role: 'admin' });
      const stale = await c.get('/get', { cookie: oldCookie });
      assert.deepEqual(stale.body.data, {}, 'the old id no longer names a session');
    });

    test('destroy: the cookie is cleared and the session is gone', async () => {
      const app = await start();
      const c = new CookieClient(app.url);
      await c.post('/set?k=a&v=1');
      const oldCookie = c.cookieHeader();
      const destroyed = await c.post('/destroy');
      assert.equal(destroyed.status, 200);
      assert.equal(destroyed.setCookies.length, 1);
      assert.match(destroyed.setCookies[0]!, /Max-Age=0/i);
      assert.equal(c.jar.size, 0);
      assert.deepEqual((await c.get('/get', { cookie: oldCookie })).body.data, {});
      await c.post('/set?k=late&v=1', { cookie: oldCookie });
      assert.deepEqual(
        (await c.get('/get', { cookie: oldCookie })).body.data,
        {},
        'a late write does not revive it',
      );
    });

    describe('store outage', () => {
      test('fail-closed: the request that loads the session gets 503 JSON within ~2 s', async () => {
        const app = await start({ store: await deadRedisUrl(), storeTimeout: 500 });
        const c = new CookieClient(app.url);
        const cookie = signedCookie();
        for (const [method, path] of [
          ['GET', '/get'],
          ['POST', '/incr?k=n'],
        ] as const) {
          const started = Date.now();
          const res = await c.request(method, path, { cookie });
          const took = Date.now() - started;
          assertOutage(res, `${method} ${path}`);
          assert.ok(took < NO_HANG_MS, `${method} ${path} answered in ${took} ms`);
          assert.deepEqual(res.setCookies, []);
        }
        const none = await c.get('/none', { cookie });
        assert.equal(none.status, 200, 'a route that never touches the session still works');
      });

      test('fail-closed in eager mode: the middleware answers 503 JSON', async () => {
        const app = await start({ store: await deadRedisUrl(), storeTimeout: 500, eager: true });
        const c = new CookieClient(app.url);
        const started = Date.now();
        const res = await c.get('/peek', { cookie: signedCookie() });
        assertOutage(res, 'GET /peek (eager)');
        assert.ok(Date.now() - started < NO_HANG_MS);
      });

      test("onStoreError 'anonymous': 200 and no session", async () => {
        const app = await start({
          store: await deadRedisUrl(),
          storeTimeout: 500,
          onStoreError: 'anonymous',
        });
        const c = new CookieClient(app.url);
        const cookie = signedCookie();
        const started = Date.now();
        const got = await c.get('/get', { cookie });
        assert.ok(Date.now() - started < NO_HANG_MS);
        assert.equal(got.status, 200);
        assert.deepEqual(got.body.data, {});
        assert.deepEqual(got.setCookies, []);
        const set = await c.post('/set?k=a&v=1', { cookie });
        assert.equal(set.status, 200);
        assert.deepEqual(set.setCookies, [], 'nothing is saved while the store is down');
      });
    });
  });
}
