import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Database, database } from '../../src/data/index.ts';
import { type DriverBackend, RuntimeDriver } from '../../src/data/runtime-driver.ts';

/** One database server kind behind clones/data's `Driver`, as the driver suite sees it. */
export interface DataBackend {
  name: string;
  /**
   * An empty database: its URL for `database({ primary })`, and the backend's Driver on the same database as
   * the primary (`open` may be called more than once); `cleanup` stops what `setup` started.
   */
  setup(): Promise<{ url: string; open(): DriverBackend; cleanup(): Promise<void> }>;
  /** Whether commits have WAL positions (PostgreSQL). SQLite has none: every position is 0, every `lsn` undefined. */
  positions: boolean;
}

const LSN = /^[0-9A-F]+\/[0-9A-F]+$/;

/**
 * What every primary the data layer runs on must do the same, through its Driver (inside the RuntimeDriver, as
 * the data layer runs it) and through `database()`: `$n` parameters, transactions that commit or roll back as a
 * whole and serialise on a row, reads that refuse to write, and positions that only grow (or none at all).
 *
 * @example
 *   driverConformance({
 *     name: 'sqlite',
 *     positions: false,
 *     setup: async () => ({ url: `sqlite:${file}`, open: () => new SqliteDriver({ path: file, timeout: 2000 }), cleanup }),
 *   });
 */
