import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SqliteStore, sqlitePath, tableName } from '../../src/session/stores/sqlite-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';

const run = promisify(execFile);
const WORKER = new URL('./fixtures/sqlite-worker.ts', import.meta.url).pathname;

// A second, raw connection to look at the file the way another tool would.
interface RawDb {
  pragma(sql: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): {
    get(...params: unknown[]): unknown;
    all(...params: unknown[]): unknown[];
    run(...params: unknown[]): unknown;
  };
  exec(sql: string): void;
  close(): void;
}
const Raw = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => RawDb;

// One directory for the whole file: the suites share sessions.db (each its own table or random keys), the
// tests of the file format make files of their own beside it.
let dir = '';
let url = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clones-sqlite-'));
  url = `sqlite:${join(dir, 'sessions.db')}`;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

storeConformance({
  name: 'sqlite',
  url: () => url,
  store: () => new SqliteStore({ url, connectTimeout: 2000, prefix: 'test' }),
  byUser: true,
});

const open = (file: string, prefix = 'test') =>
  new SqliteStore({ url: `sqlite:${file}`, connectTimeout: 2000, prefix });

describe('SqliteStore shared by several processes', () => {
  it('two instances on one file see each other’s writes, deletes and tombstones', async () => {
    const file = join(dir, 'shared.db');
    const a = open(file);
    const b = open(file);
    try {
      const key = newKey();
      await a.create(key, fresh({ from: 'a' }));
      assert.deepEqual((await b.get(key))?.data, { from: 'a' });
      assert.deepEqual(await b.patch(key, { set: { from: 'b' }, del: [] }), { ok: true, version: 2 });
      assert.deepEqual(await a.get(key), { ...(await b.get(key)), data: { from: 'b' } });
      const lost = await a.patch(key, { set: {}, del: [] }, { ifVersion: 1 });
      assert.deepEqual({ ok: lost.ok, reason: !lost.ok && lost.reason }, { ok: false, reason: 'conflict' });
      assert.deepEqual(!lost.ok && lost.reason === 'conflict' && lost.current?.data, { from: 'b' });
      await a.destroy(key, Date.now() + 60_000);
      assert.equal(await b.get(key), null);
      assert.deepEqual(await b.create(key, fresh({})), { ok: false, reason: 'gone' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('compare-and-set increments interleaved across two instances are never lost', async () => {
    const file = join(dir, 'race.db');
    const stores = [open(file), open(file)];
    try {
      const key = newKey();
      await stores[0]!.create(key, fresh({ n: 0 }));
      let conflicts = 0;
      const client = async (i: number) => {
        const store = stores[i % 2]!;
        for (let j = 0; j < 50; j++) {
          for (;;) {
            const s = await store.get(key);
            const r = await store.patch(
              key,
              { set: { n: (s?.data.n as number) + 1 }, del: [] },
              { ifVersion: s?.version },
            );
            if (r.ok) break;
            assert.equal(r.reason, 'conflict');
            conflicts++;
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, (_, i) => client(i)));
      const got = await stores[1]!.get(key);
      assert.equal(got?.data.n, 800);
      assert.equal(got?.version, 801);
      assert.ok(conflicts > 0, 'the instances really raced');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('real processes: patches of different keys all persist and CAS increments add up', async () => {
    const file = join(dir, 'processes.db');
    const store = open(file);
    try {
      const key = newKey();
      await store.create(key, fresh({ n: 0 }));
      const worker = (mode: string, count: number, name: string) =>
        run(process.execPath, ['--import', 'tsx', WORKER, file, key, mode, String(count), name], {
          cwd: resolve(import.meta.dirname, '../..'),
        });
      await Promise.all([
        worker('keys', 300, 'p1'),
        worker('keys', 300, 'p2'),
        worker('cas', 300, 'p3'),
        worker('cas', 300, 'p4'),
      ]);
      const got = await store.get(key);
      assert.equal(got?.data.n, 600, 'no increment lost across processes');
      for (const p of ['p1', 'p2']) {
        for (let i = 0; i < 300; i++) assert.equal(got?.data[`${p}_${i}`], i, `${p}_${i} persisted`);
      }
      assert.equal(got?.version, 1 + 300 * 4);
    } finally {
      await store.close();
    }
  });
});

describe('SqliteStore file and schema', () => {
  it('maps sqlite: URLs to files', () => {
    assert.equal(sqlitePath('sqlite:'), resolve('.clones/sessions.db'));
    assert.equal(sqlitePath('sqlite:data/s.db'), resolve('data/s.db'));
    assert.equal(sqlitePath('sqlite:/var/lib/app/s.db'), '/var/lib/app/s.db');
    assert.throws(() => sqlitePath('sqlite:///tmp/x.db'), { code: 'CLONES_SESSION_STORE_URL' });
    assert.throws(() => sqlitePath('redis://x'), { code: 'CLONES_SESSION_STORE_URL' });
  });

  it('names the table after the prefix, reduced to [a-z0-9_]', () => {
    assert.equal(tableName('clones'), 'clones_sessions');
    assert.equal(tableName('My-App.v2'), 'my_app_v2_sessions');
    assert.equal(tableName('9lives'), 't_9lives_sessions');
    assert.equal(tableName('x"; DROP TABLE y; --'), 'x___drop_table_y_____sessions');
  });

  it('creates the parent directories, uses WAL, and records schema version 1', async () => {
    const file = join(dir, 'deep', 'er', 'sessions.db');
    const store = open(file, 'My-App');
    await store.create(newKey(), fresh({ a: 1 }));
    await store.close();
    assert.ok(existsSync(file));
    const raw = new Raw(file);
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), 1);
      assert.deepEqual(raw.prepare('SELECT count(*) AS n FROM my_app_sessions').get(), { n: 1 });
    } finally {
      raw.close();
    }
  });

  it('refuses a file whose schema is newer than this code', async () => {
    const file = join(dir, 'future.db');
    const raw = new Raw(file);
    raw.pragma('user_version = 2');
    raw.close();
    assert.throws(() => open(file), { code: 'CLONES_SESSION_STORE_SCHEMA' });
  });

  it('a destroyed session keeps a row with dead=1, no data, and expires_at = tombstoneUntil', async () => {
    const file = join(dir, 'tomb.db');
    const store = open(file);
    const key = newKey();
    await store.create(key, fresh({ secret: 'x' }));
    const until = Date.now() + 60_000;
    await store.destroy(key, until);
    await store.close();
    const raw = new Raw(file);
    try {
      const row = raw.prepare('SELECT data, dead, expires_at FROM test_sessions WHERE key = ?').get(key);
      assert.deepEqual(row, { data: '{}', dead: 1, expires_at: until });
    } finally {
      raw.close();
    }
  });

  it('sweeps rows past expires_at, live and tombstones, at open and on demand', async () => {
    const file = join(dir, 'sweep.db');
    const store = open(file);
    const now = Date.now();
    const live = newKey();
    await store.create(live, fresh({ keep: true }));
    for (let i = 0; i < 1500; i++) {
      await store.create(newKey(), { data: {}, version: 1, createdAt: now - 10_000, expiresAt: now - 1 });
    }
    await store.destroy(newKey(), now - 1);
    await store.destroy(newKey(), now + 60_000);
    assert.equal(store.sweep(), 1501, 'batches past the first 1,000 rows');
    await store.create(newKey(), { data: {}, version: 1, createdAt: now - 10_000, expiresAt: now - 1 });
    await store.close();
    const reopened = open(file);
    await reopened.close();
    const raw = new Raw(file);
    try {
      assert.deepEqual(
        raw.prepare('SELECT count(*) AS n FROM test_sessions').get(),
        { n: 2 },
        'live + tombstone',
      );
    } finally {
      raw.close();
    }
  });

  it('close is idempotent', async () => {
    const store = open(join(dir, 'close.db'));
    await store.close();
    await store.close();
    await assert.rejects(store.get(newKey()));
  });
});

describe('sqlite: a file from before sessions by user', () => {
  it('gains an indexed user_id column in place and keeps user_version 1', async () => {
    const file = join(dir, 'before-by-user.db');
    const old = new Raw(file);
    old.exec(`CREATE TABLE "test_sessions" (key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL,
      version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      dead INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`);
    old.pragma('user_version = 1');
    const now = Date.now();
    old
      .prepare('INSERT INTO "test_sessions" VALUES (?, ?, 1, ?, ?, 0)')
      .run('k1', '{"a":1}', now, now + 60_000);
    old.close();
    const store = open(file);
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
    const reopened = new Raw(file);
    assert.equal(reopened.pragma('user_version', { simple: true }), 1);
    const indexes = reopened.prepare(`SELECT name FROM pragma_index_list('test_sessions')`).all();
    assert.ok((indexes as { name: string }[]).some((i) => i.name === 'test_sessions_user_id'));
    reopened.close();
  });
});

// SQLite's "outage" is another connection (as another process would) holding the write lock: a write waits at most storeTimeout (the
// synchronous driver must not hold the event loop longer), answers a coded 503, reads keep working (WAL),
// and the clone writes again as soon as the lock is gone.
outageConformance({
  name: 'sqlite (write lock held by another connection)',
  blocks: 'writes',
  storeTimeout: 500,
  writesFailWithin: 1500,
  codes: /^CLONES_SESSION_STORE_UNAVAILABLE$/,
  start: async () => {
    const holder = new Raw(sqlitePath(url));
    return {
      url,
      down: async () => holder.exec('BEGIN IMMEDIATE'),
      up: async () => holder.exec('COMMIT'),
      stop: async () => holder.close(),
    };
  },
});
