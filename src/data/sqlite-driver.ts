import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { readOnlyViolation } from '../errors.ts';
import { driverLoadFailed, requireDriver } from '../require-driver.ts';
import type { QueryResult, Transaction } from './driver.ts';
import type { DriverBackend } from './runtime-driver.ts';

export interface SqliteDriverOptions {
  /** A file path, or `:memory:` (one process only). */
  path: string;
  /** How long a statement waits for another process's write lock (busy_timeout). */
  timeout: number;
}

/**
 * The embedded default: one SQLite file that every clone on the host opens (WAL mode, so readers never wait
 * for the writer). There are no replicas and no WAL positions: every read sees every committed write.
 * Transactions are serialised inside the process (one write connection) and across processes by SQLite's lock.
 *
 * The file is opened by `init()`: use it through RuntimeDriver, which runs that once before the first call.
 *
 * @example
 *   const driver = new RuntimeDriver(new SqliteDriver({ path: '.clones/data.db', timeout: 2000 }), { timeout: 2000 });
 */
export class SqliteDriver implements DriverBackend {
  readonly name: string;
  readonly #options: SqliteDriverOptions;
  #writer!: SqliteDb;
  #reader!: SqliteDb;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: SqliteDriverOptions) {
    this.name = `sqlite ${options.path}`;
    this.#options = options;
  }

  /** Opens the file (RuntimeDriver runs this once, before the first statement). */
  async init(): Promise<void> {
    const options = this.#options;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    const Sqlite = requireDriver<SqliteConstructor>('better-sqlite3', 'a sqlite: database');
    try {
      this.#writer = new Sqlite(options.path, { timeout: options.timeout });
    } catch (err) {
      // The native binding loads with the first database opened: a failed build shows up here.
      throw driverLoadFailed(err, 'better-sqlite3', 'a sqlite: database');
    }
    this.#writer.pragma('journal_mode = WAL');
    this.#writer.pragma('synchronous = NORMAL');
    // A second connection for reads, so a read never sees another request's uncommitted transaction.
    this.#reader =
      options.path === ':memory:' ? this.#writer : new Sqlite(options.path, { timeout: options.timeout });
  }

  async read<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const [text, values] = positional(sql, params);
    const stmt = this.#reader.prepare(text);
    if (!stmt.readonly) throw readOnlyViolation(`SQLite: "${sql.slice(0, 60)}" is not read-only`);
    const rows = stmt.reader ? (stmt.all(...values) as T[]) : [];
    return { rows, rowCount: rows.length };
  }

  write<T>(sql: string, params?: readonly unknown[]): Promise<{ value: QueryResult<T>; lsn: number }> {
    return this.#exclusive(async () => ({ value: run<T>(this.#writer, sql, params), lsn: 0 }));
  }

  transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<{ value: R; lsn: number; before: number }> {
    return this.#exclusive(async () => {
      // IMMEDIATE takes the write lock now: a read-then-write body cannot deadlock with another process.
      this.#writer.exec('BEGIN IMMEDIATE');
      try {
        const value = await fn({
          query: async <T>(sql: string, params?: readonly unknown[]) => run<T>(this.#writer, sql, params),
        });
        this.#writer.exec('COMMIT');
        return { value, lsn: 0, before: 0 };
      } catch (err) {
        if (this.#writer.inTransaction) this.#writer.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async position(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    if (this.#reader !== this.#writer) this.#reader.close();
    this.#writer.close();
  }

  /** One transaction at a time on the write connection: an await inside one must not let another begin. */
  #exclusive<R>(work: () => Promise<R>): Promise<R> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }
}

function run<T>(db: SqliteDb, sql: string, params?: readonly unknown[]): QueryResult<T> {
  const [text, values] = positional(sql, params);
  const stmt = db.prepare(text);
  if (stmt.reader) {
    const rows = stmt.all(...values) as T[];
    return { rows, rowCount: rows.length };
  }
  return { rows: [], rowCount: stmt.run(...values).changes };
}

/**
 * `$1, $2` (PostgreSQL's style, the one the data layer speaks) to SQLite's anonymous `?`, repeating values
 * where a number repeats. Text inside single quotes is left alone.
 */
function positional(sql: string, params: readonly unknown[] = []): [string, unknown[]] {
  const values: unknown[] = [];
  const text = sql.replace(/'(?:[^']|'')*'|\$(\d+)/g, (match, n: string | undefined) => {
    if (n === undefined) return match;
    values.push(bindable(params[Number(n) - 1]));
    return '?';
  });
  return [text, values];
}

/** SQLite binds no booleans or Dates; store them the way PostgreSQL's text output would compare. */
function bindable(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  return value === undefined ? null : value;
}

// better-sqlite3 ships no types and @types/better-sqlite3 is not a dependency: the calls used here, typed.
interface SqliteStatement {
  readonly reader: boolean;
  readonly readonly: boolean;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}
interface SqliteDb {
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  pragma(sql: string): unknown;
  exec(sql: string): void;
  close(): void;
}
type SqliteConstructor = new (path: string, options?: { timeout?: number }) => SqliteDb;
