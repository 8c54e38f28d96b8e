import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sessions } from '../../src/session/index.ts';
import { sessionConformance } from '../conformance/session-conformance.ts';
import { type ByUserApp, checkLogOutEverywhere, startByUserApp } from '../harness/by-user-app.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { startRedis } from '../harness/redis-server.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

// The sealed cookie keeps the session in the browser: no store to start, and none to take down, so no store
// contract and no outage suite. What it does keep on a server is the revocation epoch of "log out everywhere".
sessionConformance({
  name: 'sealed cookie',
  clientSide: true,
  setup: async () => ({ url: 'cookie:', cleanup: async () => {} }),
});

// The whole Set-Cookie header is measured before it is sent: over 4,096 bytes the save fails with its own
// code where the session is saved, and the request gets that error, never a cookie the browser would drop.
it('a sealed cookie over 4,096 bytes is an error with its own code, raised at save', async () => {
  const app = await startSessionApp({ store: 'cookie:' });
  try {
    const c = new CookieClient(app.url);
    await c.post(`/set?k=small&v=${encodeURIComponent(JSON.stringify('x'.repeat(100)))}`);
    const before = c.cookieHeader();
    const fits = await c.post(`/set?k=big&v=${encodeURIComponent(JSON.stringify('y'.repeat(2500)))}`);
    assert.equal(fits.status, 200);
    const header = fits.setCookies.find((h) => h.startsWith('clones.session='))!;
    assert.ok(Buffer.byteLength(`Set-Cookie: ${header}`) <= 4096);
    const tooBig = await c.post(`/set?k=huge&v=${encodeURIComponent(JSON.stringify('z'.repeat(3500)))}`);
    assert.equal(tooBig.status, 500);
    assert.equal(tooBig.body.error.code, 'CLONES_SESSION_COOKIE_TOO_LARGE');
    assert.deepEqual(tooBig.setCookies, [], 'no cookie sent at all');
    const data = (await c.get('/get')).body.data;
    assert.equal(data.big.length, 2500, 'the session before the failed save is intact');
    assert.equal(data.huge, undefined);
    assert.notEqual(c.cookieHeader(), before);
  } finally {
    await app.close();
  }
});

describe('sessions by user where there is no per-user index', () => {
  it('sealed cookies without a revocation store answer CLONES_SESSION_BY_USER_UNSUPPORTED (501)', async () => {
    const s = sessions({ secret: 'a-test-secret-that-is-at-least-32-bytes', store: 'cookie:' });
    await assert.rejects(s.engine.listByUser('ada'), {
      code: 'CLONES_SESSION_BY_USER_UNSUPPORTED',
      status: 501,
    });
    await assert.rejects(s.engine.destroyByUser('ada'), { code: 'CLONES_SESSION_BY_USER_UNSUPPORTED' });
    await s.close();
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same browser (same cookies) sending its requests to another clone. */
function sameBrowserAt(browser: CookieClient, base: string): CookieClient {
  const other = new CookieClient(base);
  for (const [k, v] of browser.jar) other.jar.set(k, v);
  return other;
}

describe('sealed cookies, log out everywhere through a revocation epoch in SQLite', () => {
  let dir: string;
  let app: ByUserApp;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clones-revocations-'));
    app = await startByUserApp({
      store: 'cookie:',
      revocations: { store: `sqlite:${join(dir, 'revocations.db')}` },
    });
  });
  after(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs the same user out of 2 of 3 browsers; an in-flight save does not revive one', async () => {
    await checkLogOutEverywhere(app);
  });
});

describe('sealed cookies, revocation across two clones sharing Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let clone1: ByUserApp;
  let clone2: ByUserApp;
  const CACHE_MS = 300;
  before(async () => {
    redis = await startRedis();
    const options = {
      store: 'cookie:',
      storeTimeout: 800,
      revocations: { store: redis.url, cacheMs: CACHE_MS },
    };
    clone1 = await startByUserApp(options);
    clone2 = await startByUserApp(options);
    // Each clone's first call to the revocation store loads the Redis client and connects, which can take
    // longer than the 800 ms storeTimeout on a busy machine: warm both up before the tests, which are about
    // revocation, not about a cold start.
    for (const clone of [clone1, clone2]) {
      let status = 0;
      for (let i = 0; i < 10 && status !== 200; i++) {
        status = (await new CookieClient(clone.url).post('/login?user=warm-up')).status;
      }
      assert.equal(status, 200, 'the revocation store answers');
    }
  });
  after(async () => {
    await clone1?.close();
    await clone2?.close();
    await redis?.stop();
  });

  it('the same user logged in at both clones', async () => {
    await checkLogOutEverywhere(clone1);
  });

  it('a cookie revoked on clone 1 is refused by clone 2 once its cached epoch is older than cacheMs', async () => {
    const user = `grace-${Date.now()}`;
    const phone = new CookieClient(clone1.url);
    const laptop = new CookieClient(clone1.url);
    await phone.post(`/login?user=${user}`);
    await laptop.post(`/login?user=${user}`);
    // The laptop's cookie, presented to clone 2: clone 2 caches the user's epoch now.
    const onClone2 = sameBrowserAt(laptop, clone2.url);
    assert.equal((await onClone2.get('/me')).body.user, user);

    assert.deepEqual((await phone.post('/logout-others')).body, { n: 1 });
    assert.equal((await laptop.get('/me')).body.user, null, 'refused at once by the clone that revoked');
    await sleep(CACHE_MS * 2);
    assert.equal((await onClone2.get('/me')).body.user, null, 'refused by the other clone after cacheMs');
    const phoneOnClone2 = sameBrowserAt(phone, clone2.url);
    assert.equal((await phoneOnClone2.get('/me')).body.user, user, 'the spared session works everywhere');
  });

  it('with the revocation store down, a bound cookie gets a coded 503 in bounded time, an unbound one works', async () => {
    const user = `hopper-${Date.now()}`;
    const bound = new CookieClient(clone1.url);
    await bound.post(`/login?user=${user}`);
    const anonymous = new CookieClient(clone1.url);
    await anonymous.post('/slow-write');
    assert.equal((await anonymous.get('/me')).body.note, 'late write');

    await redis.kill();
    try {
      await sleep(CACHE_MS * 2);
      const started = Date.now();
      const r = await bound.get('/me');
      assert.equal(r.status, 503);
      assert.match(JSON.stringify(r.body), /CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)/);
      assert.ok(Date.now() - started < NO_HANG_MS, 'answered within the store timeout');
      assert.equal((await anonymous.get('/me')).body.note, 'late write', 'no revocation store needed');
    } finally {
      await redis.restart();
    }
    // The clone recovers by itself once the store is back.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await bound.get('/me')).status;
      if (status !== 200) await sleep(200);
    }
    assert.equal((await bound.get('/me')).body.user, user);
  });
});
