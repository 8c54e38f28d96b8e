// The wrapper every database server runs inside (src/data/runtime-driver.ts), on real SQLite files: init once
// and again after a failure, coded errors once closed, the timeout (against a server that never answers),
// the counts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { database } from '../../src/data/index.ts';
import { PostgresDriver } from '../../src/data/postgres-driver.ts';
import { RuntimeDriver } from '../../src/data/runtime-driver.ts';
import { SqliteDriver } from '../../src/data/sqlite-driver.ts';
import { logger } from '../../src/logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-runtime-driver-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a file that cannot be opened fails the call with a code, and the next call opens it', async () => {
  const parent = join(dir, 'not-yet');
  writeFileSync(parent, 'a file where the directory should be');
  const driver = new RuntimeDriver(new SqliteDriver({ path: join(parent, 'data.db'), timeout: 1000 }), {
    timeout: 1000,
  });
  await assert.rejects(driver.read('SELECT 1 AS one'), { code: 'CLONES_DATA_UNAVAILABLE' });
  await assert.rejects(driver.write('CREATE TABLE t (n INTEGER)'), {
    code: 'CLONES_DATA_PRIMARY_UNAVAILABLE',
  });
  rmSync(parent);
  mkdirSync(parent);
  assert.deepEqual((await driver.read('SELECT 1 AS one')).rows, [{ one: 1 }]);
  assert.equal(driver.counts.read, 2);
  assert.equal(driver.counts.errors, 2);
  await driver.close();
});

test('once closed, every call is refused with a code; closing twice is harmless', async () => {
  const db = database({ primary: `sqlite:${join(dir, 'closed.db')}` });
  await db.execute('CREATE TABLE t (n INTEGER)');
  await db.close();
  await db.close();
  await assert.rejects(db.query('SELECT * FROM t'), { code: 'CLONES_DATA_UNAVAILABLE' });
  await assert.rejects(db.execute('INSERT INTO t VALUES (1)'), { code: 'CLONES_DATA_PRIMARY_UNAVAILABLE' });
  await assert.rejects(
    db.transaction((tx) => tx.query('INSERT INTO t VALUES (1)')),
    { code: 'CLONES_DATA_PRIMARY_UNAVAILABLE' },
  );
});

test('a server that accepts and never answers: the call ends at the timeout, and is counted', async () => {
  // A black hole on loopback: the TCP connection opens, no byte ever comes back.
  const sockets = new Set<Socket>();
  const hole = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const { port } = hole.address() as AddressInfo;
  const backend = new PostgresDriver({
    url: `postgres://u@127.0.0.1:${port}/db`,
    role: 'primary',
    timeout: 5000,
    poolSize: 1,
    logger: logger.child({}),
  });
  const driver = new RuntimeDriver(backend, { timeout: 200 });
  try {
    const started = Date.now();
    await assert.rejects(driver.read('SELECT 1'), { code: 'CLONES_DATA_TIMEOUT' });
    assert.ok(Date.now() - started < 4000, 'the wrapper answered before the driver gave up');
    assert.deepEqual(
      { read: driver.counts.read, errors: driver.counts.errors, timeouts: driver.counts.timeouts },
      { read: 1, errors: 1, timeouts: 1 },
    );
  } finally {
    for (const s of sockets) s.destroy();
    hole.close();
    await driver.close();
  }
});
