import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SessionOptions } from '../../src/session/index.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { SECRET, startSessionApp } from '../harness/session-app.ts';

/** One way of keeping sessions, as the conformance suite sees it. */
export interface SessionBackend {
  name: string;
  /** Starts what the backend needs and returns the store URL; `cleanup` stops it. */
  setup(): Promise<{ url: string; cleanup(): Promise<void> }>;
  /**
   * A sealed cookie keeps the session in the browser: concurrent requests of one browser cannot merge their
   * changes (the last response's cookie wins), so the concurrency tests do not apply to it.
   */
  clientSide?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The session semantics every backend must keep, driven over real HTTP through the node:http adapter:
 * laziness, per-key merge, atomic update, tombstones, throttled TTL-only touch, idle and absolute timeouts,
 * regeneration, signed ids and rotation, cookie attributes, and refusal of bad cookies.
 */
export function sessionConformance(backend: SessionBackend): void {
  describe(`${backend.name}: session conformance`, () => {
    let url = '';
    let cleanup: () => Promise<void> = async () => {};
    const apps: Array<{ close(): Promise<void> }> = [];
    const app = async (options: SessionOptions = {}) => {
      const started = await startSessionApp({ store: url, ...options });
      apps.push(started);
      return started;
    };
    before(async () => {
      ({ url, cleanup } = await backend.setup());
    });
    after(async () => {
      for (const a of apps) await a.close();
      await cleanup();
    });

    test('lazy: a request that never touches the session does no store I/O and sets no cookie', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      const none = await c.get('/none');
      assert.deepEqual(none.setCookies, []);
      const peek = await c.get('/peek');
      assert.deepEqual(peek.body.data, {});
      assert.deepEqual(peek.setCookies, []);
      await c.post('/set?k=a&v=1');
      assert.equal(c.jar.size, 1, 'a write creates the session and sets its cookie');
      const before = await a.s.engine.metrics();
      const again = await c.get('/none');
      assert.deepEqual(again.setCookies, []);
      assert.deepEqual(
        await a.s.engine.metrics(),
        before,
        'no store call for a request that ignores the session',
      );
    });

    test('data persists across requests and across app instances (clones)', async () => {
      const a = await app();
      const b = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      await c.post(`/set?k=cart&v=${encodeURIComponent('[1,2]')}`);
      const onB = await new CookieClient(b.url).get('/get', { cookie: c.cookieHeader() });
      assert.deepEqual(onB.body.data, { user: 'ada', cart: [1, 2] });
    });

    test('write only what changed: reading a session writes nothing', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=a&v=1');
      const before = await a.s.engine.metrics();
      const read = await c.get('/get');
      assert.deepEqual(read.body.data, { a: 1 });
      assert.deepEqual(read.setCookies, [], 'no cookie re-sent for an unchanged session');
      const after = await a.s.engine.metrics();
      assert.equal(after.patch, before.patch);
      assert.equal(after.create, before.create);
    });

    test('nested changes (push onto an array) are saved', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/push?k=cart&v=1');
      await c.post('/push?k=cart&v=2');
      assert.deepEqual((await c.get('/get')).body.data.cart, [1, 2]);
    });

