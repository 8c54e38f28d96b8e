import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Database, database } from '../../src/data/index.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { createItems } from './fixtures/schema.ts';

let pg: PostgresCluster;
let redis: RedisServer;
/** Three "clones": separate data layers (own pools, own single-flight) sharing the database and Redis. */
let clones: Database[] = [];

before(async () => {
  [pg, redis] = await Promise.all([startPostgres({ replicas: 2 }), startRedis()]);
  await createItems(pg);
  clones = [0, 1, 2].map(() =>
    database({ primary: pg.primaryUrl, replicas: pg.replicaUrls, cache: redis.url, lagPollInterval: 50 }),
  );
  await Promise.all(clones.map((c) => c.ready()));
});

after(async () => {
  await Promise.all(clones.map((c) => c.close()));
  await Promise.all([pg?.stop(), redis?.stop()]);
});

const upsert = 'INSERT INTO items (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = $2';
const select = 'SELECT v FROM items WHERE id = $1';
const totalReads = () =>
  clones.reduce((n, c) => n + Object.values(c.metrics().reads).reduce((a, b) => a + b, 0), 0);

test('100 concurrent misses on one key, across 3 clones, cost exactly 1 database read', async () => {
  await clones[0]!.write('hot', undefined, (tx) => tx.query(upsert, ['hot', 42]));
  let loads = 0;
  const readsBefore = totalReads();
  const values = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      clones[i % 3]!.cached('hot', 60_000, async (db) => {
        loads++;
        const rows = await db.query<{ v: number }>(`SELECT v, pg_sleep(0.2) FROM items WHERE id = $1`, [
          'hot',
        ]);
        return rows[0]!.v;
      }),
    ),
  );
  assert.deepEqual(new Set(values), new Set([42]));
  assert.equal(loads, 1);
  assert.equal(totalReads() - readsBefore, 1);
  assert.equal(
    clones.reduce((n, c) => n + c.metrics().cacheFills, 0),
    1,
  );
  // And later reads are hits: no database read at all.
  await clones[1]!.cached('hot', 60_000, async () => assert.fail('must be a hit'));
  assert.equal(totalReads() - readsBefore, 1);
});

test('a slow fill that overlaps a write does not overwrite it (no stale set)', async () => {
  await clones[0]!.write('race', undefined, (tx) => tx.query(upsert, ['race', 1]));
  const slowFill = clones[0]!.cached('race', 60_000, async (db) => {
    const v = (await db.query<{ v: number }>(select, ['race']))[0]!.v;
    await sleep(300); // the write lands while this fill holds its (old) value
    return v;
  });
  await sleep(100);
  await clones[1]!.write('race', undefined, (tx) => tx.query(upsert, ['race', 2]));
  assert.equal(await slowFill, 1, 'the overlapping read may answer the old value');
  assert.equal(clones[0]!.metrics().cacheStaleFills, 1);
  const after = await clones[2]!.cached(
    'race',
    60_000,
    async (db) => (await db.query<{ v: number }>(select, ['race']))[0]!.v,
  );
  assert.equal(after, 2);
});

test('after a write is acknowledged, no read through the cache returns an older value', async () => {
  // One replica shows commits 300 ms late and stays in rotation: fills must not come from it too early.
  await pg.setApplyDelay(1, 300);
  await clones[0]!.write('seq', 0, (tx) => tx.query(upsert, ['seq', 0]), 50);
  let acked = 0;
  let writing = true;
  const violations: string[] = [];
  const load = async (db: { query: Database['query'] }) =>
    (await db.query<{ v: number }>(select, ['seq']))[0]!.v;
  const reader = async (c: Database) => {
    let reads = 0;
    while (writing) {
      const floor = acked;
      const v = await c.cached('seq', 30, load);
      if (v < floor) violations.push(`read ${v} after ${floor} was acknowledged`);
      reads++;
    }
    return reads;
  };
  const readers = clones.flatMap((c) => [reader(c), reader(c)]);
  for (let i = 1; i <= 40; i++) {
    const w = clones[i % 3]!;
    // Alternate write-through (set) and invalidation (delete), so fills happen while replicas lag.
    await w.write('seq', i % 2 ? i : undefined, (tx) => tx.query(upsert, ['seq', i]), 50);
    acked = i;
    await sleep(20);
  }
  writing = false;
  const reads = (await Promise.all(readers)).reduce((a, b) => a + b, 0);
  await pg.setApplyDelay(1, 0);
  assert.deepEqual(violations, []);
  assert.ok(reads > 100, `only ${reads} reads`);
  const m = clones.map((c) => c.metrics());
  assert.ok(m.reduce((n, x) => n + x.cacheFills, 0) > 5, 'fills happened during the run');
  assert.ok(m.reduce((n, x) => n + x.cacheHits, 0) > 5, 'hits happened during the run');
});

test('of two overlapping writes, the one that committed first never leaves its value in the cache', async () => {
  // Positions read after COMMIT can invert the commit order: A commits, B waits for A's row lock, writes and
  // commits, and A reads its position last. Replayed here on the cache itself, with positions such a run gives.
  const { RedisCache } = await import('../../src/data/redis-cache.ts');
  const { logger } = await import('../../src/logger.ts');
  const cache = new RedisCache({
    url: redis.url,
    prefix: 'overlap:',
    timeout: 2000,
    markTtl: 60_000,
    logger,
  });
  try {
    // B: before COMMIT at 150 (past A's commit), after COMMIT at 180; it reaches the cache first.
    await cache.written('k', 180, '"B"', 60_000, 150);
    // A: before COMMIT at 100, position read late (200). Storing "A" would be stale: it deletes instead.
    await cache.written('k', 200, '"A"', 60_000, 100);
    const answer = await cache.lookup('k', 'token', 1000);
    assert.equal(answer.kind, 'lease', 'the entry was deleted');
    assert.equal(answer.kind === 'lease' && answer.writeLsn, 200, 'fills read at or after both writes');
    // A write that began after every recorded write committed sets its value.
    await cache.written('k', 260, '"C"', 60_000, 240);
    assert.deepEqual(await cache.lookup('k', 'token2', 1000), { kind: 'hit', data: '"C"', lsn: 260 });
  } finally {
    await cache.close();
  }
});

test('write-through keeps a key cached: after a write, every clone reads the new value without a database read', async () => {
  await clones[0]!.write('kept', 1, (tx) => tx.query(upsert, ['kept', 1]));
  await clones[1]!.write('kept', 2, (tx) => tx.query(upsert, ['kept', 2]));
  const readsBefore = totalReads();
  for (const c of clones)
    assert.equal(await c.cached('kept', 60_000, async () => assert.fail('must be a hit')), 2);
  assert.equal(totalReads(), readsBefore);
});
