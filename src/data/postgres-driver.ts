import type pg from 'pg';
import type { Logger } from 'pino';
import { requireDriver } from '../require-driver.ts';
import type { Driver, QueryResult, Transaction } from './driver.ts';
import { parseLsn } from './lsn.ts';

export interface PostgresDriverOptions {
  url: string;
  role: 'primary' | 'replica';
  timeout: number;
  poolSize: number;
  logger: Logger;
}

// After COMMIT, on the same connection: the insert position is past the commit record even with
// synchronous_commit=off, where pg_current_wal_lsn() can still be before it (references/data.md §3).
const INSERT_LSN = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';
// The position before COMMIT, COMMIT, and the position after it, in one simple-protocol message: one round trip
// for what took two. The last SELECT runs after COMMIT returned, in its own implicit transaction, so it is past
// the commit record; the first one, after the transaction's statements, orders writes of the same rows (a
// writer that waited for another's row lock reads a position past that one's commit).
const COMMIT_LSN = `${INSERT_LSN}; COMMIT; ${INSERT_LSN}`;
const REPLAY_LSN = 'SELECT pg_last_wal_replay_lsn()::text AS lsn';

/**
 * One PostgreSQL server through node-postgres pools. A primary keeps two pools: one for writes, and one whose
 * sessions are `default_transaction_read_only`, so a write sent through a read fails the same way on the
 * primary as on a replica. The server cancels statements past `timeout` (statement_timeout).
 *
 * @example
 *   const primary = new PostgresDriver({ url, role: 'primary', timeout: 2000, poolSize: 10, logger });
 */
export class PostgresDriver implements Driver {
  readonly name: string;
  readonly #role: 'primary' | 'replica';
  readonly #writer: pg.Pool | undefined;
  readonly #reader: pg.Pool;

  constructor(options: PostgresDriverOptions) {
    const url = new URL(options.url);
    this.name = `${options.role} ${url.hostname}:${url.port || 5432}`;
    this.#role = options.role;
    const log = options.logger.child({ server: this.name });
    // Loaded on first use: the SQLite default (what `npm start` runs) should not pay for the PostgreSQL client.
    const { Pool } = requireDriver<typeof pg>('pg', 'a postgres:// database');
    const pool = (readOnly: boolean) => {
      const p = new Pool({
        connectionString: options.url,
        max: options.poolSize,
        connectionTimeoutMillis: options.timeout,
        query_timeout: options.timeout,
        idleTimeoutMillis: 10_000,
        options: `-c statement_timeout=${options.timeout}${readOnly ? ' -c default_transaction_read_only=on' : ''}`,
      });
      // An idle connection the server dropped (restart, failover) must not crash the clone.
      p.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
      return p;
    };
    this.#reader = pool(true);
    this.#writer = options.role === 'primary' ? pool(false) : undefined;
  }

  async read<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const r = await this.#reader.query(sql, params as unknown[] | undefined);
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }

  async write<T>(sql: string, params?: readonly unknown[]): Promise<{ value: QueryResult<T>; lsn: number }> {
    const client = await this.#writerPool().connect();
    try {
      const r = await client.query(sql, params as unknown[] | undefined);
      const lsn = await client.query(INSERT_LSN);
      client.release();
      return { value: { rows: r.rows as T[], rowCount: r.rowCount ?? 0 }, lsn: parseLsn(lsn.rows[0].lsn) };
    } catch (err) {
      client.release(true);
      throw err;
    }
  }

  async transaction<R>(
    fn: (tx: Transaction) => Promise<R>,
  ): Promise<{ value: R; lsn: number; before: number }> {
    const client = await this.#writerPool().connect();
    try {
      await client.query('BEGIN');
      const tx: Transaction = {
        query: async <T>(sql: string, params?: readonly unknown[]) => {
          const r = await client.query(sql, params as unknown[] | undefined);
          return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
        },
      };
      const value = await fn(tx);
      // A multi-statement query answers one result per statement.
      const results = (await client.query(COMMIT_LSN)) as unknown as pg.QueryResult[];
      client.release();
      return {
        value,
        lsn: parseLsn(results[2]!.rows[0].lsn),
        before: parseLsn(results[0]!.rows[0].lsn),
      };
    } catch (err) {
      // The connection may be mid-transaction or broken: drop it rather than hand it to the next caller.
      client.release(true);
      throw err;
    }
  }

  async position(): Promise<number> {
    const r = await this.#reader.query(this.#role === 'primary' ? INSERT_LSN : REPLAY_LSN);
    const text = r.rows[0]?.lsn;
    return typeof text === 'string' ? parseLsn(text) : 0;
  }

  async close(): Promise<void> {
    await Promise.all([this.#reader.end(), this.#writer?.end()]);
  }

  #writerPool(): pg.Pool {
    if (!this.#writer) throw new Error(`${this.name} is a replica: it takes no writes`);
    return this.#writer;
  }
}
