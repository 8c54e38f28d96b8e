import { createHash } from 'node:crypto';
import { updateConflict } from '../errors.ts';
import type { SessionStore, UserSession } from './stores/store.ts';

/** What the central store keeps per user for sealed-cookie sessions. */
export interface UserRecord {
  /** Sealed sessions bound with an older epoch are revoked... */
  epoch: number;
  /** ...except these store keys, spared by the `destroyByUser` that raised the epoch. */
  keep: string[];
  /** The user's bound sessions, by store key (never the id), for `listByUser`. */
  sessions: UserSession[];
}

const EMPTY: UserRecord = Object.freeze({ epoch: 0, keep: [], sessions: [] }) as UserRecord;
/** Users whose record a clone keeps in memory, oldest out first. */
const CACHE_SIZE = 10_000;
/** A CAS loop that loses this often has a bug, not contention. */
const MAX_ATTEMPTS = 100;

/**
 * The revocation epochs that make "log me out everywhere" work for sealed cookies, whose sessions live in
 * the browser where no server can delete them. Each user has one record in a central server-side store (any
 * `SESSION_STORE` URL, filed like a session under a key of its own): `destroyByUser` raises the user's
 * epoch, and a sealed cookie bound with an older epoch is refused from then on. Clones cache each record for
 * `cacheMs`, so a revocation reaches the other clones within that bound (and the clone that made it at once).
 *
 * @example
 *   const epochs = new UserEpochs(openStore('redis://127.0.0.1:6379', opts), 1000, 7 * 864e5);
 *   const { epoch } = await epochs.current('user-42');
 */
export class UserEpochs {
  readonly #store: SessionStore;
  readonly #cacheMs: number;
  /** The absolute timeout: no sealed cookie outlives it, so neither must a record that could revoke one. */
  readonly #lifetimeMs: number;
  readonly #cache = new Map<string, { record: UserRecord; at: number }>();

  constructor(store: SessionStore, cacheMs: number, lifetimeMs: number) {
    this.#store = store;
    this.#cacheMs = cacheMs;
    this.#lifetimeMs = lifetimeMs;
  }

  /** The user's record, from this clone's cache when it is younger than `cacheMs`. */
  async current(userId: string): Promise<UserRecord> {
    const hit = this.#cache.get(userId);
    if (hit && Date.now() - hit.at < this.#cacheMs) return hit.record;
    const stored = await this.#store.get(userKey(userId));
    const record = stored ? toRecord(stored.data) : EMPTY;
    this.#remember(userId, record);
    return record;
  }

  /** Files `entry` under the user (dropping `replaces`, the key of a rotated session); answers the epoch. */
  async register(userId: string, entry: UserSession, replaces?: string): Promise<number> {
    const record = await this.#change(userId, (r, now) => ({
      ...r,
      sessions: [...r.sessions.filter((s) => s.key !== replaces && s.expiresAt > now), entry],
    }));
    return record.epoch;
  }

  /** Forgets a session that was destroyed. */
  async unregister(userId: string, key: string): Promise<void> {
    await this.#change(userId, (r, now) => ({
      ...r,
      sessions: r.sessions.filter((s) => s.key !== key && s.expiresAt > now),
    }));
  }

  /** The user's bound sessions that have not passed their absolute timeout. */
  async list(userId: string): Promise<UserSession[]> {
    const stored = await this.#store.get(userKey(userId));
    const now = Date.now();
    return stored ? toRecord(stored.data).sessions.filter((s) => s.expiresAt > now) : [];
  }

  /** Raises the epoch, sparing `exceptKey`; answers how many listed sessions it revoked. */
  async revoke(userId: string, exceptKey: string | undefined): Promise<number> {
    let revoked = 0;
    await this.#change(userId, (r, now) => {
      const live = r.sessions.filter((s) => s.expiresAt > now);
      const kept = live.filter((s) => s.key === exceptKey);
      revoked = live.length - kept.length;
      return { epoch: r.epoch + 1, keep: exceptKey === undefined ? [] : [exceptKey], sessions: kept };
    });
    return revoked;
  }

  /** Read, change, compare-and-set, retried on conflict: concurrent changes to one user all persist. */
  async #change(userId: string, fn: (record: UserRecord, now: number) => UserRecord): Promise<UserRecord> {
    const store = this.#store;
    const key = userKey(userId);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = Date.now();
      const stored = await store.get(key);
      const next = fn(stored ? toRecord(stored.data) : EMPTY, now);
      // Kept until every cookie it could still refuse is past its absolute timeout anyway.
      const expiresAt = Math.max(
        now + this.#lifetimeMs,
        stored?.expiresAt ?? 0,
        ...next.sessions.map((s) => s.expiresAt),
      );
      const data = { ...next };
      const result = stored
        ? await store.patch(key, { set: data, del: [] }, { ifVersion: stored.version, expiresAt })
        : await store.create(key, { data, version: 1, createdAt: now, expiresAt });
      if (result.ok) {
        this.#remember(userId, next);
        return next;
      }
    }
    throw updateConflict(MAX_ATTEMPTS);
  }

  #remember(userId: string, record: UserRecord): void {
    this.#cache.delete(userId);
    this.#cache.set(userId, { record, at: Date.now() });
    if (this.#cache.size > CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
  }
}

/** Where a user's record is filed: hex SHA-256 of a namespaced user id (session keys hash bare ids). */
export function userKey(userId: string): string {
  return createHash('sha256').update(`clones.user\0${userId}`).digest('hex');
}

function toRecord(data: Record<string, unknown>): UserRecord {
  const epoch = typeof data.epoch === 'number' ? data.epoch : 0;
  const keep = Array.isArray(data.keep) ? data.keep.filter((k) => typeof k === 'string') : [];
  const sessions = Array.isArray(data.sessions) ? (data.sessions as UserSession[]) : [];
  return { epoch, keep, sessions };
}
