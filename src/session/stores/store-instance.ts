import { invalidOption } from '../../errors.ts';

type Callback = (err?: unknown, value?: unknown) => void;

/** express-session's store contract (what connect-redis, connect-pg-simple, connect-mongo... implement). */
export interface ExpressSessionStore {
  get(sid: string, cb: Callback): void;
  set(sid: string, session: object, cb?: Callback): void;
  destroy(sid: string, cb?: Callback): void;
  touch?(sid: string, session: object, cb?: Callback): void;
}

/** An ioredis `Redis` or `Cluster` client (only the shape the Redis store checks for). */
export interface RedisClientLike {
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
  status: string;
}

/** A pg `Pool` (only the shape the PostgreSQL store checks for). */
export interface PgPoolLike {
  query(...args: never[]): unknown;
  connect(...args: never[]): unknown;
  totalCount: number;
}

/** What `store` takes besides a URL: an object the app already has. */
export type StoreInstance = ExpressSessionStore | RedisClientLike | PgPoolLike;

/**
 * Which kind of object `store` was given, by its shape (no driver is imported to find out):
 * `'redis'` (ioredis client), `'postgres'` (pg Pool) or `'express-session'` (a Store). Anything else is
 * CLONES_INVALID_OPTION.
 *
 * @example
 *   storeInstanceKind(new Redis()); // 'redis'
 */
export function storeInstanceKind(store: unknown): 'redis' | 'postgres' | 'express-session' {
  const s = store as Record<string, unknown> | null;
  if (s && typeof s === 'object') {
    if (typeof s.defineCommand === 'function' && typeof s.evalsha === 'function') return 'redis';
    if (typeof s.query === 'function' && typeof s.connect === 'function' && 'totalCount' in s)
      return 'postgres';
    if (typeof s.get === 'function' && typeof s.set === 'function' && typeof s.destroy === 'function') {
      return 'express-session';
    }
  }
  throw invalidOption(
    'store',
    'expected a store URL, an express-session Store (get/set/destroy), an ioredis client or a pg Pool',
  );
}