export function driverConformance(backend: DataBackend): void {
  describe(`${backend.name}: data driver conformance`, () => {
    let env: Awaited<ReturnType<DataBackend['setup']>>;
    let driver: RuntimeDriver;
    before(async () => {
      env = await backend.setup();
      // As the data layer runs it, with a timeout long enough that no test here is a test of timeouts.
      driver = new RuntimeDriver(env.open(), { timeout: 60_000 });
      await driver.write('CREATE TABLE driver_items (id TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    });
    after(async () => {
      await driver?.close();
      await env?.cleanup();
    });

    test('write and read take $n parameters, reused and in any order; $1 inside quotes is text', async () => {
      const w = await driver.write('INSERT INTO driver_items (id, v) VALUES ($2, $1), ($3, $1)', [
        5,
        'p',
        'q',
      ]);
      assert.equal(w.value.rowCount, 2);
      const r = await driver.read<{ id: string; v: number }>(
        'SELECT id, v FROM driver_items WHERE v = $1 AND id IN ($2, $3) ORDER BY id',
        [5, 'p', 'q'],
      );
      assert.deepEqual(r.rows, [
        { id: 'p', v: 5 },
        { id: 'q', v: 5 },
      ]);
      assert.equal(r.rowCount, 2);
      const literal = await driver.read("SELECT '$1' AS t, v FROM driver_items WHERE id = $1", ['p']);
      assert.deepEqual(literal.rows, [{ t: '$1', v: 5 }]);
    });

    test('a transaction sees its own writes, returns its value, and commits them as one', async () => {
      const { value, lsn, before } = await driver.transaction(async (tx) => {
        await tx.query('INSERT INTO driver_items (id, v) VALUES ($1, $2)', ['t1', 1]);
        await tx.query('UPDATE driver_items SET v = v + $1 WHERE id = $2', [10, 't1']);
        return (await tx.query<{ v: number }>('SELECT v FROM driver_items WHERE id = $1', ['t1'])).rows[0]!.v;
      });
      assert.equal(value, 11);
      assert.deepEqual((await driver.read('SELECT v FROM driver_items WHERE id = $1', ['t1'])).rows, [
        { v: 11 },
      ]);
      if (backend.positions) {
        assert.ok(before > 0 && lsn > before, `before ${before}, after COMMIT ${lsn}`);
      } else {
        assert.deepEqual({ lsn, before }, { lsn: 0, before: 0 });
      }
    });

    test('a transaction whose body throws rolls back with that error, and the next one runs', async () => {
      const boom = new Error('boom');
      await assert.rejects(
        driver.transaction(async (tx) => {
          await tx.query('INSERT INTO driver_items (id, v) VALUES ($1, $2)', ['rolled-back', 1]);
          await tx.query('UPDATE driver_items SET v = 99 WHERE id = $1', ['t1']);
          throw boom;
        }),
        (err) => err === boom,
      );
      const rows = await driver.read('SELECT id, v FROM driver_items WHERE id IN ($1, $2)', [
        't1',
        'rolled-back',
      ]);
      assert.deepEqual(rows.rows, [{ id: 't1', v: 11 }]);
      const next = await driver.transaction((tx) =>
        tx.query('UPDATE driver_items SET v = 12 WHERE id = $1', ['t1']),
      );
      assert.equal(next.value.rowCount, 1);
    });

    test('a read refuses a statement that writes, and writes nothing', async () => {
      await assert.rejects(driver.read("INSERT INTO driver_items (id, v) VALUES ('read-write', 1)"));
      const rows = await driver.read('SELECT id FROM driver_items WHERE id = $1', ['read-write']);
      assert.deepEqual(rows.rows, []);
    });

    test('20 concurrent transactions updating one row are serialised: each sees its own increment', async () => {
      await driver.write('INSERT INTO driver_items (id, v) VALUES ($1, 0)', ['counter']);
      const seen = await Promise.all(
        Array.from({ length: 20 }, () =>
          driver.transaction(async (tx) => {
            await tx.query('UPDATE driver_items SET v = v + 1 WHERE id = $1', ['counter']);
            return (await tx.query<{ v: number }>('SELECT v FROM driver_items WHERE id = $1', ['counter']))
              .rows[0]!.v;
          }),
        ),
      );
      assert.deepEqual(
        seen.map((s) => s.value).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.deepEqual((await driver.read('SELECT v FROM driver_items WHERE id = $1', ['counter'])).rows, [
        { v: 20 },
      ]);
    });

    test(
      backend.positions ? 'positions only grow: write, then position()' : 'no positions: every one is 0',
      async () => {
        const first = await driver.write('UPDATE driver_items SET v = v + 1 WHERE id = $1', ['counter']);
        const second = await driver.write('UPDATE driver_items SET v = v + 1 WHERE id = $1', ['counter']);
        const now = await driver.position();
        if (backend.positions) {
          assert.ok(first.lsn > 0 && second.lsn > first.lsn, `${first.lsn} then ${second.lsn}`);
          assert.ok(now >= second.lsn, `position ${now} after a write at ${second.lsn}`);
        } else {
          assert.deepEqual([first.lsn, second.lsn, now], [0, 0, 0]);
        }
      },
    );

    describe('through database()', () => {
      let db: Database;
      before(async () => {
        db = database({ primary: env.url, replicas: [], cache: undefined });
        await db.execute('CREATE TABLE items (id TEXT PRIMARY KEY, v INTEGER NOT NULL)');
      });
      after(async () => {
        await db?.close();
      });

      test(`the same API, $n parameters, ${backend.positions ? 'a position per write' : 'no positions'}`, async () => {
        const w = await db.execute('INSERT INTO items (id, v) VALUES ($1, $2)', ['a', 1]);
        assert.equal(w.rowCount, 1);
        if (backend.positions) assert.match(w.lsn ?? '', LSN);
        else assert.equal(w.lsn, undefined);
        const { value } = await db.transaction(async (tx) => {
          await tx.query('UPDATE items SET v = v + $1 WHERE id = $2', [10, 'a']);
          return (await tx.query<{ v: number }>('SELECT v FROM items WHERE id = $1 AND v > $2', ['a', 0]))
            .rows[0]!.v;
        });
        assert.equal(value, 11);
        assert.deepEqual(
          await db.query('SELECT v FROM items WHERE id = $1', ['a'], { consistency: 'strong' }),
          [{ v: 11 }],
        );
        assert.equal(db.status().replicas.length, 0);
      });

      test('a failed transaction rolls back, and the next one runs', async () => {
        await assert.rejects(
          db.transaction(async (tx) => {
            await tx.query('UPDATE items SET v = 99 WHERE id = $1', ['a']);
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.deepEqual(await db.query('SELECT v FROM items WHERE id = $1', ['a']), [{ v: 11 }]);
        const next = await db.transaction((tx) => tx.query('UPDATE items SET v = v WHERE id = $1', ['a']));
        assert.equal(next.value.rowCount, 1);
      });

      test('a read that writes is CLONES_DATA_READ_ONLY', async () => {
        await assert.rejects(db.query("INSERT INTO items VALUES ('x', 1)"), {
          code: 'CLONES_DATA_READ_ONLY',
        });
      });
    });
  });
}
