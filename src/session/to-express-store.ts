import { storeKey } from './session-id.ts';
import type { SessionData, SessionStore } from './stores/store.ts';

type Callback<T = void> = (err?: unknown, value?: T) => void;
// express-session's types are not imported: they re-declare `req.session` for the whole program, which would
// clash with the clones express adapter's own declaration. These are the parts this file relies on.
/** A session as express-session hands it to a store: the data plus its `cookie`. */
type ExpressSessionData = { cookie?: { expires?: Date | string | null } } & Record<string, unknown>;
/** express-session's `session.Store` (an abstract EventEmitter subclass in its types). */
// biome-ignore lint/suspicious/noExplicitAny: any constructor arguments, as express-session's Store declares
type StoreClass = abstract new (...args: any[]) => object;
/** The store methods express-session calls. */
export interface ExpressStore {
  get(sid: string, cb: Callback<ExpressSessionData | null>): void;
  set(sid: string, sess: ExpressSessionData, cb?: Callback): void;
  destroy(sid: string, cb?: Callback): void;
  touch(sid: string, sess: ExpressSessionData, cb?: Callback): void;
}

export interface ExpressStoreOptions {
  /** When no `cookie.expires` is set (a browser-session cookie), sessions idle out after this many ms. */
  defaultTtlMs?: number;
  /** How long a destroyed id stays dead, so no in-flight save revives it (default: 1 day). */
  tombstoneMs?: number;
}

const DAY = 86_400_000;

/**
 * Turns any clones store into an express-session `Store`, so an app keeps express-session and gains the clones
 * backends (Memcached, PostgreSQL, DynamoDB, ...) with their tombstones: a save that races a `destroy` never
 * revives the session. express-session stays the app's dependency: pass its `Store` class. Saves write only
 * the keys that differ from the stored session, merged atomically by the store.
 *
 * @example
 *   import session from 'express-session';
 *   const store = openStore(process.env.SESSION_STORE, { timeoutMs: 2000, prefix: 'clones' });
 *   app.use(session({ secret, resave: false, saveUninitialized: false,
 *     store: toExpressStore(store, session.Store) }));
 */
export function toExpressStore<S extends StoreClass>(
  store: SessionStore,
  Store: S,
  options: ExpressStoreOptions = {},
): InstanceType<S> & ExpressStore {
  const defaultTtlMs = options.defaultTtlMs ?? DAY;
  const tombstoneMs = options.tombstoneMs ?? DAY;
  const expiry = (sess: ExpressSessionData): number => {
    const expires = sess.cookie?.expires;
    const at = expires ? new Date(expires).getTime() : Number.NaN;
    return Number.isFinite(at) ? at : Date.now() + defaultTtlMs;
  };
  const done = <T>(promise: Promise<T>, cb: Callback<T> | undefined) => {
    promise.then(
      (value) => cb?.(null, value),
      (err) => cb?.(err),
    );
  };

  // A concrete subclass of the app's Store: the cast only says the constructor takes no arguments.
  class ClonesExpressStore extends (Store as unknown as new () => object) implements ExpressStore {
    get(sid: string, cb: Callback<ExpressSessionData | null>): void {
      done(
        store.get(storeKey(sid)).then((s) => (s ? (s.data as ExpressSessionData) : null)),
        cb,
      );
    }

    set(sid: string, sess: ExpressSessionData, cb?: Callback): void {
      done(save(storeKey(sid), JSON.parse(JSON.stringify(sess)) as SessionData, expiry(sess)), cb);
    }

    destroy(sid: string, cb?: Callback): void {
      done(store.destroy(storeKey(sid), Date.now() + tombstoneMs), cb);
    }

    touch(sid: string, sess: ExpressSessionData, cb?: Callback): void {
      done(
        store.touch(storeKey(sid), expiry(sess)).then(() => undefined),
        cb,
      );
    }
  }

  /** Upsert as a patch of the differing keys; a destroyed (tombstoned) id is never revived. */
  async function save(key: string, data: SessionData, expiresAt: number): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await store.get(key);
      if (!current) {
        const now = Date.now();
        const created = await store.create(key, { data, version: 1, createdAt: now, expiresAt });
        if (created.ok || created.reason === 'gone') return;
        continue; // created by a concurrent request: merge into it
      }
      const set: SessionData = {};
      for (const name of Object.keys(data)) {
        if (JSON.stringify(current.data[name]) !== JSON.stringify(data[name])) set[name] = data[name];
      }
      const del = Object.keys(current.data).filter((name) => !Object.hasOwn(data, name));
      const r = await store.patch(key, { set, del }, { expiresAt });
      if (r.ok || r.reason === 'gone') return;
    }
  }

  return new ClonesExpressStore() as InstanceType<S> & ExpressStore;
}
