import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sessions } from '../../src/session/index.ts';
import { SqliteStore } from '../../src/session/stores/sqlite-store.ts';
import { type ByUserApp, checkLogOutEverywhere, startByUserApp } from '../harness/by-user-app.ts';
import { startPostgres } from '../harness/postgres-server.ts';
import { startRedis } from '../harness/redis-server.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes';

function byUserSuite(name: string, setup: () => Promise<{ store: string; cleanup: () => Promise<void> }>) {
  describe(`sessions by user over HTTP (${name})`, () => {
    let env: { store: string; cleanup: () => Promise<void> };
    let app: ByUserApp;
    before(async () => {
      env = await setup();
      app = await startByUserApp({ store: env.store });
    });
    after(async () => {
      await app?.close();
      await env?.cleanup();
    });

    it('logs the same user out of 2 of 3 browsers; an in-flight save on a destroyed one does not revive it', async () => {
      await checkLogOutEverywhere(app);
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
  it('sealed cookies without a revocation store answer CLONES_SESSION_BY_USER_UNSUPPORTED (501)', async () => {
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
