/** Rows and the count a statement reported, the same shape from every backend. */
export interface QueryResult<T = Record<string, unknown>> {
  rows: T[];
  rowCount: number;
}

/** What a transaction body gets: statements on one connection of the primary, inside BEGIN ... COMMIT. */
export interface Transaction {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
}

/**
 * One database server as the router sees it: a small interface, one file per backend (postgres-driver.ts,
 * sqlite-driver.ts). Each runs inside a RuntimeDriver (runtime-driver.ts: init once, closed check, close once,
 * timeouts, counts); routing, metrics and errors with codes are added around it by database.ts.
 * Parameters are written `$1, $2, ...` for every backend.
 *
 * @example
 *   const { value, lsn } = await driver.transaction((tx) => tx.query('UPDATE t SET n = n + 1'));
 */
export interface Driver {
  /** For messages and metrics: `primary`, `127.0.0.1:5433`. */
  readonly name: string;
  /** A statement that must not write (a read-only transaction on PostgreSQL; checked up front on SQLite). */
  read<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /** One statement on the primary, autocommitted, with the WAL position just after its commit (0 if none). */
  write<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<{ value: QueryResult<T>; lsn: number }>;
  /**
   * Runs `fn` in a transaction and returns its value with the WAL position just after COMMIT (0 if none), and
   * `before`, the position after `fn`'s statements and before COMMIT (0 if none): it orders writes of one row.
   */
  transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<{ value: R; lsn: number; before: number }>;
  /** On a primary: the WAL insert position now. On a replica: the last position replayed. */
  position(): Promise<number>;
  close(): Promise<void>;
}
