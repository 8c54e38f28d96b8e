import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Database, database } from '../../src/data/index.ts';
import { lsnOf } from '../../src/data/lsn.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { parsePrometheus } from '../harness/prometheus-page.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { createItems } from './fixtures/schema.ts';

let pg: PostgresCluster;
let redis: RedisServer;
let db: Database;

before(async () => {
  [pg, redis] = await Promise.all([startPostgres({ replicas: 1 }), startRedis()]);
  await createItems(pg);
  db = database({ primary: pg.primaryUrl, replicas: pg.replicaUrls, cache: redis.url, lagPollInterval: 50 });
  await db.ready();
});

after(async () => {
  await db?.close();
  await Promise.all([pg?.stop(), redis?.stop()]);
});

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await sleep(25);
  assert.ok(ok(), `timed out waiting for ${what}`);
}

const select = 'SELECT v FROM items WHERE id = $1';

test('clones/data renders reads per server, primary reads, cache hits and misses, replica lag', async () => {
  const { primary, replicas } = db.status();
  const replica = replicas[0]!.name;
  await until('the replica in rotation', () => db.status().replicas[0]!.inRotation);
  const start = parsePrometheus(await db.prometheus());
  const at = (page: ReturnType<typeof parsePrometheus>, key: string) => page.samples.get(key) ?? 0;

  const { lsn } = await db.execute('INSERT INTO items (id, v) VALUES ($1, $2)', ['a', 1]);
  // Eventual reads see the row only once the replica has it: wait, so that every read below finds it.
  await until('the replica has the row', () => db.status().replicas[0]!.replayLsn >= lsnOf(lsn));
  for (let i = 0; i < 3; i++) await db.query(select, ['a'], { consistency: 'eventual' });
  for (let i = 0; i < 2; i++) await db.query(select, ['a'], { consistency: 'strong' });
  // A position no replica has replayed: the read goes to the primary, and says why.
  await db.query(select, ['a'], { minLsn: 'FFFFFFF/FFFFFFF0' });
  let loads = 0;
  for (let i = 0; i < 3; i++)
    await db.cached('item:a', 60_000, async (r) => {
      loads++;
      return (await r.query<{ v: number }>(select, ['a']))[0]?.v;
    });
  assert.equal(loads, 1);

  const page = parsePrometheus(await db.prometheus());
  const moved = (key: string) => at(page, key) - at(start, key);
  assert.equal(moved('clones_data_writes_total'), 1);
  assert.equal(
    moved(`clones_data_reads_total{server="${replica}"}`),
    4,
    '3 eventual reads and the cache fill',
  );
  assert.equal(
    moved(`clones_data_reads_total{server="${primary}"}`),
    3,
    '2 strong reads and 1 for a position',
  );
  assert.equal(moved('clones_data_primary_reads_total{reason="position"}'), 1);
  assert.equal(moved('clones_data_primary_reads_total{reason="no_replica"}'), 0);
  assert.equal(moved('clones_data_cache_misses_total'), 1);
  assert.equal(moved('clones_data_cache_hits_total'), 2);
  assert.equal(page.types.get('clones_data_replica_lag_bytes'), 'gauge');
  assert.equal(page.samples.get(`clones_data_replica_in_rotation{replica="${replica}"}`), 1);
  // Every reads_total sample is one server the data layer counted, with the same number.
  const reads = [...page.samples].filter(([k]) => k.startsWith('clones_data_reads_total'));
  assert.deepEqual(
    Object.fromEntries(reads.map(([k, n]) => [k.slice('clones_data_reads_total{server="'.length, -2), n])),
    db.metrics().reads,
  );

  // A replica that stops applying WAL shows its lag in bytes, as the pool measures it.
  await pg.pauseReplay(0);
  try {
    await db.execute("INSERT INTO items SELECT 'bulk' || g, g FROM generate_series(1, 2000) g");
    await until('lag seen by the pool', () => db.status().replicas[0]!.lagBytes > 0);
    const lag = db.status().replicas[0]!.lagBytes;
    const lagging = parsePrometheus(await db.prometheus());
    assert.equal(lagging.samples.get(`clones_data_replica_lag_bytes{replica="${replica}"}`), lag);
    assert.ok(lag > 0);
  } finally {
    await pg.resumeReplay(0);
  }
  await until('the replica caught up', () => db.status().replicas[0]!.lagBytes === 0);
  const caught = parsePrometheus(await db.prometheus());
  assert.equal(caught.samples.get(`clones_data_replica_lag_bytes{replica="${replica}"}`), 0);
});
