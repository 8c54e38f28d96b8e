import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Database, database, SESSION_LSN_KEY } from '../../src/data/index.ts';

let dir: string;
let db: Database;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clones-data-'));
  db = database({ primary: `sqlite:${join(dir, 'data.db')}`, replicas: [], cache: undefined });
  await db.execute('CREATE TABLE items (id TEXT PRIMARY KEY, v INTEGER NOT NULL)');
});

after(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

test('SQLite mode: the same API, $n parameters, no positions', async () => {
  const w = await db.execute('INSERT INTO items (id, v) VALUES ($1, $2)', ['a', 1]);
  assert.equal(w.rowCount, 1);
  assert.equal(w.lsn, undefined);
  const { value } = await db.transaction(async (tx) => {
    await tx.query('UPDATE items SET v = v + $1 WHERE id = $2', [10, 'a']);
    return (await tx.query<{ v: number }>('SELECT v FROM items WHERE id = $1 AND v > $2', ['a', 0])).rows[0]!
      .v;
  });
  assert.equal(value, 11);
  assert.deepEqual(await db.query('SELECT v FROM items WHERE id = $1', ['a'], { consistency: 'strong' }), [
    { v: 11 },
  ]);
  assert.equal(db.status().replicas.length, 0);
});

test('SQLite mode: a failed transaction rolls back, and the next one runs', async () => {
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query('UPDATE items SET v = 99 WHERE id = $1', ['a']);
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(await db.query('SELECT v FROM items WHERE id = $1', ['a']), [{ v: 11 }]);
});

test('SQLite mode: a read that writes is CLONES_DATA_READ_ONLY', async () => {
  await assert.rejects(db.query("INSERT INTO items VALUES ('x', 1)"), { code: 'CLONES_DATA_READ_ONLY' });
});

test('without a cache, cached() coalesces concurrent misses and write() makes later reads fresh', async () => {
  let loads = 0;
  const load = async (r: { query: Database['query'] }) => {
    loads++;
    return (await r.query<{ v: number }>('SELECT v FROM items WHERE id = $1', ['a']))[0]!.v;
  };
  const values = await Promise.all(Array.from({ length: 50 }, () => db.cached('a', 1000, load)));
  assert.deepEqual(new Set(values), new Set([11]));
  assert.equal(loads, 1);
  await db.write('a', undefined, (tx) => tx.query('UPDATE items SET v = 12 WHERE id = $1', ['a']));
  assert.equal(await db.cached('a', 1000, load), 12);
});

test('a session-bound view records nothing on SQLite (no positions) and reads its writes', async () => {
  const data: Record<string, unknown> = {};
  const session = {
    get: (k: string) => data[k],
    update: async (fn: (d: Record<string, unknown>) => unknown) => fn(data),
  };
  const view = db.for(session);
  await view.execute('UPDATE items SET v = 13 WHERE id = $1', ['a']);
  assert.equal(data[SESSION_LSN_KEY], undefined);
  assert.deepEqual(await view.query('SELECT v FROM items WHERE id = $1', ['a']), [{ v: 13 }]);
});

test('bad URLs and options fail at construction with codes', () => {
  assert.throws(() => database({ primary: 'mysql://x' }), { code: 'CLONES_DATA_URL' });
  assert.throws(() => database({ primary: 'sqlite:' }), { code: 'CLONES_DATA_URL' });
  assert.throws(() => database({ primary: 'sqlite:x.db', replicas: ['postgres://h/db'] }), {
    code: 'CLONES_DATA_URL',
  });
  assert.throws(() => database({ primary: 'postgres://h/db', replicas: ['sqlite:x'] }), {
    code: 'CLONES_DATA_URL',
  });
  assert.throws(() => database({ primary: 'sqlite:x.db', cache: 'memcached://h' }), {
    code: 'CLONES_DATA_URL',
  });
  assert.throws(() => database({ primary: 'sqlite:x.db', timeout: 0 }), { code: 'CLONES_INVALID_OPTION' });
});

test('an unreachable primary fails within the timeout with CLONES_DATA_PRIMARY_UNAVAILABLE or CLONES_DATA_TIMEOUT', async () => {
  // 192.0.2.1 (TEST-NET-1) never answers: the connect can only time out.
  const far = database({ primary: 'postgres://postgres@192.0.2.1:5432/x', cache: undefined, timeout: 300 });
  const started = Date.now();
  await assert.rejects(far.execute('SELECT 1'), (err: { code?: string }) =>
    ['CLONES_DATA_PRIMARY_UNAVAILABLE', 'CLONES_DATA_TIMEOUT'].includes(err.code ?? ''),
  );
  await assert.rejects(far.query('SELECT 1'), (err: { code?: string }) =>
    ['CLONES_DATA_UNAVAILABLE', 'CLONES_DATA_TIMEOUT'].includes(err.code ?? ''),
  );
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  await far.close();
});
