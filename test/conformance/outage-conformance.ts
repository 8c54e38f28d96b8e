import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

/** A store server the outage suite can take down and bring back, keeping its data (AOF, a data dir). */
export interface OutageBackend {
  name: string;
  start(): Promise<{ url: string; down(): Promise<void>; up(): Promise<void>; stop(): Promise<void> }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The store dies under load and comes back: the policy applies (a coded 503 JSON, or anonymous), nothing
 * crashes or hangs past the timeout, the same clone recovers by itself, and no session is lost. One suite for
 * every store whose server keeps its data across a restart (memcached, which keeps nothing, has its own test).
 */
export function outageConformance(backend: OutageBackend): void {
  describe(`${backend.name}: store outage`, () => {
    let server: Awaited<ReturnType<OutageBackend['start']>>;
    before(async () => {
      server = await backend.start();
    });
    after(async () => {
      await server.stop();
    });

    test('fail-closed: 503 with a code while the store is down, recovery without restart, no session lost', async () => {
      const app = await startSessionApp({ store: server.url, storeTimeout: 1000 });
      try {
        const clients = Array.from({ length: 20 }, () => new CookieClient(app.url));
        for (const [i, c] of clients.entries()) await c.post(`/set?k=n&v=${i}`);

        // Continuous load through the outage: every answer is a 200 or a coded 503, never anything else.
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
        await server.down();
        await sleep(1500);
        const down = await new CookieClient(app.url).get('/get', { cookie: clients[0]!.cookieHeader() });
        assert.equal(down.status, 503);
        assert.match(down.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
        assert.equal(down.headers.get('content-type'), 'application/json; charset=utf-8');
        const untouched = await new CookieClient(app.url).get('/none', {
          cookie: clients[0]!.cookieHeader(),
        });
        assert.equal(untouched.status, 200, 'routes that do not use the session keep working');
        await server.up();
        // The same app instance (no restart) serves sessions again once the store is back.
        let recovered = false;
        for (let i = 0; i < 50 && !recovered; i++) {
          recovered = (await clients[0]!.get('/get')).status === 200;
          if (!recovered) await sleep(200);
        }
        assert.ok(recovered, 'the clone recovered by itself');
        await sleep(300);
        running = false;
        await load;
        for (const key of statuses.keys()) {
          assert.match(key, /^(200|503 CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT))$/);
        }
        assert.ok((statuses.get('200') ?? 0) > 0);
        for (const [i, c] of clients.entries()) {
          // A coded 503 here would be a slow store on a busy machine, not a lost session: ask again.
          let r = await c.get('/get');
          for (let tries = 0; r.status === 503 && tries < 20; tries++) r = await c.get('/get');
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.deepEqual(r.body.data, { n: i }, `session ${i} survived the outage`);
        }
      } finally {
        await app.close();
      }
    });

    test("onStoreError 'anonymous': served without a session while the store is down", async () => {
      const app = await startSessionApp({ store: server.url, storeTimeout: 1000, onStoreError: 'anonymous' });
      try {
        const c = new CookieClient(app.url);
        await c.post('/set?k=n&v=7');
        await server.down();
        const started = Date.now();
        const r = await c.get('/get');
        assert.ok(Date.now() - started < NO_HANG_MS);
        assert.equal(r.status, 200);
        assert.deepEqual(r.body.data, {});
        const w = await c.post('/set?k=n&v=8');
        assert.equal(w.status, 200, 'a write during the outage is served (and not saved)');
        await server.up();
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
  });
}
