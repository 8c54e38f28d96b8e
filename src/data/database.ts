import type { Logger } from 'pino';
import { dataUnavailable, primaryUnavailable, readOnlyViolation } from '../errors.ts';
import { CacheAside } from './cache-aside.ts';
import { type DataMetrics, newMetrics } from './data-metrics.ts';
import { dataPrometheus } from './data-prometheus.ts';
import { isConnectionError, isReadOnlyError, isRecoveryConflict } from './db-error.ts';
import type { QueryResult, Transaction } from './driver.ts';
import { formatLsn, lsnOf } from './lsn.ts';
import type { DataOptions, ResolvedDataOptions } from './options.ts';
import { resolveDataOptions } from './options.ts';
import { PostgresDriver } from './postgres-driver.ts';
import { RedisCache } from './redis-cache.ts';
import { ReplicaPool, type ReplicaStatus } from './replica-pool.ts';
import { RuntimeCache } from './runtime-cache.ts';
import { type DriverBackend, RuntimeDriver } from './runtime-driver.ts';
import { type LsnSession, recordLsn, sessionLsn } from './session-lsn.ts';
import { SqliteDriver } from './sqlite-driver.ts';

/**
 * How fresh a read must be. `eventual`: any replica in rotation. `read-your-writes`: a replica that has
 * replayed the session's (or `minLsn`'s) position, else the primary. `strong`: the primary.
 */
export type Consistency = 'eventual' | 'read-your-writes' | 'strong';

export interface ReadOptions {
  consistency?: Consistency;
  /** A position the read must see (an `lsn` from a write's result); implies `read-your-writes`. */
  minLsn?: string | number;
}

/** What a committed write answers: the writer's value and the commit position (undefined on SQLite). */
export interface Committed<R> {
  value: R;
  lsn: string | undefined;
}

export type WriteResult<T> = QueryResult<T> & { lsn: string | undefined };

/** What a `cached()` loader reads through: routed to a server that has seen the key's last write. */
export interface Reader {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

/** Default life of an entry that `write()` stores, when no ttl is given. */
const WRITE_TTL = 60_000;

/**
 * The data layer: writes and transactions on the primary, reads on replicas (least lag first), a shared cache
 * in front. Built by `database()`; see docs/data.md.
 *
 * @example
 *   const db = database({ primary: 'postgres://...', replicas: ['postgres://...'], cache: 'redis://...' });
 *   const { lsn } = await db.execute('UPDATE products SET price = $1 WHERE id = $2', [5, 1]);
 *   const rows = await db.query('SELECT * FROM products WHERE id = $1', [1], { minLsn: lsn });
 */
export class Database {
  readonly options: ResolvedDataOptions;
  readonly #primary: RuntimeDriver;
  readonly #pool: ReplicaPool;
  readonly #aside: CacheAside;
  readonly #cache: RuntimeCache | undefined;
  readonly #metrics: DataMetrics = newMetrics();
  readonly #log: Logger;
  readonly #ready: Promise<void>;
  #closed: Promise<void> | undefined;

  constructor(options?: DataOptions) {
    const o = resolveDataOptions(options);
    this.options = o;
    this.#log = o.logger;
    const runtime = (driver: DriverBackend) => new RuntimeDriver(driver, { timeout: o.timeout });
    const pg = (url: string, role: 'primary' | 'replica') =>
      runtime(new PostgresDriver({ url, role, timeout: o.timeout, poolSize: o.poolSize, logger: o.logger }));
    this.#primary =
      o.primary.kind === 'sqlite'
        ? runtime(new SqliteDriver({ path: o.primary.path, timeout: o.timeout }))
        : pg(o.primary.url, 'primary');
    const replicas = o.replicas.map((r) => pg(r.kind === 'postgres' ? r.url : '', 'replica'));
    this.#pool = new ReplicaPool(
      this.#primary,
      replicas,
      { maxLagBytes: o.maxLagBytes, pollInterval: o.lagPollInterval, timeout: o.timeout, logger: o.logger },
      this.#metrics,
    );
    this.#cache = o.cache
      ? new RuntimeCache(
          new RedisCache({
            url: o.cache,
            prefix: o.cachePrefix,
            timeout: o.timeout,
            markTtl: o.writeMarkTtl,
            logger: o.logger,
          }),
          { timeout: o.timeout },
        )
      : undefined;
    this.#aside = new CacheAside(this.#cache, o, this.#metrics);
    this.#ready = this.#pool.start();
  }

