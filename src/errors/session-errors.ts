import { ClonesError, redactUrl } from './clones-error.ts';

// Errors of clones/session: options, the store, the session in a request.
// Each factory makes one coded ClonesError, e.g. `throw storeTimeout('redis://cache:6379', 2000);`

/** The session secret is missing or shorter than 32 bytes. */
export const weakSecret = (message: string): ClonesError =>
  new ClonesError('CLONES_SESSION_SECRET_WEAK', message);

/** SESSION_STORE / `store` is not a URL this project knows. */
export const badStoreUrl = (url: string, why: string): ClonesError =>
  new ClonesError('CLONES_SESSION_STORE_URL', `cannot use session store "${redactUrl(url)}": ${why}`);

/** `memory:` was asked for while NODE_ENV=production. */
export const memoryInProduction = (): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_MEMORY_IN_PRODUCTION',
    'the memory: session store keeps sessions inside one clone and is for tests only; NODE_ENV is production',
  );

/** The store did not answer, or answered with an error; the request fails closed with 503. */
export const storeUnavailable = (store: string, cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_STORE_UNAVAILABLE',
    `session store ${store} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** `listByUser`/`destroyByUser`/`bindUser` on a store (or sealed cookies) that keeps no per-user index. */
export const sessionByUserUnsupported = (store: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_BY_USER_UNSUPPORTED',
    `session store ${store} cannot list or destroy sessions by user (no per-user index)`,
    { status: 501 },
  );

/** DynamoDB: the table lacks the per-user index (or it is still being built), so sessions by user cannot work. */
export const userIndexMissing = (table: string, index: string, why: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_USER_INDEX_MISSING',
    `DynamoDB table ${table} ${why}: sessions by user need the global secondary index "${index}" (hash key "uid", string); see docs/sessions.md`,
    { status: 503 },
  );

/** The store took longer than `storeTimeout`. */
export const storeTimeout = (store: string, ms: number): ClonesError =>
  new ClonesError('CLONES_SESSION_STORE_TIMEOUT', `session store ${store} did not answer within ${ms} ms`, {
    status: 503,
  });

/** The store's schema was written by a newer version of clones; this version will not guess how to read it. */
export const storeSchemaTooNew = (store: string, found: number, supported: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_STORE_SCHEMA',
    `session store ${store} has schema version ${found}, newer than ${supported} which this version of clones understands; upgrade clones on this host, or point it at another store`,
    { status: 503 },
  );

/** An atomic update kept losing the compare-and-set race beyond the retry limit. */
export const updateConflict = (attempts: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_CONFLICT',
    `session update lost the compare-and-set race ${attempts} times; giving up`,
    { status: 409 },
  );

/** The session was destroyed (logout, or another request) while this request was updating it. */
export const sessionGone = (): ClonesError =>
  new ClonesError('CLONES_SESSION_GONE', 'the session was destroyed while this request was changing it', {
    status: 409,
  });

/** The sealed session cookie would exceed the browser's 4,096-byte limit. */
export const cookieTooLarge = (bytes: number, limit: number): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_COOKIE_TOO_LARGE',
    `the Set-Cookie header for the sealed session would be ${bytes} bytes, over the ${limit}-byte limit browsers keep; store less in the session or use a server-side store`,
    { status: 500 },
  );

/** Session data was read before the session was loaded (lazy sessions load on `await session.load()`). */
export const notLoaded = (key: string): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_NOT_LOADED',
    `session key "${key}" was read before the session was loaded: call "await req.session.load()" first, or mount the middleware with { eager: true }`,
  );

/** Session data must be JSON: a value that does not survive JSON was assigned. */
export const notSerializable = (key: string, why: string): ClonesError =>
  new ClonesError('CLONES_SESSION_NOT_SERIALIZABLE', `session key "${key}" cannot be stored: ${why}`);

/** The session was changed after the response had started and the change could not be saved. */
export const headersSent = (): ClonesError =>
  new ClonesError(
    'CLONES_SESSION_HEADERS_SENT',
    'the session changed after the response headers were sent; call "await req.session.save()" before streaming',
  );
