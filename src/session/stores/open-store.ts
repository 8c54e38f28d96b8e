import { badStoreUrl } from '../../errors.ts';
import { type DriverPackage, driverLoadFailed } from '../../require-driver.ts';
import { RuntimeStore } from './runtime-store.ts';
import type { StoreBackend, StoreOpenOptions } from './store.ts';
import { type StoreInstance, storeInstanceKind } from './store-instance.ts';

type StoreClass = new (options: StoreOpenOptions) => StoreBackend;

/**
 * Each scheme loads its backend only when asked for, so SQLite users never load a Redis client, and an app
 * needs only the driver package of the store it uses: a missing one is CLONES_DRIVER_MISSING naming the
 * `npm install` command.
 */
const BACKENDS: Record<string, () => Promise<StoreClass>> = {
  'memory:': async () => (await import('./memory-store.ts')).MemoryStore,
  'sqlite:': async () => (await import('./sqlite-store.ts')).SqliteStore,
  'redis:': () =>
    withDriver('ioredis', 'redis://', async () => (await import('./redis-store.ts')).RedisStore),
  'rediss:': () =>
    withDriver('ioredis', 'rediss://', async () => (await import('./redis-store.ts')).RedisStore),
  'redis+sentinel:': () =>
    withDriver('ioredis', 'redis+sentinel://', async () => (await import('./redis-store.ts')).RedisStore),
  'redis+cluster:': () =>
    withDriver('ioredis', 'redis+cluster://', async () => (await import('./redis-store.ts')).RedisStore),
  'memcached:': async () => (await import('./memcached-store.ts')).MemcachedStore,
  'dynamodb:': () =>
    withDriver(
      '@aws-sdk/client-dynamodb',
      'dynamodb://',
      async () => (await import('./dynamodb-store.ts')).DynamoDbStore,
    ),
  'postgres:': () =>
    withDriver('pg', 'postgres://', async () => (await import('./postgres-store.ts')).PostgresStore),
  'postgresql:': () =>
    withDriver('pg', 'postgresql://', async () => (await import('./postgres-store.ts')).PostgresStore),
};

async function withDriver(pkg: DriverPackage, scheme: string, load: () => Promise<StoreClass>) {
  try {
    return await load();
  } catch (err) {
    throw driverLoadFailed(err, pkg, `the ${scheme} session store`);
  }
}

const memoryStores = new Map<string, StoreBackend>();

/** Each scheme's name in messages and metrics until its backend is made (the backend's own wins after). */
const KINDS: Record<string, string> = {
  'redis+sentinel:': 'redis sentinel',
  'redis+cluster:': 'redis cluster',
  'rediss:': 'redis',
  'postgresql:': 'postgres',
};

/** The URL schemes `SESSION_STORE` accepts for server-side stores (`cookie:` is handled by the engine). */
export const storeSchemes = (): string[] => Object.keys(BACKENDS);

/** A store URL's scheme, lower-cased with its colon (`redis+cluster:`), or undefined when it has none. */
export const schemeOf = (url: string): string | undefined =>
  /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]?.toLowerCase();

/**
 * The store a URL names, inside its RuntimeStore (timeouts, coded errors, counts, lazy set-up). Answers at
 * once: the backend's module is loaded, and its connection made, on the first call.
 *
 * @example
 *   const store = openStore('redis://127.0.0.1:6379/0', { timeoutMs: 2000, prefix: 'clones' });
 */
export function openStore(url: string, options: { timeoutMs: number; prefix: string }): RuntimeStore {
  const scheme = schemeOf(url);
  const load = scheme ? BACKENDS[scheme] : undefined;
  if (!scheme || !load) {
    throw badStoreUrl(url, `unknown scheme; use one of ${[...storeSchemes(), 'cookie:'].join(' ')}`);
  }
  const open = async (): Promise<StoreBackend> => {
    const Backend = await load();
    const made = () => new Backend({ url, connectTimeout: options.timeoutMs, prefix: options.prefix });
    if (scheme !== 'memory:') return made();
    // One process-wide store per memory: URL, so several engines in one test process see the same sessions.
    const shared = memoryStores.get(url) ?? made();
    memoryStores.set(url, shared);
    return shared;
  };
  return new RuntimeStore(open, { kind: KINDS[scheme] ?? scheme.slice(0, -1), timeoutMs: options.timeoutMs });
}

/**
 * A store on an object the app already has (`store: client`): an ioredis client (the Redis store, on that
 * client), a pg Pool (the PostgreSQL store, on that pool) or an express-session Store. The object stays the
 * app's: closing the session store does not close it.
 *
 * @example
 *   const store = openStoreInstance(new Redis(), { timeoutMs: 2000, prefix: 'clones' });
 */
export function openStoreInstance(
  client: StoreInstance,
  options: { timeoutMs: number; prefix: string },
): RuntimeStore {
  const kind = storeInstanceKind(client);
  const open = async (): Promise<StoreBackend> => {
    const Backend: StoreClass =
      kind === 'redis'
        ? await BACKENDS['redis:']!()
        : kind === 'postgres'
          ? await BACKENDS['postgres:']!()
          : (await import('./express-session-store.ts')).ExpressSessionBackedStore;
    return new Backend({
      url: `${kind}:`,
      connectTimeout: options.timeoutMs,
      prefix: options.prefix,
      client,
    });
  };
  return new RuntimeStore(open, { kind, timeoutMs: options.timeoutMs });
}
