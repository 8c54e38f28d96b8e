import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { storeKey } from '../../src/session/session-id.ts';
import { HashRing } from '../../src/session/stores/memcached-ring.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type MemcachedServer, startMemcached } from '../harness/memcached-server.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

// One of two memcached servers dies under load and comes back: the policy applies to the sessions it held
// (503 JSON, or anonymous), the sessions on the other server are served throughout, nothing crashes or hangs
// past the timeout, and the same clone recovers by itself. Memcached keeps nothing across a restart: the
// sessions the dead server held are gone (documented), never served wrong.
let a: MemcachedServer;
let b: MemcachedServer;
before(async () => {
  [a, b] = await Promise.all([startMemcached(), startMemcached()]);
});
after(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fail-closed: 503 with a code for sessions on the dead server, the others unaffected, recovery', async () => {
  const url = `memcached://${a.address},${b.address}`;
  const ring = new HashRing([a.address, b.address]);
  const app = await startSessionApp({ store: url, storeTimeout: 500 });
  try {
    const clients = Array.from({ length: 20 }, () => new CookieClient(app.url));
    for (const [i, c] of clients.entries()) await c.post(`/set?k=n&v=${i}`);
    const onA: boolean[] = [];
    for (const c of clients) onA.push(ring.pick(storeKey((await c.get('/get')).body.id)) === a.address);
    assert.ok(onA.includes(true) && onA.includes(false), 'the sessions are spread over both servers');

    const statuses = new Map<string, number>();
    let running = true;
    let killed = false;
    const load = (async () => {
      while (running) {
        for (const [i, c] of clients.entries()) {
          const started = Date.now();
          const r = await c.get('/get', { cookie: c.cookieHeader() });
          const took = Date.now() - started;
          assert.ok(took < NO_HANG_MS, `an answer took ${took} ms`);
          const key = r.status === 200 ? '200' : `${r.status} ${r.body?.error?.code}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (r.status === 200 && (!onA[i] || !killed)) assert.equal(r.body.data.n, i);
          if (!onA[i]) assert.equal(r.status, 200, 'a session on the live server is always served');
        }
      }
    })();
    await sleep(300);
    killed = true;
    await a.kill();
    await sleep(1000);
    const victim = clients[onA.indexOf(true)]!;
    const down = await new CookieClient(app.url).get('/get', { cookie: victim.cookieHeader() });
    assert.equal(down.status, 503);
    assert.match(down.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
    const untouched = await new CookieClient(app.url).get('/none', { cookie: victim.cookieHeader() });
    assert.equal(untouched.status, 200, 'routes that do not use the session keep working');
    await a.restart();
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      const r = await new CookieClient(app.url).get('/get', { cookie: victim.cookieHeader() });
      recovered = r.status === 200;
      if (!recovered) await sleep(200);
    }
    assert.ok(recovered, 'the clone recovered by itself');
    running = false;
    await load;
    for (const key of statuses.keys())
      assert.match(key, /^(200|503 CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT))$/);
    for (const [i, c] of clients.entries()) {
      const data = (await new CookieClient(app.url).get('/get', { cookie: c.cookieHeader() })).body.data;
      assert.deepEqual(data, onA[i] ? {} : { n: i }, `session ${i}`);
    }
    const again = new CookieClient(app.url);
    await again.post('/set?k=n&v=1');
    assert.deepEqual((await again.get('/get')).body.data, { n: 1 }, 'new sessions work on both servers');
  } finally {
    await app.close();
  }
});

test("onStoreError 'anonymous': served without a session while its server is down", async () => {
  const app = await startSessionApp({ store: b.url, storeTimeout: 500, onStoreError: 'anonymous' });
  try {
    const c = new CookieClient(app.url);
    await c.post('/set?k=n&v=7');
    await b.kill();
    const started = Date.now();
    const r = await c.get('/get');
    assert.ok(Date.now() - started < NO_HANG_MS);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, {});
    const w = await c.post('/set?k=n&v=8');
    assert.equal(w.status, 200, 'a write during the outage is served (and not saved)');
    await b.restart();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      const fresh = new CookieClient(app.url);
      status = (await fresh.post('/set?k=n&v=9')).status;
      if (status === 200 && (await fresh.get('/get')).body.data.n !== 9) status = 0;
      if (status !== 200) await sleep(200);
    }
    assert.equal(status, 200, 'sessions work again once memcached is back');
  } finally {
    await app.close();
  }
});
