import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CookieClient } from '../harness/cookie-client.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { type DataClone, startDataClones } from './fixtures/clones.ts';
import { createItems } from './fixtures/schema.ts';

let pg: PostgresCluster;
let redis: RedisServer;
let clones: DataClone[] = [];

before(async () => {
  [pg, redis] = await Promise.all([startPostgres({ replicas: 2 }), startRedis()]);
  await createItems(pg);
  clones = await startDataClones(3, {
    DATABASE_URL: pg.primaryUrl,
    DATABASE_REPLICA_URLS: pg.replicaUrls.join(','),
    SESSION_STORE: redis.url,
  });
});

after(async () => {
  await Promise.all(clones.map((c) => c.process.stop()));
  await Promise.all([pg?.stop(), redis?.stop()]);
});

test('read-your-writes holds across 3 clone processes while both replicas lag by seconds', async () => {
  await pg.pauseReplay(0);
  await pg.setApplyDelay(1, 3000);
  const user = new CookieClient('');
  let staleSeen = 0;
  for (let i = 1; i <= 9; i++) {
    const writer = clones[i % 3]!;
    const w = await user.request('POST', `${writer.url}/items/a?v=${i}`);
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.match(w.body.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    for (const reader of [clones[(i + 1) % 3]!, clones[(i + 2) % 3]!]) {
      const r = await user.request('GET', `${reader.url}/items/a`);
      assert.equal(r.body.v, i, `clone ${reader.url} must show the user's own write ${i}`);
      // Another user (no session) reading eventually-consistent data sees the lag: the test is real.
      const other = await new CookieClient('').request('GET', `${reader.url}/items/a?eventual=1`);
      if (other.body.v !== i) staleSeen++;
    }
  }
  assert.ok(staleSeen > 0, 'the replicas were expected to serve older values to eventual reads');

  // Once the replicas catch up, the same user's reads go to replicas again, not to the primary.
  await pg.resumeReplay(0);
  await pg.setApplyDelay(1, 0);
  await sleep(1000);
  const before = await replicaReads();
  for (let i = 0; i < 6; i++) {
    const r = await user.request('GET', `${clones[i % 3]!.url}/items/a`);
    assert.equal(r.body.v, 9);
  }
  assert.ok((await replicaReads()) - before >= 6, 'caught-up replicas serve read-your-writes reads');
});

async function replicaReads(): Promise<number> {
  let total = 0;
  for (const c of clones) {
    const m = (await (await fetch(`${c.url}/metrics`)).json()) as { reads: Record<string, number> };
    for (const [server, n] of Object.entries(m.reads)) if (server.startsWith('replica')) total += n;
  }
  return total;
}
