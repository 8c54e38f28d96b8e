import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { startSessionApp } from '../harness/session-app.ts';

const Database = createRequire(import.meta.url)('better-sqlite3');

// SQLite's "outage" is another process holding the write lock: a write waits at most storeTimeout (the
// synchronous driver must not hold the event loop longer), answers a coded 503, reads keep working (WAL),
// and the clone writes again as soon as the lock is gone.
test('sqlite: a held write lock gives a coded 503 within the timeout, reads go on, writes recover', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-sqlite-outage-'));
  const file = join(dir, 's.db');
  const app = await startSessionApp({ store: `sqlite:${file}`, storeTimeout: 500 });
  const holder = new Database(file);
  try {
    const c = new CookieClient(app.url);
    await c.post('/set?k=n&v=1');
    holder.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    const blocked = await c.post('/set?k=n&v=2&load=1');
    const took = Date.now() - started;
    assert.equal(blocked.status, 503);
    assert.equal(blocked.body.error.code, 'CLONES_SESSION_STORE_UNAVAILABLE');
    assert.ok(took < 1500, `the write gave up after ${took} ms`);
    assert.deepEqual((await c.get('/get')).body.data, { n: 1 }, 'reads are not blocked by a writer (WAL)');
    holder.exec('COMMIT');
    assert.equal((await c.post('/set?k=n&v=3&load=1')).status, 200);
    assert.deepEqual((await c.get('/get')).body.data, { n: 3 });
  } finally {
    holder.close();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
