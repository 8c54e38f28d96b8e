import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Database, database, parseLsn } from '../../src/data/index.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { createItems } from './fixtures/schema.ts';

let pg: PostgresCluster;
let db: Database;

before(async () => {
  pg = await startPostgres({ replicas: 2 });
  await createItems(pg);
  db = database({
    primary: pg.primaryUrl,
    replicas: pg.replicaUrls,
    cache: undefined,
    maxLagBytes: 64 * 1024,
    lagPollInterval: 50,
    timeout: 1000,
  });
  await db.ready();
});

after(async () => {
  await db?.close();
  await pg?.stop();
});

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(25);
  }
}

const readsOn = (i: number) => db.metrics().reads[db.status().replicas[i]!.name] ?? 0;

test('both replicas take reads when they keep up', async () => {
  await until('both replicas in rotation', () => db.status().replicas.every((r) => r.inRotation));
  const [r0, r1] = [readsOn(0), readsOn(1)];
  for (let i = 0; i < 20; i++) await db.query('SELECT 1');
  assert.ok(readsOn(0) - r0 >= 5 && readsOn(1) - r1 >= 5, JSON.stringify(db.metrics().reads));
  assert.equal(db.metrics().readsPrimaryNoReplica, 0);
});

test('a paused replica leaves rotation past maxLagBytes and comes back when resumed', async () => {
  await pg.pauseReplay(0);
  // ~1 MB of WAL, far past the 64 KiB bound.
  const { lsn } = await db.execute(
    "INSERT INTO items SELECT 'bulk' || g, g FROM generate_series(1, 10000) g",
  );
  await until('replica 0 out of rotation', () => !db.status().replicas[0]!.inRotation);
  assert.ok(db.status().replicas[0]!.lagBytes > 64 * 1024);
  // The healthy replica may lag past the bound for a moment while it applies the bulk insert.
  await until('replica 1 in rotation', () => db.status().replicas[1]!.inRotation);
  await until('replica 1 has the insert', () => db.status().replicas[1]!.replayLsn >= parseLsn(lsn!));

  // One slow replica moves its share to the other replica, not to the primary.
  const [r0, r1, primary] = [readsOn(0), readsOn(1), db.metrics().readsPrimaryNoReplica];
  for (let i = 0; i < 20; i++) {
    const rows = await db.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE id LIKE 'bulk%'", [], {
      minLsn: lsn,
    });
    assert.equal(rows[0]!.n, '10000', 'no read may come from the paused replica');
  }
  assert.equal(readsOn(0), r0);
  assert.equal(readsOn(1) - r1, 20);
  assert.equal(db.metrics().readsPrimaryNoReplica, primary);

  await pg.resumeReplay(0);
  await until('replica 0 back in rotation', () => db.status().replicas[0]!.inRotation);
  for (let i = 0; i < 20; i++) await db.query('SELECT 1');
  assert.ok(readsOn(0) > r0, 'the resumed replica takes reads again');
  assert.ok(db.metrics().replicaLeaves >= 1 && db.metrics().replicaJoins >= 3);
});

test('every replica too far behind: reads fall back to the primary', async () => {
  await pg.pauseReplay(0);
  await pg.pauseReplay(1);
  await db.execute("INSERT INTO items SELECT 'more' || g, g FROM generate_series(1, 10000) g");
  await until('no replica in rotation', () => db.status().replicas.every((r) => !r.inRotation));
  const rows = await db.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE id LIKE 'more%'");
  assert.equal(rows[0]!.n, '10000');
  assert.ok(db.metrics().readsPrimaryNoReplica >= 1);
  await pg.resumeReplay(0);
  await pg.resumeReplay(1);
  await until('replicas back', () => db.status().replicas.every((r) => r.inRotation));
});

test('a read that writes fails with CLONES_DATA_READ_ONLY, on a replica and on the primary', async () => {
  await assert.rejects(db.query("INSERT INTO items VALUES ('ro', 1)"), { code: 'CLONES_DATA_READ_ONLY' });
  await assert.rejects(db.query("INSERT INTO items VALUES ('ro', 1)", [], { consistency: 'strong' }), {
    code: 'CLONES_DATA_READ_ONLY',
  });
});

test('the primary stopped: writes fail fast with a coded error, reads keep working from replicas', async () => {
  const { lsn } = await db.execute("INSERT INTO items VALUES ('before-stop', 7)");
  await until('a replica has the write', () => db.status().replicas.some((r) => r.replayLsn > 0));
  await pg.stopPrimary();
  try {
    const started = Date.now();
    await assert.rejects(db.execute("INSERT INTO items VALUES ('during-stop', 1)"), {
      code: 'CLONES_DATA_PRIMARY_UNAVAILABLE',
    });
    await assert.rejects(
      db.transaction((tx) => tx.query("INSERT INTO items VALUES ('during-stop', 1)")),
      { code: 'CLONES_DATA_PRIMARY_UNAVAILABLE' },
    );
    assert.ok(Date.now() - started < 1000, `writes failed after ${Date.now() - started} ms`);

    await sleep(200); // a few polls with the primary gone: the replicas must stay in rotation
    for (let i = 0; i < 10; i++) {
      const rows = await db.query<{ v: number }>('SELECT v FROM items WHERE id = $1', ['before-stop'], {
        minLsn: lsn,
      });
      assert.equal(rows[0]?.v, 7);
    }
    assert.ok(db.status().replicas.every((r) => r.inRotation));
    await assert.rejects(db.query('SELECT 1', [], { consistency: 'strong' }), {
      code: 'CLONES_DATA_UNAVAILABLE',
    });
  } finally {
    await pg.startPrimary();
  }
  const again = await db.execute("INSERT INTO items VALUES ('after-restart', 1)");
  assert.ok(again.lsn);
});
