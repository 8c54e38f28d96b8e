/**
 * The contract every server-side session store implements: a handful of methods, each atomic on its own.
 * The engine never reads-then-writes through two calls where one call can do it: `patch` applies a request's
 * changed keys onto the latest stored data inside the store (Lua in Redis, a transaction in SQLite), so
 * concurrent requests that change different keys all persist. `ifVersion` turns a patch into a
 * compare-and-set, which is what `session.update(fn)` retries on.
 *
 * Keys are the hex SHA-256 of the session id: a store never sees a live session id.
 * Times are milliseconds since the epoch. A store returns `null` from `get` for a session that is missing,
 * past its `expiresAt`, or destroyed (tombstoned) -- even when the backend's own TTL is coarser.
 *
 * @example
 *   const r = await store.patch(key, { set: { cart: [1] }, del: [] }, { ifVersion: 3 });
 *   if (!r.ok && r.reason === 'conflict') reloadAndRetry();
 */
export interface SessionStore {
  /** A short name for messages and metrics: 'redis', 'sqlite', 'memory', ... */
  readonly kind: string;
  get(key: string): Promise<StoredSession | null>;
  /** Inserts a new session; `conflict` if the key exists, `gone` if it is tombstoned. */
  create(key: string, session: StoredSession): Promise<WriteResult>;
  /**
   * Applies `patch` onto the latest stored data and bumps the version, atomically. `gone` when the session is
   * missing, expired or tombstoned (a patch never creates); `conflict` only when `ifVersion` is given and the
   * stored version differs. `expiresAt`, when given, also moves the idle expiry (a write is activity).
   */
  patch(key: string, patch: SessionPatch, options?: PatchOptions): Promise<WriteResult>;
  /** Moves the idle expiry only (no rewrite of the data); `false` when the session is gone. Never creates. */
  touch(key: string, expiresAt: number): Promise<boolean>;
  /** Removes the session and leaves a tombstone until `tombstoneUntil`, so no in-flight write revives it. */
  destroy(key: string, tombstoneUntil: number): Promise<void>;
  /** Releases connections; calling it twice is harmless. */
  close(): Promise<void>;
  /**
   * Optional, "log me out everywhere": records `userId` on the live session `key` and in the store's per-user
   * index, which must outlive the session (`indexUntil` is its absolute end). `false` when the session is gone.
   * A store without these three methods makes the engine answer CLONES_SESSION_BY_USER_UNSUPPORTED (501).
   */
  bindUser?(key: string, userId: string, indexUntil: number): Promise<boolean>;
  /** Optional: the user's live sessions (any order). */
  listByUser?(userId: string): Promise<UserSession[]>;
  /**
   * Optional: destroys every live session of `userId` but `exceptKey`, each leaving a tombstone until
   * `tombstoneUntil` exactly as `destroy` does, atomically where the backend can; answers how many it destroyed.
   */
  destroyByUser?(userId: string, exceptKey: string | undefined, tombstoneUntil: number): Promise<number>;
}

/**
 * What a backend implements: its operations and, when it needs set-up before the first call (a connection, a
 * table, a migration), `init`. Everything else -- running `init` once and again after it failed, the closed
 * check, closing once, timeouts, coded errors and counts -- is the RuntimeStore's, for every backend alike.
 * `connected` is for a backend whose client can drop its connection and reconnect by itself (Redis): while it
 * is false the wrapper runs `init` again before the next call, so that call waits for the connection.
 *
 * @example
 *   class MyStore implements StoreBackend {
 *     readonly kind = 'mine';
 *     async init() { await this.#client.connect(); }
 *     async get(key: string) { return this.#client.read(key); }
 *     // create, patch, touch, destroy ...
 *   }
 */
export type StoreBackend = Omit<SessionStore, 'close'> & {
  init?(): Promise<void>;
  readonly connected?: boolean;
  close?(): Promise<void>;
};

/** One live session of a user, as `listByUser` answers it: its store key (never the id) and its times. */
export interface UserSession {
  key: string;
  createdAt: number;
  expiresAt: number;
}

/** Session data as the user sees it: top-level keys with JSON values. */
export type SessionData = Record<string, unknown>;

export interface StoredSession {
  data: SessionData;
  /** Starts at 1 and grows by one on every create or patch. */
  version: number;
  /** When the session was created; the absolute timeout counts from here. */
  createdAt: number;
  /** When the session expires for idleness (already capped by the absolute timeout by the engine). */
  expiresAt: number;
  /** The user bound by `bindUser`, on stores that keep one; absent otherwise. */
  userId?: string;
}

/** The keys one request changed: values to set (JSON-serialisable) and keys to delete. */
export interface SessionPatch {
  set: SessionData;
  del: string[];
}

export interface PatchOptions {
  ifVersion?: number;
  expiresAt?: number;
}

/**
 * A conflict may carry the session as it is now, so a compare-and-set loop retries without another read: a
 * loser that had to read again before each retry could lose to a writer that never has to, over and over.
 */
export type WriteResult =
  | { ok: true; version: number }
  | { ok: false; reason: 'conflict'; current?: StoredSession }
  | { ok: false; reason: 'gone' };

/** Options every store factory receives from the URL and the session options. */
export interface StoreOpenOptions {
  /** The URL as given (`redis://...`, `sqlite:...`). */
  url: string;
  /** Milliseconds a store waits to connect before it reports the store unavailable. */
  connectTimeout: number;
  /** A prefix for keys or table names, from the `prefix` option. */
  prefix: string;
  /**
   * A client the app already has (an ioredis client for the Redis store, a pg Pool for PostgreSQL): used
   * instead of one made from `url`, and never closed by the store (it stays the app's).
   */
  client?: unknown;
}
