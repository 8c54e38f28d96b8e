import { Database } from './database.ts';
import type { DataOptions } from './options.ts';

export { ClonesError } from '../errors.ts';
export type { DataMetrics } from './data-metrics.ts';
export type { Committed, Consistency, Reader, ReadOptions, WriteResult } from './database.ts';
export { Database, SessionDatabase } from './database.ts';
export type { QueryResult, Transaction } from './driver.ts';
export { formatLsn, parseLsn } from './lsn.ts';
export type { DataOptions } from './options.ts';
export { dataDefaults } from './options.ts';
export type { ReplicaStatus } from './replica-pool.ts';
export { type LsnSession, SESSION_LSN_KEY } from './session-lsn.ts';

/**
 * The shared data layer, chosen by URLs (options, else DATABASE_URL, DATABASE_REPLICA_URLS, CACHE_URL):
 * `sqlite:<path>` (default `.clones/data.db`, nothing to install) or a PostgreSQL primary with read replicas,
 * and optionally Redis in front. Same API for both.
 *
 * @example
 *   const db = database({
 *     primary: 'postgres://app@db1/shop',
 *     replicas: ['postgres://app@db2/shop', 'postgres://app@db3/shop'],
 *     cache: 'redis://cache:6379',
 *   });
 *   const data = db.for(req.session); // read-your-writes across clones
 *   await data.write(`product:${id}`, undefined, (tx) => tx.query('UPDATE products SET stock = stock - 1 WHERE id = $1', [id]));
 *   const product = await data.cached(`product:${id}`, 60_000, async (r) => (await r.query('SELECT * FROM products WHERE id = $1', [id]))[0]);
 */
export function database(options?: DataOptions): Database {
  return new Database(options);
}