  /** Resolves after the first replica poll: until then reads go to the primary. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** A read, routed by `consistency` (default `eventual`, or `read-your-writes` when `minLsn` is given). */
  async query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options: ReadOptions = {},
  ): Promise<T[]> {
    const minLsn = lsnOf(options.minLsn);
    const consistency = options.consistency ?? (minLsn > 0 ? 'read-your-writes' : 'eventual');
    return (await this.#read<T>(sql, params, consistency === 'eventual' ? 0 : minLsn, consistency)).rows;
  }

  /** One statement on the primary, autocommitted; answers its rows and its commit position. */
  async execute<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<WriteResult<T>> {
    const { value, lsn } = await this.#write(async () => ({
      ...(await this.#primary.write<T>(sql, params)),
      before: 0,
    }));
    return { ...value, lsn };
  }

  /** `fn` in a transaction on the primary; answers its value and the commit position. */
  async transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<Committed<R>> {
    const { value, lsn } = await this.#write(() => this.#primary.transaction(fn));
    return { value, lsn };
  }

  /**
   * Cache-aside: the cached value of `key`, or `loader`'s, stored for `ttlMs` (less up to `ttlJitter`).
   * One database read per miss across every clone; the loader reads at or after the key's last write.
   */
  cached<T>(
    key: string,
    ttlMs: number,
    loader: (db: Reader) => Promise<T>,
    options: ReadOptions = {},
  ): Promise<T> {
    const consistency = options.consistency ?? 'eventual';
    const base = consistency === 'eventual' ? 0 : lsnOf(options.minLsn);
    return this.#aside.get(key, ttlMs, base, (minLsn) =>
      loader({
        query: async <R>(sql: string, params?: readonly unknown[]) =>
          (await this.#read<R>(sql, params, minLsn, consistency)).rows,
      }),
    );
  }

  /**
   * Write-through: runs `writer` in a transaction on the primary, then, after COMMIT, stores `value` (or
   * `value(result)`) under `key` unless a newer write got there first; `undefined` deletes the entry instead.
   * Fills that began before this write are refused, and later fills read at or after its position.
   */
  async write<R, V = unknown>(
    key: string,
    value: V | ((result: R) => V) | undefined,
    writer: (tx: Transaction) => Promise<R>,
    ttlMs = WRITE_TTL,
  ): Promise<Committed<R>> {
    const { before, ...committed } = await this.#write(() => this.#primary.transaction(writer));
    const entry = typeof value === 'function' ? (value as (r: R) => V)(committed.value) : value;
    const data = entry === undefined ? undefined : JSON.stringify(entry);
    try {
      // SQLite has no positions to order writes by: delete rather than risk an out-of-order set.
      const lsn = lsnOf(committed.lsn);
      await this.#aside.written(key, lsn, lsn > 0 ? data : undefined, ttlMs, before);
    } catch (err) {
      this.#metrics.cacheErrors++;
      this.#log.error(
        { key, err: (err as Error).message },
        'cache not updated after a write; this clone reads the key from the database until a retried delete gets through',
      );
    }
    return committed;
  }

  /**
   * The same API bound to a user's session (clones/session's `req.session`, loaded): reads default to
   * `read-your-writes` at the session's position, and every write raises that position in the session.
   */
  for(session: LsnSession): SessionDatabase {
    return new SessionDatabase(this, session);
  }

  /** Where each replica stands (up, in rotation, lag in bytes), for health pages and tests. */
  status(): { primary: string; replicas: ReplicaStatus[]; cache: boolean } {
    return { primary: this.#primary.name, replicas: this.#pool.status(), cache: this.#cache !== undefined };
  }

  /** A copy of the counters (see docs/data.md). */
  metrics(): DataMetrics {
    return structuredClone(this.#metrics);
  }

  /**
   * `metrics()` and the replicas' lag in the Prometheus text format (0.0.4), for the app's own `/metrics`
   * (docs/metrics.md).
   *
   * @example
   *   app.get('/metrics', async (_req, res) => res.type('text/plain; version=0.0.4').send(await db.prometheus()));
   */
  async prometheus(): Promise<string> {
    return dataPrometheus(this.#metrics, this.#pool.status());
  }

  /** Stops polling and closes every connection. Calling it twice is harmless. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#ready.catch(() => {});
      this.#aside.close();
      await this.#pool.close();
      await Promise.allSettled([this.#primary.close(), this.#cache?.close()]);
    })();
    return this.#closed;
  }

  async #read<T>(
    sql: string,
    params: readonly unknown[] | undefined,
    minLsn: number,
    consistency: Consistency,
  ): Promise<QueryResult<T>> {
    if (consistency !== 'strong' && this.#pool.size > 0) {
      const tried = new Set<string>();
      for (let replica = this.#pool.pick(minLsn); replica; replica = this.#pool.pick(minLsn, tried)) {
        try {
          const result = await this.#pool.track(replica, replica.read<T>(sql, params));
          this.#count(replica.name);
          return result;
        } catch (err) {
          if (isReadOnlyError(err)) throw readOnlyViolation((err as Error).message);
          if (isConnectionError(err)) this.#pool.markDown(replica);
          else if (!isRecoveryConflict(err)) throw err;
          tried.add(replica.name);
          this.#metrics.readRetries++;
        }
      }
      if (this.#pool.anyInRotation()) this.#metrics.readsPrimaryForPosition++;
      else this.#metrics.readsPrimaryNoReplica++;
    }
    try {
      const result = await this.#primary.read<T>(sql, params);
      this.#count(this.#primary.name);
      return result;
    } catch (err) {
      if (isReadOnlyError(err)) throw readOnlyViolation((err as Error).message);
      if (isConnectionError(err)) throw dataUnavailable(err);
      throw err;
    }
  }

  async #write<R>(
    work: () => Promise<{ value: R; lsn: number; before: number }>,
  ): Promise<{ value: R; lsn: string | undefined; before: number }> {
    try {
      // The primary's RuntimeDriver bounds a write; a transaction's statements are each bounded by the driver.
      const r = await work();
      this.#metrics.writes++;
      if (r.lsn > 0) this.#pool.notePrimaryLsn(r.lsn);
      return { value: r.value, lsn: r.lsn > 0 ? formatLsn(r.lsn) : undefined, before: r.before };
    } catch (err) {
      this.#metrics.writeErrors++;
      if (isConnectionError(err)) throw primaryUnavailable(err);
      throw err;
    }
  }

  #count(server: string): void {
    this.#metrics.reads[server] = (this.#metrics.reads[server] ?? 0) + 1;
  }
}

/**
 * `db.for(req.session)`: reads see the user's own writes, whichever clone made them. Build one per request.
 *
 * @example
 *   const data = db.for(req.session);
 *   await data.execute('INSERT INTO orders (user_id, item) VALUES ($1, $2)', [user, item]);
 *   const orders = await data.query('SELECT * FROM orders WHERE user_id = $1', [user]); // sees the insert
 */
export class SessionDatabase {
  readonly #db: Database;
  readonly #session: LsnSession;
  /** Writes made through this view; the session may not reflect them until its update lands. */
  #lsn = 0;

  constructor(db: Database, session: LsnSession) {
    this.#db = db;
    this.#session = session;
  }

  /** The position this user's reads must see, as stored in the session (`"0/40038A8"`), or undefined. */
  get lsn(): string | undefined {
    const lsn = this.#position();
    return lsn > 0 ? formatLsn(lsn) : undefined;
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[], options: ReadOptions = {}) {
    return this.#db.query<T>(sql, params, this.#readOptions(options));
  }

  cached<T>(key: string, ttlMs: number, loader: (db: Reader) => Promise<T>, options: ReadOptions = {}) {
    return this.#db.cached(key, ttlMs, loader, this.#readOptions(options));
  }

  async execute<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]) {
    return this.#record(await this.#db.execute<T>(sql, params));
  }

  async transaction<R>(fn: (tx: Transaction) => Promise<R>) {
    return this.#record(await this.#db.transaction(fn));
  }

  async write<R, V = unknown>(
    key: string,
    value: V | ((result: R) => V) | undefined,
    writer: (tx: Transaction) => Promise<R>,
    ttlMs?: number,
  ) {
    return this.#record(await this.#db.write(key, value, writer, ttlMs));
  }

  #position(): number {
    return Math.max(this.#lsn, sessionLsn(this.#session));
  }

  #readOptions(options: ReadOptions): ReadOptions {
    const consistency = options.consistency ?? 'read-your-writes';
    const minLsn = Math.max(lsnOf(options.minLsn), this.#position());
    return { consistency, minLsn };
  }

  async #record<W extends { lsn: string | undefined }>(result: W): Promise<W> {
    const lsn = lsnOf(result.lsn);
    if (lsn > this.#lsn) this.#lsn = lsn;
    await recordLsn(this.#session, lsn);
    return result;
  }
}
