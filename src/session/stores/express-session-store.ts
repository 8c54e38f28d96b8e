import { KeyLock } from '../key-lock.ts';
import { applyPatch, CONFLICT, GONE } from './apply-patch.ts';
import type {
  PatchOptions,
  SessionPatch,
  StoreBackend,
  StoredSession,
  StoreOpenOptions,
  WriteResult,
} from './store.ts';
import type { ExpressSessionStore } from './store-instance.ts';

/** What is kept under each id in the app's store: express-session's `cookie` (its TTL) and our record. */
interface Held {
  cookie: { expires: string; originalMaxAge: number | null };
  clones: { v: number; c: number; e: number; d: StoredSession['data']; u?: string; dead?: true };
}

/**
 * A session store on top of an express-session `Store` the app already has (connect-redis, connect-pg-simple,
 * connect-mongo, ...), so moving to clones keeps the database and its store package. Each value it writes
 * carries `cookie.expires`, which those stores turn into their TTL, and destroy leaves a tombstone value.
 *
 * The express-session store API has no compare-and-set, so the guarantees hold only inside one process: a
 * patch or update is a read then a write, serialised per session by a lock in this clone. Two clones writing
 * one session at the same instant can still lose one of the writes (or revive a session destroyed in
 * between); for those guarantees across clones, use the store URL (`redis://`, `postgres://`, ...).
 *
 * @example
 *   sessions({ secret, store: new RedisStore({ client }) }); // connect-redis's store, unchanged
 */
export class ExpressSessionBackedStore implements StoreBackend {
  readonly kind = 'express-session store';
  readonly #store: ExpressSessionStore;
  readonly #locks = new KeyLock();

  constructor(options: StoreOpenOptions) {
    this.#store = options.client as ExpressSessionStore;
  }

  async get(key: string): Promise<StoredSession | null> {
    const held = await this.#read(key);
    if (!held || held.clones.dead || held.clones.e <= Date.now()) return null;
    return record(held);
  }

  create(key: string, session: StoredSession): Promise<WriteResult> {
    return this.#locks.run(key, async () => {
      const held = await this.#read(key);
      if (held && held.clones.e > Date.now()) return held.clones.dead ? GONE : CONFLICT;
      await this.#write(key, { ...session, version: 1 });
      return { ok: true, version: 1 };
    });
  }

  patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    return this.#locks.run(key, async () => {
      const current = await this.get(key);
      if (!current) return GONE;
      if (options.ifVersion !== undefined && options.ifVersion !== current.version) {
        return { ok: false, reason: 'conflict', current };
      }
      const next: StoredSession = {
        ...current,
        data: applyPatch(current.data, patch),
        version: current.version + 1,
        expiresAt: options.expiresAt ?? current.expiresAt,
      };
      await this.#write(key, next);
      return { ok: true, version: next.version };
    });
  }

  touch(key: string, expiresAt: number): Promise<boolean> {
    return this.#locks.run(key, async () => {
      const current = await this.get(key);
      if (!current) return false;
      await this.#write(key, { ...current, expiresAt });
      return true;
    });
  }

  destroy(key: string, tombstoneUntil: number): Promise<void> {
    return this.#locks.run(key, async () => {
      if (tombstoneUntil <= Date.now()) return call<void>((cb) => this.#store.destroy(key, cb));
      const dead: Held = {
        cookie: { expires: new Date(tombstoneUntil).toISOString(), originalMaxAge: null },
        clones: { v: 0, c: 0, e: tombstoneUntil, d: {}, dead: true },
      };
      await call<void>((cb) => this.#store.set(key, dead, cb));
    });
  }

  async close(): Promise<void> {
    // The store (and its client) are the app's: it closes them.
  }

  async #read(key: string): Promise<Held | null> {
    const value = (await call<unknown>((cb) => this.#store.get(key, cb))) as Partial<Held> | null | undefined;
    const c = value?.clones;
    return c && typeof c.v === 'number' && typeof c.e === 'number' ? (value as Held) : null;
  }

  #write(key: string, s: StoredSession): Promise<void> {
    const held: Held = {
      cookie: { expires: new Date(s.expiresAt).toISOString(), originalMaxAge: null },
      clones: { v: s.version, c: s.createdAt, e: s.expiresAt, d: s.data },
    };
    if (s.userId !== undefined) held.clones.u = s.userId;
    return call<void>((cb) => this.#store.set(key, held, cb));
  }
}

function record(held: Held): StoredSession {
  const c = held.clones;
  const s: StoredSession = { data: structuredClone(c.d ?? {}), version: c.v, createdAt: c.c, expiresAt: c.e };
  if (c.u !== undefined) s.userId = c.u;
  return s;
}

/** A callback-style store call as a promise. */
function call<T>(fn: (cb: (err?: unknown, value?: unknown) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}
