import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sessions } from '../../src/session/index.ts';
import { SqliteStore } from '../../src/session/stores/sqlite-store.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { startPostgres } from '../harness/postgres-server.ts';
import { startRedis } from '../harness/redis-server.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes';

/** An app with login (regenerate + bindUser), "log out my other devices", and a write held open on a gate. */
async function startApp(store: string) {
  const s = sessions({ secret: SECRET, store });
  let gate: { loaded: () => void; release: Promise<void> } | undefined;
  const server = createServer(
    s.node(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (body: unknown, status = 200) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      switch (`${req.method} ${url.pathname}`) {
        case 'POST /login': {
          const user = url.searchParams.get('user') ?? '';
          await req.session.regenerate();
          req.session.user = user;
          await req.session.bindUser(user);
          return json({ ok: true });
        }
        case 'POST /rotate':
          await req.session.load();
          await req.session.regenerate();
          return json({ ok: true });
        case 'GET /me': {
          const session = await req.session.load();
          return json({ user: session.user ?? null, note: session.note ?? null });
        }
        case 'GET /devices': {
          const session = await req.session.load();
          return json({ devices: await s.engine.listByUser(String(session.user)) });
        }
        case 'POST /logout-others': {
          const session = await req.session.load();
          return json({ n: await s.engine.destroyByUser(String(session.user), { except: req.session }) });
        }
        case 'POST /slow-write': {
          await req.session.load();
          const held = gate;
          held?.loaded();
          await held?.release;
          req.session.note = 'late write';
          return json({ ok: true });
        }
        default:
          return json({ error: 'not found' }, 404);
      }
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    engine: s.engine,
    /** The next /slow-write waits after its load until `release()`; `loaded` resolves once it has loaded. */
    hold() {
      let release!: () => void;
      let loaded!: () => void;
      const wasLoaded = new Promise<void>((r) => {
        loaded = r;
      });
      gate = { loaded, release: new Promise<void>((r) => (release = r)) };
      return { wasLoaded, release };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await s.close();
    },
  };
}

function byUserSuite(name: string, setup: () => Promise<{ store: string; cleanup: () => Promise<void> }>) {
  describe(`sessions by user over HTTP (${name})`, () => {
    let env: { store: string; cleanup: () => Promise<void> };
    let app: Awaited<ReturnType<typeof startApp>>;
    before(async () => {
      env = await setup();
      app = await startApp(env.store);
    });
    after(async () => {
      await app?.close();
      await env?.cleanup();
    });

    it('logs the same user out of 2 of 3 browsers; an in-flight save on a destroyed one does not revive it', async () => {
      const user = `ada-${Date.now()}`;
      const [current, second, third] = [1, 2, 3].map(() => new CookieClient(app.url)) as [
        CookieClient,
        CookieClient,
        CookieClient,
      ];
      for (const browser of [current, second, third]) {
        assert.equal((await browser.post(`/login?user=${user}`)).status, 200);
        assert.deepEqual((await browser.get('/me')).body, { user, note: null });
      }
      // A stranger's session must survive.
      const stranger = new CookieClient(app.url);
      await stranger.post('/login?user=someone-else');
      // regenerate() keeps the binding: the rotated session is still listed, the old id is not.
      await third.post('/rotate');
      assert.equal((await third.get('/me')).body.user, user);
      assert.equal((await current.get('/devices')).body.devices.length, 3);

      // `second` has a request in flight that has read its session and will write after the logout.
      const held = app.hold();
      const inFlight = second.post('/slow-write');
      await held.wasLoaded;
      const r = await current.post('/logout-others');
      assert.deepEqual(r.body, { n: 2 });
      held.release();
      assert.equal((await inFlight).status, 200);

      assert.deepEqual(
        (await second.get('/me')).body,
        { user: null, note: null },
        'not revived by the late save',
      );
      assert.deepEqual((await third.get('/me')).body, { user: null, note: null });
      assert.deepEqual((await current.get('/me')).body, { user, note: null }, 'the current browser stays in');
      assert.equal((await stranger.get('/me')).body.user, 'someone-else');
      assert.equal((await current.get('/devices')).body.devices.length, 1);
    });
  });
}

byUserSuite('memory', async () => ({ store: 'memory:', cleanup: async () => {} }));

byUserSuite('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-by-user-'));
  return {
    store: `sqlite:${join(dir, 'sessions.db')}`,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

byUserSuite('redis', async () => {
  const redis = await startRedis();
  return { store: redis.url, cleanup: () => redis.stop() };
});

byUserSuite('postgres', async () => {
  const pg = await startPostgres({ replicas: 0 });
  return { store: pg.primaryUrl, cleanup: () => pg.stop() };
});

describe('sessions by user where there is no per-user index', () => {
  it('sealed cookies answer CLONES_SESSION_BY_USER_UNSUPPORTED (501)', async () => {
    const s = sessions({ secret: SECRET, store: 'cookie:' });
    await assert.rejects(s.engine.listByUser('ada'), {
      code: 'CLONES_SESSION_BY_USER_UNSUPPORTED',
      status: 501,
    });
    await assert.rejects(s.engine.destroyByUser('ada'), { code: 'CLONES_SESSION_BY_USER_UNSUPPORTED' });
    await s.close();
  });
});

describe('sqlite: a file from before sessions by user', () => {
  it('gains an indexed user_id column in place and keeps user_version 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clones-by-user-old-'));
    const file = join(dir, 'sessions.db');
    const Sqlite = createRequire(import.meta.url)('better-sqlite3');
    const old = new Sqlite(file);
    old.exec(`CREATE TABLE "test_sessions" (key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL,
      version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      dead INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`);
    old.pragma('user_version = 1');
    const now = Date.now();
    old
      .prepare('INSERT INTO "test_sessions" VALUES (?, ?, 1, ?, ?, 0)')
      .run('k1', '{"a":1}', now, now + 60_000);
    old.close();
    const store = new SqliteStore({ url: `sqlite:${file}`, connectTimeout: 2000, prefix: 'test' });
    try {
      assert.deepEqual((await store.get('k1'))?.data, { a: 1 });
      assert.equal(await store.bindUser('k1', 'ada'), true);
      assert.deepEqual(
        (await store.listByUser('ada')).map((r) => r.key),
        ['k1'],
      );
    } finally {
      await store.close();
    }
    const reopened = new Sqlite(file);
    assert.equal(reopened.pragma('user_version', { simple: true }), 1);
    const indexes = reopened.prepare(`SELECT name FROM pragma_index_list('test_sessions')`).all();
    assert.ok(indexes.some((i: { name: string }) => i.name === 'test_sessions_user_id'));
    reopened.close();
    await rm(dir, { recursive: true, force: true });
  });
});