    test('regenerate gives a new id, keeps the data and kills the old id', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const old = c.cookieHeader();
      const oldId = (await c.get('/get')).body.id;
      const r = await c.post('/regenerate');
      assert.notEqual(r.body.id, oldId);
      assert.deepEqual((await c.get('/get')).body.data, { user: 'ada' });
      if (backend.clientSide) {
        // A sealed cookie cannot be recalled from another browser; in this browser the tombstone kills it,
        // and elsewhere the old seal only ever held what the session held before the rotation.
        const jar = c.clone();
        jar.jar.set([...c.jar.keys()][0]!, old.split('=').slice(1).join('='));
        assert.deepEqual((await jar.get('/get')).body.data, {}, 'the old seal is dead in this browser');
      } else {
        const stale = await new CookieClient(a.url).get('/get', { cookie: old });
        assert.deepEqual(stale.body.data, {}, 'the old id names no session');
      }
    });

    test('destroy ends the session; the old cookie names nothing', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const old = c.cookieHeader();
      await c.post('/destroy');
      assert.deepEqual((await c.get('/get')).body.data, {});
      if (!backend.clientSide) {
        assert.deepEqual((await new CookieClient(a.url).get('/get', { cookie: old })).body.data, {});
      }
    });

    test('tombstones: a save or touch in flight when the session is destroyed does not bring it back', async () => {
      const a = await app({ touchAfter: 0 });
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const slowSave = c.post('/set?k=late&v=1&load=1&wait=300');
      const slowTouch = c.get('/touch?wait=300');
      await sleep(100);
      await c.post('/destroy');
      await Promise.all([slowSave, slowTouch]);
      assert.deepEqual((await c.get('/get')).body.data, {});
    });

    test('touch is throttled and TTL-only', async () => {
      const a = await app({ idleTimeout: 20_000, touchAfter: 0.1 }); // at most one touch per 2 s
      const c = new CookieClient(a.url);
      await c.post('/set?k=a&v=1');
      const m0 = await a.s.engine.metrics();
      const early = await c.get('/get');
      const m1 = await a.s.engine.metrics();
      assert.equal(m1.touch, m0.touch, 'no touch within touchAfter of the last one');
      assert.deepEqual(early.setCookies, []);
      await sleep(2100);
      const late = await c.get('/get');
      const m2 = await a.s.engine.metrics();
      if (backend.clientSide) {
        assert.equal(late.setCookies.length, 1, 'a sealed cookie is touched by re-sealing it');
      } else {
        assert.equal(m2.touch, m1.touch + 1, 'one touch once the throttle has passed');
        assert.equal(m2.patch, m1.patch, 'a touch never rewrites the data');
        assert.deepEqual(late.setCookies, []);
      }
      const m3 = await a.s.engine.metrics();
      await c.get('/get');
      assert.equal((await a.s.engine.metrics()).touch, m3.touch, 'and none right after');
    });

    test('idle timeout is enforced on the server', async () => {
      // Windows of seconds, not milliseconds: a busy CI machine delays each request by hundreds of ms.
      const a = await app({ idleTimeout: 2500, absoluteTimeout: 60_000, touchAfter: 0 });
      const c = new CookieClient(a.url);
      await c.post('/set?k=a&v=1');
      await sleep(1000);
      assert.deepEqual((await c.get('/get')).body.data, { a: 1 }, 'activity keeps it alive');
      await sleep(1000);
      assert.deepEqual((await c.get('/get')).body.data, { a: 1 });
      const old = c.cookieHeader();
      await sleep(2700);
      assert.deepEqual((await new CookieClient(a.url).get('/get', { cookie: old })).body.data, {});
    });

    test('absolute timeout is enforced on the server, whatever the activity', async () => {
      const a = await app({ idleTimeout: 2000, absoluteTimeout: 3500, touchAfter: 0 });
      const c = new CookieClient(a.url);
      const created = Date.now();
      await c.post('/set?k=a&v=1');
      const old = c.cookieHeader();
      for (let i = 0; i < 3; i++) {
        await sleep(500);
        assert.deepEqual((await c.get('/get')).body.data, { a: 1 });
      }
      // Active all along (each read slid the idle expiry), yet gone once the absolute timeout has passed.
      await sleep(Math.max(0, created + 3700 - Date.now()));
      const replayed = await new CookieClient(a.url).get('/get', { cookie: old });
      assert.deepEqual(replayed.body.data, {}, 'gone after the absolute timeout even though it was active');
    });

    test('ids: 256 random bits, cookie signed, tampering refused', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=a&v=1');
      const id = (await c.get('/get')).body.id as string;
      assert.equal(Buffer.from(id, 'base64url').length, 32);
      const [name, value] = [...c.jar][0]!;
      const flipped = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
      const tampered = await new CookieClient(a.url).get('/get', { cookie: `${name}=${flipped}` });
      assert.equal(tampered.status, 200);
      assert.deepEqual(tampered.body.data, {});
    });

    test('secret rotation: a cookie from the previous secret is accepted and re-issued with the new one', async () => {
      const newSecret = 'the-next-secret-that-is-also-32-bytes-long';
      const oldApp = await app();
      const c = new CookieClient(oldApp.url);
      await c.post('/set?k=a&v=1');
      const rotated = await app({ secret: [newSecret, SECRET] });
      const r = await new CookieClient(rotated.url).get('/get', { cookie: c.cookieHeader() });
      assert.deepEqual(r.body.data, { a: 1 });
      assert.equal(r.setCookies.length, 1, 're-issued under the newest secret');
      const onlyNew = await app({ secret: newSecret });
      const fresh = new CookieClient(onlyNew.url);
      fresh.apply(r.setCookies);
      assert.deepEqual((await fresh.get('/get')).body.data, { a: 1 });
    });

    test('a secret shorter than 32 bytes is refused at start', async () => {
      await assert.rejects(app({ secret: 'short' }), { code: 'CLONES_SESSION_SECRET_WEAK' });
    });

    test('cookie defaults: HttpOnly, SameSite=Lax, Path=/; Secure only over TLS or a trusted proxy', async () => {
      const a = await app();
      const plain = await new CookieClient(a.url).post('/set?k=a&v=1');
      const header = plain.setCookies[0]!;
      assert.match(header, /; HttpOnly/i);
      assert.match(header, /; SameSite=Lax/i);
      assert.match(header, /; Path=\//i);
      assert.doesNotMatch(header, /; Secure/i);
      const proxied = await new CookieClient(a.url).post('/set?k=a&v=1', {
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.match(proxied.setCookies[0]!, /; Secure/i, 'loopback is a trusted proxy by default');
      const untrusting = await app({ trustProxy: ['10.0.0.0/8'] });
      const spoofed = await new CookieClient(untrusting.url).post('/set?k=a&v=1', {
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.doesNotMatch(spoofed.setCookies[0]!, /; Secure/i, 'an untrusted peer cannot claim https');
    });

    test('bad cookies never give a 500 and are never accepted', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=a&v=1');
      const [name, value] = [...c.jar][0]!;
      const cases = [
        `${name}=${value}; ${name}=${value}`,
        `${name}=${value.slice(0, value.length >> 1)}`,
        `${name}=${'A'.repeat(5000)}`,
        `${name}=${encodeURIComponent('ünïcödé')}`,
        `${name}="${value}`,
        `${name}=`,
        `${name}=${value}.${value}`,
      ];
      for (const cookie of cases) {
        const r = await new CookieClient(a.url).get('/get', { cookie });
        assert.equal(r.status, 200, cookie.slice(0, 60));
        assert.deepEqual(r.body.data, {}, cookie.slice(0, 60));
      }
    });

    test('changes to different keys by concurrent requests all persist', {
      skip: skipClientSide(backend),
    }, async () => {
      const a = await app();
      const b = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=seed&v=0');
      const cookie = c.cookieHeader();
      await Promise.all(
        Array.from({ length: 32 }, (_, i) =>
          new CookieClient(i % 2 ? a.url : b.url).post(`/set?k=k${i}&v=${i}&load=1&wait=50`, { cookie }),
        ),
      );
      const data = (await c.get('/get')).body.data;
      for (let i = 0; i < 32; i++) assert.equal(data[`k${i}`], i, `k${i}`);
    });

    test('update(fn): 32 concurrent clients x 100 increments end at exactly 3,200', {
      skip: skipClientSide(backend),
    }, async () => {
      const a = await app();
      const b = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=n&v=0');
      const cookie = c.cookieHeader();
      await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const client = new CookieClient(i % 2 ? a.url : b.url);
          for (let j = 0; j < 100; j++) {
            const r = await client.post('/incr?k=n', { cookie });
            assert.equal(r.status, 200, JSON.stringify(r.body));
          }
        }),
      );
      assert.equal((await c.get('/get')).body.data.n, 3200);
    });
  });
}

function skipClientSide(backend: SessionBackend): string | false {
  return backend.clientSide
    ? 'a sealed cookie holds the session in the browser: concurrent requests cannot merge'
    : false;
}
