import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CookieClient } from '../harness/cookie-client.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

/** What a backend's `start` hands the outage suite: the store's URL and how to take it down and back. */
export interface OutageServer {
  url: string;
  /** A crash, a stop or a held lock: the store (or the part that `holds` names) stops answering. */
  down(): Promise<void>;
  /** Back on the same address, with its data when the backend keeps it (`persistsAcrossRestart`). */
  up(): Promise<void>;
  /** Releases what `start` started; unset when the test file shares its server with other suites. */
  stop?(): Promise<void>;
  /**
   * Set when only part of the store goes down (one memcached of two, one master of a cluster): whether that
   * part holds the session with this id. Unset: the whole store goes down.
   */
  holds?(sessionId: string): Promise<boolean>;
}

/** A store server the outage suite takes down under load and brings back. */
export interface OutageBackend {
  name: string;
  start(): Promise<OutageServer>;
  /**
   * Whether what went down comes back with its sessions (AOF, a data dir): default true. Memcached, and a
   * cluster node without persistence, keep nothing: their sessions come back empty, the others intact.
   */
  persistsAcrossRestart?: boolean;
  /** `writes`: the outage stops writes only and reads go on (SQLite while another process holds the write lock). */
  blocks?: 'everything' | 'writes';
  /** The app's `storeTimeout` (default 1000 ms). */
  storeTimeout?: number;
  /** How soon a write the outage stops must answer its 503 (default NO_HANG_MS). */
  writesFailWithin?: number;
  /** The codes a 503 may carry (default UNAVAILABLE or TIMEOUT). */
  codes?: RegExp;
}

const SESSIONS = 24;

/**
 * The store dies under load and comes back. What the outage reaches gets the policy (a coded 503 JSON, or
 * anonymous), what it does not reach is served throughout, nothing crashes or hangs past the timeout, the same
 * clone recovers by itself, and no session is lost that the store keeps across a restart.
 *
 * @example
 *   outageConformance({
 *     name: 'redis (AOF, kill -9)',
 *     start: async () => ({ url: redis.url, down: () => redis.kill(), up: () => redis.restart() }),
 *   });
 */
