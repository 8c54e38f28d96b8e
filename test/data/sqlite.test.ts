import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Database, database, SESSION_LSN_KEY } from '../../src/data/index.ts';
import { SqliteDriver } from '../../src/data/sqlite-driver.ts';
import { driverConformance } from '../conformance/driver-conformance.ts';

let dir: string;
let db: Database;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clones-data-'));
  db = database({ primary: `sqlite:${join(dir, 'data.db')}`, replicas: [], cache: undefined });
  await db.execute('CREATE TABLE items (id TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  await db.execute('INSERT INTO items (id, v) VALUES ($1, $2)', ['a', 11]);
});

after(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

// Its own file: the driver suite starts from an empty database.
driverConformance({
  name: 'sqlite',
  positions: false,
  setup: async () => {
    const path = join(dir, 'driver.db');
    return {
      url: `sqlite:${path}`,
      open: () => new SqliteDriver({ path, timeout: 2000 }),
      cleanup: async () => {},
    };
  },
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
  // A black hole on loopback: it accepts the TCP connection and never sends a byte, so the PostgreSQL
  // handshake can only time out.
  const sockets = new Set<Socket>();
  const hole = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  const { port } = hole.address() as AddressInfo;
  const far = database({
    primary: `postgres://postgres@127.0.0.1:${port}/x`,
    cache: undefined,
    timeout: 300,
  });
  const started = Date.now();
  await assert.rejects(far.execute('SELECT 1'), (err: { code?: string }) =>
    ['CLONES_DATA_PRIMARY_UNAVAILABLE', 'CLONES_DATA_TIMEOUT'].includes(err.code ?? ''),
  );
  await assert.rejects(far.query('SELECT 1'), (err: { code?: string }) =>
    ['CLONES_DATA_UNAVAILABLE', 'CLONES_DATA_TIMEOUT'].includes(err.code ?? ''),
  );
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  for (const socket of sockets) socket.destroy();
  hole.close();
  await far.close();
});
