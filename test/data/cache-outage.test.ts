import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Database, database } from '../../src/data/index.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { NO_HANG_MS } from '../harness/session-app.ts';
import { createItems } from './fixtures/schema.ts';

let pg: PostgresCluster;
let redis: RedisServer;
let writer: Database;
let reader: Database;

before(async () => {
  // AOF: the entry the write could not update survives the cache's restart, as it would a network blip.
  [pg, redis] = await Promise.all([startPostgres({ replicas: 0 }), startRedis({ appendonly: true })]);
  await createItems(pg);
  [writer, reader] = [0, 1].map(() =>
    database({ primary: pg.primaryUrl, cache: redis.url, timeout: 500 }),
  ) as [Database, Database];
  await Promise.all([writer.ready(), reader.ready()]);
});

after(async () => {
  await Promise.all([writer?.close(), reader?.close()]);
  await Promise.all([pg?.stop(), redis?.stop()]);
});

const upsert = 'INSERT INTO items (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = $2';
const read = (db: Database) =>
  db.cached(
    'k',
    60_000,
    async (q) => (await q.query<{ v: number }>('SELECT v FROM items WHERE id = $1', ['k']))[0]!.v,
  );

test('a write whose cache update failed: its clone reads the new value, the others once the cache is back', async () => {
  await writer.write('k', 1, (tx) => tx.query(upsert, ['k', 1]));
  assert.equal(await read(reader), 1, 'cached everywhere');

  await redis.kill();
  const errorsBefore = writer.metrics().cacheErrors;
  await writer.write('k', 2, (tx) => tx.query(upsert, ['k', 2]));
  assert.ok(writer.metrics().cacheErrors > errorsBefore, 'the cache update failed');
  assert.equal(await read(writer), 2, 'the cache is down: the database answers');

  await redis.restart(); // still holds k = 1, now older than the committed write
  assert.equal(await read(writer), 2, 'the writing clone does not trust the entry it could not update');
  const started = Date.now();
  let seen = await read(reader);
  while (seen !== 2 && Date.now() - started < NO_HANG_MS) {
    await sleep(100);
    seen = await read(reader);
  }
  assert.equal(
    seen,
    2,
    'the stale entry was deleted once the cache was reachable, not left for its 60 s TTL',
  );
  assert.equal(await read(reader), 2);
});