export function outageConformance(backend: OutageBackend): void {
  const persists = backend.persistsAcrossRestart ?? true;
  const readsStop = backend.blocks !== 'writes';
  const storeTimeout = backend.storeTimeout ?? 1000;
  const codes = backend.codes ?? /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/;
  const writesFailWithin = backend.writesFailWithin ?? NO_HANG_MS;

  describe(`${backend.name}: store outage`, () => {
    let server: OutageServer;
    before(async () => {
      server = await backend.start();
    });
    after(async () => {
      await server?.stop?.();
    });

    /** Whether the part of the store that goes down holds this browser's session. */
    const onDownPart = async (c: CookieClient) =>
      !server.holds || (await server.holds((await c.get('/get')).body.id));

    test('fail-closed: a coded 503 where the outage reaches, the rest served, no hang, recovery without restart, no kept session lost', async () => {
      const app = await startSessionApp({ store: server.url, storeTimeout });
      try {
        const clients = Array.from({ length: SESSIONS }, () => new CookieClient(app.url));
        for (const [i, c] of clients.entries()) assert.equal((await c.post(`/set?k=n&v=${i}`)).status, 200);
        const held = new Set<number>();
        for (const [i, c] of clients.entries()) if (await onDownPart(c)) held.add(i);
        if (server.holds) {
          assert.ok(
            held.size > 0 && held.size < SESSIONS,
            `${held.size} of ${SESSIONS} on the part that goes down`,
          );
        }
        // Served all through the outage: a session on the part that stays up, or any session when only writes stop.
        const served = (i: number) => !readsStop || !held.has(i);

        // Continuous load through the outage: every answer is a 200 or a coded 503, never anything else.
        const statuses = new Map<string, number>();
        let running = true;
        let downed = false;
        const load = (async () => {
          while (running) {
            for (const [i, c] of clients.entries()) {
              const started = Date.now();
              const r = await c.get('/get');
              const took = Date.now() - started;
              assert.ok(took < NO_HANG_MS, `an answer took ${took} ms`);
              const key = r.status === 200 ? '200' : `${r.status} ${r.body?.error?.code}`;
              statuses.set(key, (statuses.get(key) ?? 0) + 1);
              // A store that keeps nothing answers the sessions it lost as empty once it is back.
              if (r.status === 200 && (persists || !downed || !held.has(i))) assert.equal(r.body.data.n, i);
              if (served(i))
                assert.equal(r.status, 200, `session ${i}, which the outage does not reach, is served`);
            }
          }
        })();
        // Failures inside the load surface where it is awaited, below.
        load.catch(() => {});
        await sleep(300);
        downed = true;
        await server.down();
        await sleep(1500);

        const victim = clients[held.values().next().value ?? 0]!;
        if (readsStop) {
          const down = await new CookieClient(app.url).get('/get', { cookie: victim.cookieHeader() });
          assert.equal(down.status, 503);
          assert.match(down.body.error.code, codes);
          assert.equal(down.headers.get('content-type'), 'application/json; charset=utf-8');
        } else {
          const i = clients.indexOf(victim);
          assert.deepEqual(
            (await victim.get('/get')).body.data,
            { n: i },
            'reads are not blocked by a writer (WAL)',
          );
        }
        const started = Date.now();
        const write = await new CookieClient(app.url).post('/set?k=n&v=-1&load=1', {
          cookie: victim.cookieHeader(),
        });
        const took = Date.now() - started;
        assert.equal(write.status, 503, JSON.stringify(write.body));
        assert.match(write.body.error.code, codes);
        assert.ok(took < writesFailWithin, `the write gave up after ${took} ms`);
        const untouched = await new CookieClient(app.url).get('/none', { cookie: victim.cookieHeader() });
        assert.equal(untouched.status, 200, 'routes that do not use the session keep working');

        if (server.holds || !readsStop) {
          // Round after round, every session answers as the outage dictates, not by chance.
          for (const round of [1, 2, 3]) {
            for (const [i, c] of clients.entries()) {
              const r = await c.get('/get');
              if (served(i)) {
                assert.equal(
                  r.status,
                  200,
                  `round ${round}, session ${i} is served: ${JSON.stringify(r.body)}`,
                );
                assert.deepEqual(r.body.data, { n: i });
              } else {
                assert.equal(r.status, 503, `round ${round}, session ${i}: ${JSON.stringify(r.body)}`);
                assert.match(r.body.error.code, codes);
              }
            }
            await sleep(700);
          }
        }

        await server.up();
        // The same app instance (no restart) serves sessions again once the store is back.
        let recovered = false;
        for (let i = 0; i < 50 && !recovered; i++) {
          const r = await new CookieClient(app.url).get('/get', { cookie: victim.cookieHeader() });
          recovered = r.status === 200;
          if (!recovered) await sleep(200);
        }
        assert.ok(recovered, 'the clone recovered by itself');
        await sleep(300);
        running = false;
        await load;
        for (const key of statuses.keys()) {
          assert.ok(key === '200' || (key.startsWith('503 ') && codes.test(key.slice(4))), key);
        }
        assert.ok((statuses.get('200') ?? 0) > 0);
        const deadline = Date.now() + 15_000;
        for (const [i, c] of clients.entries()) {
          // A coded 503 here would be a slow store on a busy machine, not a lost session: ask again.
          let r = await c.get('/get');
          while (r.status === 503 && Date.now() < deadline) {
            await sleep(200);
            r = await c.get('/get');
          }
          assert.equal(r.status, 200, `session ${i} after the outage: ${JSON.stringify(r.body)}`);
          const lost = !persists && held.has(i);
          assert.deepEqual(
            r.body.data,
            lost ? {} : { n: i },
            `session ${i} ${lost ? 'is gone' : 'survived the outage'}`,
          );
        }
        // Writes where the outage was work again, on the sessions it reached and on new ones.
        for (const i of held) {
          const c = clients[i]!;
          assert.equal((await c.post(`/set?k=n&v=${i + 100}`)).status, 200);
          assert.deepEqual((await c.get('/get')).body.data, { n: i + 100 });
        }
        const again = new CookieClient(app.url);
        await again.post('/set?k=n&v=1');
        assert.deepEqual((await again.get('/get')).body.data, { n: 1 }, 'new sessions work everywhere');
      } finally {
        await app.close();
      }
    });

    test("onStoreError 'anonymous': served without a session while the store is down", async () => {
      const app = await startSessionApp({ store: server.url, storeTimeout, onStoreError: 'anonymous' });
      try {
        // A browser whose session lives on the part that goes down.
        let c = new CookieClient(app.url);
        await c.post('/set?k=n&v=7');
        for (let tries = 1; !(await onDownPart(c)); tries++) {
          assert.ok(tries < 50, 'no session landed on the part that goes down');
          c = new CookieClient(app.url);
          await c.post('/set?k=n&v=7');
        }
        await server.down();
        const started = Date.now();
        const r = await c.get('/get');
        assert.ok(Date.now() - started < NO_HANG_MS);
        assert.equal(r.status, 200);
        assert.deepEqual(r.body.data, readsStop ? {} : { n: 7 });
        const w = await c.post('/set?k=n&v=8');
        assert.equal(w.status, 200, 'a write during the outage is served (and not saved)');
        await server.up();
        if (persists) {
          let data: unknown;
          for (let i = 0; i < 50; i++) {
            data = (await c.get('/get')).body.data;
            if (JSON.stringify(data) === '{"n":7}') break;
            await sleep(200);
          }
          assert.deepEqual(data, { n: 7 });
        } else {
          let status = 0;
          for (let i = 0; i < 50 && status !== 200; i++) {
            const fresh = new CookieClient(app.url);
            status = (await fresh.post('/set?k=n&v=9')).status;
            if (status === 200 && (await fresh.get('/get')).body.data.n !== 9) status = 0;
            if (status !== 200) await sleep(200);
          }
          assert.equal(status, 200, 'sessions work again once the store is back');
        }
      } finally {
        await app.close();
      }
    });
  });
}
