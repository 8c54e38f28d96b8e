import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

// PostgreSQL (the primary, stopped fast) dies under load and comes back: the policy applies (503 JSON, or
// anonymous), nothing crashes or hangs past the timeout, the same clone recovers by itself, and no session
// is lost.
let pg: PostgresCluster;
before(async () => {
  pg = await startPostgres({ replicas: 0 });
});
after(async () => {
  await pg.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fail-closed: 503 with a code while PostgreSQL is down, recovery without restart, no session lost', async () => {
  const app = await startSessionApp({ store: pg.primaryUrl, storeTimeout: 500 });
  try {
    const clients = Array.from({ length: 20 }, () => new CookieClient(app.url));
    for (const [i, c] of clients.entries()) await c.post(`/set?k=n&v=${i}`);

    const statuses = new Map<string, number>();
    let running = true;
    const load = (async () => {
      while (running) {
        for (const [i, c] of clients.entries()) {
          const started = Date.now();
          const r = await c.get('/get');
          const took = Date.now() - started;
          assert.ok(took < NO_HANG_MS, `an answer took ${took} ms`);
          const key = r.status === 200 ? '200' : `${r.status} ${r.body?.error?.code}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (r.status === 200) assert.equal(r.body.data.n, i);
        }
      }
    })();
    await sleep(300);
    await pg.stopPrimary();
    await sleep(1000);
    const down = await new CookieClient(app.url).get('/get', { cookie: clients[0]!.cookieHeader() });
    assert.equal(down.status, 503);
    assert.match(down.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
    const untouched = await new CookieClient(app.url).get('/none', { cookie: clients[0]!.cookieHeader() });
    assert.equal(untouched.status, 200, 'routes that do not use the session keep working');
    await pg.startPrimary();
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      recovered = (await clients[0]!.get('/get')).status === 200;
      if (!recovered) await sleep(200);
    }
    assert.ok(recovered, 'the clone recovered by itself');
    await sleep(300);
    running = false;
    await load;
    for (const key of statuses.keys())
      assert.match(key, /^(200|503 CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT))$/);
    assert.ok((statuses.get('200') ?? 0) > 0);
    for (const [i, c] of clients.entries()) {
      assert.deepEqual((await c.get('/get')).body.data, { n: i }, `session ${i} survived`);
    }
  } finally {
    await app.close();
  }
});

test("onStoreError 'anonymous': served without a session while PostgreSQL is down", async () => {
  const app = await startSessionApp({
    store: pg.primaryUrl,
    storeTimeout: 500,
    onStoreError: 'anonymous',
  });
  try {
    const c = new CookieClient(app.url);
    await c.post('/set?k=n&v=7');
    await pg.stopPrimary();
    const started = Date.now();
    const r = await c.get('/get');
    assert.ok(Date.now() - started < NO_HANG_MS);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, {});
    const w = await c.post('/set?k=n&v=8');
    assert.equal(w.status, 200, 'a write during the outage is served (and not saved)');
    await pg.startPrimary();
    let data: unknown;
    for (let i = 0; i < 50; i++) {
      data = (await c.get('/get')).body.data;
      if (JSON.stringify(data) === '{"n":7}') break;
      await sleep(200);
    }
    assert.deepEqual(data, { n: 7 });
  } finally {
    await app.close();
  }
});
