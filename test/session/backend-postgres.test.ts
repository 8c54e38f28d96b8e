import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PostgresStore } from '../../src/session/stores/postgres-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { runtime } from '../conformance/runtime.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';

// One PostgreSQL primary, started once for every suite of this file; each suite has its own table (prefix) or
// its own random keys. The outage suite, last, stops the primary and starts it again.
let cluster: PostgresCluster;
before(async () => {
  cluster = await startPostgres({ replicas: 0 });
});
after(async () => {
  await cluster?.stop();
});

storeConformance({
  name: 'postgres',
  url: () => cluster.primaryUrl,
  store: () => new PostgresStore({ url: cluster.primaryUrl, connectTimeout: 2000, prefix: 'test' }),
  byUser: true,
});

describe('PostgresStore', () => {
  const open = (prefix: string) => {
    const backend = new PostgresStore({ url: cluster.primaryUrl, connectTimeout: 2000, prefix });
    return Object.assign(runtime(backend), { sweep: () => backend.sweep() });
  };

  it('creates its table on first use, once, even when several clones start together', async () => {
    const stores = Array.from({ length: 6 }, () => open('race'));
    await Promise.all(stores.map((s) => s.get(newKey())));
    const rows = await cluster.query(
      'primary',
      "SELECT version FROM clones_schema WHERE name = 'race_sessions'",
    );
    assert.deepEqual(rows, [{ version: 1 }]);
    const key = newKey();
    await stores[0]!.create(key, fresh({ a: 1 }));
    assert.deepEqual((await stores[5]!.get(key))?.data, { a: 1 });
    await Promise.all(stores.map((s) => s.close()));
  });

  it('refuses a table whose schema is newer than this code knows', async () => {
    const store = open('future');
    await store.get(newKey());
    await cluster.query('primary', "UPDATE clones_schema SET version = 99 WHERE name = 'future_sessions'");
    const later = open('future');
    await assert.rejects(later.get(newKey()), { code: 'CLONES_SESSION_STORE_SCHEMA' });
    await Promise.all([store.close(), later.close()]);
  });

  it('sweep deletes expired sessions and ended tombstones, keeps the rest', async () => {
    const store = open('sweep');
    const live = newKey();
    const expired = newKey();
    const buried = newKey();
    const mourning = newKey();
    await store.create(live, fresh({ live: true }));
    await store.create(expired, fresh({ old: true }, 200));
    await store.destroy(buried, Date.now() + 200);
    await store.destroy(mourning, Date.now() + 60_000);
    await sleep(300);
    assert.equal(await store.sweep(), 2);
    const keys = (await cluster.query('primary', 'SELECT key FROM sweep_sessions')).map((r) => r.key);
    assert.deepEqual(new Set(keys), new Set([live, mourning]));
    await store.close();
  });

  it('only one clone sweeps at a time: a sweep while another holds the lock does nothing', async () => {
    const store = open('sweep');
    const expired = newKey();
    await store.create(expired, fresh({ old: true }, 100));
    await sleep(200);
    const other = new pg.Client({ connectionString: cluster.primaryUrl });
    await other.connect();
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['clones-sweep:sweep_sessions']);
    assert.equal(await store.sweep(), 0, 'another clone is sweeping');
    await other.query('COMMIT');
    await other.end();
    assert.equal(await store.sweep(), 1);
    await store.close();
  });

  it('a patch is one merge statement: 32 concurrent patches of different keys, none lost', async () => {
    const store = open('merge');
    const key = newKey();
    await store.create(key, fresh({ base: 0 }));
    await Promise.all(
      Array.from({ length: 32 }, (_, i) => store.patch(key, { set: { [`k${i}`]: i }, del: ['base'] })),
    );
    const got = await store.get(key);
    assert.equal(got?.version, 33);
    assert.equal(Object.keys(got?.data ?? {}).length, 32);
    await store.close();
  });

  it('refuses a URL that is not postgres://', () => {
    assert.throws(() => new PostgresStore({ url: 'mysql://x', connectTimeout: 1, prefix: 'p' }), {
      code: 'CLONES_SESSION_STORE_URL',
    });
  });
});

// The PostgreSQL primary is stopped (fast) under load and started again.
outageConformance({
  name: 'postgres',
  start: async () => ({
    url: cluster.primaryUrl,
    down: () => cluster.stopPrimary(),
    up: () => cluster.startPrimary(),
  }),
});
