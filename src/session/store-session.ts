import { invalidOption, sessionGone, updateConflict } from '../errors.ts';
import { backoff } from './backoff.ts';
import { diff } from './change-tracker.ts';
import type { KeyLock } from './key-lock.ts';
import { migratedId } from './legacy-sessions.ts';
import type { ResolvedOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import { RequestSession } from './request-session.ts';
import { GENID_PATTERN, type IdSigner, newSessionId, storeKey } from './session-id.ts';
import type { RuntimeStore } from './stores/runtime-store.ts';
import type { SessionData, SessionStore, StoredSession } from './stores/store.ts';

/** What every StoreSession of one engine shares. */
export interface StoreContext {
  options: ResolvedOptions;
  store: RuntimeStore;
  signer: IdSigner;
  locks: KeyLock;
}

/**
 * A session kept in a server-side store, named by a signed id cookie. Saves send only this request's changed
 * keys (`patch`), which the store merges atomically onto the latest data; `update(fn)` is compare-and-set on
 * the version, retried.
 */
export class StoreSession extends RequestSession {
  readonly #ctx: StoreContext;
  #id: string | undefined;
  #key: string | undefined;
  #record: StoredSession | undefined;
  #cookieChecked = false;
  #staleSignature = false;
  /** The old library's session id (`migrateFrom`); undefined until checked, null when there is none. */
  #legacySid: string | null | undefined;
  /** The id a new session will get, drawn when asked for before it exists (express-session's `req.sessionID`). */
  #pendingId: string | undefined;

  constructor(ctx: StoreContext, info: RequestInfo) {
    super(ctx.options, info);
    this.#ctx = ctx;
  }

  get id(): string | undefined {
    this.#fromCookie();
    if (this.#id !== undefined || this.destroyed) return this.#id;
    // A session not saved yet still has its id, as with express-session: the one it will be saved under.
    if ((this.loaded || !this.hasCookie) && this.#record === undefined) this.#pendingId ??= this.#newId();
    return this.#pendingId;
  }

  get isNew(): boolean {
    return this.#record === undefined;
  }

  get times(): { createdAt: number; expiresAt: number } | undefined {
    return this.#record && { createdAt: this.#record.createdAt, expiresAt: this.#record.expiresAt };
  }

  get hasCookie(): boolean {
    return this.#fromCookie() !== undefined || this.#fromLegacyCookie() !== null;
  }

  protected async read(): Promise<void> {
    const id = this.#fromCookie();
    if (id === undefined) {
      const sid = this.#fromLegacyCookie();
      if (sid !== null) await this.#migrate(sid);
      return this.markReady();
    }
    const store = this.#ctx.store;
    const key = storeKey(id);
    const record = await store.get(key);
    const now = Date.now();
    if (record && record.createdAt + this.options.absoluteTimeout <= now) {
      await store.destroy(key, now + this.options.idleTimeout);
    } else if (record) {
      this.#record = record;
      this.#key = key;
      // Keys written before the load (blind writes) stay on top of what the store holds.
      this.tracker.data = this.tracker.dirty ? this.tracker.overlay(record.data) : record.data;
      return this.markReady();
    }
    this.#forget();
    this.markReady();
  }

  protected async persist(): Promise<void> {
    if (!this.loaded && (this.tracker.dirty || this.#uninitialized())) await this.load();
    if (this.degraded) return;
    const store = this.#ctx.store;
    const now = Date.now();
    let moved = false;
    if (this.tracker.dirty || this.#uninitialized()) {
      if (this.#record === undefined || this.#key === undefined) return this.#create(store, now);
      const key = this.#key;
      const createdAt = this.#record.createdAt;
      const patch = this.tracker.patch();
      const result = await store.patch(key, patch, { expiresAt: this.nextExpiry(createdAt, now) });
      if (!result.ok) {
        // Destroyed (or expired) while this request ran: the logout wins; this request's changes are dropped.
        this.#forget();
        this.tracker.reset({});
        return;
      }
      this.#record = { ...this.#record, version: result.version, expiresAt: this.nextExpiry(createdAt, now) };
      this.tracker.reset(this.tracker.data);
      moved = true;
    } else if (this.#record && this.#key && this.#touchDue(now)) {
      const expiresAt = this.nextExpiry(this.#record.createdAt, now);
      if (await store.touch(this.#key, expiresAt)) {
        this.#record = { ...this.#record, expiresAt };
        moved = true;
      }
    }
    // express-session's rolling, and a cookie whose Max-Age follows the idle expiry: sent again when it moved.
    const resend = this.options.rolling || (moved && this.cookieFollowsExpiry());
    if ((this.#staleSignature || resend) && this.#record && this.#id) {
      this.#staleSignature = false;
      this.#sendCookie(this.#id, this.#record.createdAt);
    }
  }

  async update<R>(fn: (draft: SessionData) => R | Promise<R>): Promise<Awaited<R>> {
    await this.load();
    if (this.degraded) return await fn(structuredClone(this.tracker.data));
    try {
      const store = this.#ctx.store;
      if (this.#record === undefined) await this.#create(store, Date.now());
      const key = this.#key!;
      return await this.#ctx.locks.run(key, async (entry) => {
        let base = newest(entry.last, this.#record!);
        for (let attempt = 1; attempt <= this.options.maxUpdateAttempts; attempt++) {
          const draft = this.tracker.overlay(base.data);
          const result = await fn(draft);
          const patch = diff(base.data, draft);
          const expiresAt = this.nextExpiry(base.createdAt);
          const written = await store.patch(key, patch, { ifVersion: base.version, expiresAt });
          if (written.ok) {
            this.#record = { data: draft, version: written.version, createdAt: base.createdAt, expiresAt };
            entry.last = this.#record;
            this.tracker.reset(structuredClone(draft));
            return result;
          }
          const latest = written.reason === 'gone' ? null : (written.current ?? (await store.get(key)));
          if (!latest) {
            this.#forget();
            this.tracker.reset({});
            throw sessionGone();
          }
          base = latest;
          // A conflict hands back the current session, so the retry is one round trip, as fast as the winner's
          // next write: waiting here would hand every race to the writer that just won. Back off only when
          // many writers keep colliding.
          if (attempt > 10) await backoff(attempt - 10, 10);
        }
        throw updateConflict(this.options.maxUpdateAttempts);
      });
    } catch (err) {
      this.storeFailed(err);
      return await fn(structuredClone(this.tracker.data));
    }
  }

  async regenerate(): Promise<void> {
    await this.load();
    if (this.degraded) return;
    this.destroyed = false;
    try {
      const store = this.#ctx.store;
      const oldKey = this.#record ? this.#key : undefined;
      const keep = this.options.regenerateKeepsData;
      const userId = keep ? this.#record?.userId : undefined;
      const data = keep ? this.tracker.data : {};
      this.#forget();
      this.tracker.reset({});
      for (const k of Object.keys(data)) this.tracker.write(k, data[k]);
      await this.#create(store, Date.now());
      // Bound before the old id dies: "log me out everywhere" must never miss the user's new session.
      if (userId !== undefined) await this.#bind(store, userId);
      if (oldKey) await store.destroy(oldKey, Date.now() + this.options.idleTimeout);
    } catch (err) {
      this.storeFailed(err);
    }
  }

  override async bindUser(userId: string): Promise<void> {
    await this.load();
    if (this.degraded) return;
    try {
      const store = this.#ctx.store;
      await store.requireByUser();
      if (this.#record === undefined) await this.#create(store, Date.now());
      await this.#bind(store, userId);
    } catch (err) {
      this.storeFailed(err);
    }
  }

  async #bind(store: RuntimeStore, userId: string): Promise<void> {
    const record = this.#record!;
    const bound = await store.bindUser(this.#key!, userId, record.createdAt + this.options.absoluteTimeout);
    if (!bound) {
      // Destroyed while this request ran (another device logged everyone out): it stays logged out.
      this.#forget();
      this.tracker.reset({});
      throw sessionGone();
    }
    this.#record = { ...record, userId };
  }

  async destroy(): Promise<void> {
    const id = this.#fromCookie();
    const sid = this.#record === undefined ? this.#fromLegacyCookie() : null;
    if (sid !== null) await this.#destroyLegacy(sid);
    const key = this.#key ?? (id === undefined ? undefined : storeKey(id));
    const had = id !== undefined || this.#record !== undefined;
    this.destroyed = true;
    this.#forget();
    this.tracker.reset({});
    this.markReady();
    if (had) this.queueCookie(this.options.name, '', 0);
    if (key === undefined || this.degraded) return;
    try {
      const store = this.#ctx.store;
      await store.destroy(key, Date.now() + this.options.idleTimeout);
    } catch (err) {
      this.storeFailed(err);
    }
  }

  /** The id named by a valid, signed, single session cookie; checked once per request. */
  #fromCookie(): string | undefined {
    if (this.#cookieChecked) return this.#id;
    this.#cookieChecked = true;
    const value = this.cookieValue(this.options.name);
    const verified = value === undefined ? null : this.#ctx.signer.verify(value);
    if (verified) {
      this.#id = verified.id;
      this.#staleSignature = verified.stale;
    }
    return this.#id;
  }

  /** The old library's session id when `migrateFrom` is set and only its (valid) cookie came. */
  #fromLegacyCookie(): string | null {
    if (this.#legacySid !== undefined) return this.#legacySid;
    const legacy = this.options.migrateFrom;
    const value =
      legacy && this.#fromCookie() === undefined ? this.cookieValue(legacy.cookieName) : undefined;
    this.#legacySid = value === undefined ? null : legacy!.verify(value);
    return this.#legacySid;
  }

  /**
   * Adopts the old library's session: its data becomes a clones session under an id derived from the old one,
   * so concurrent requests carrying the old cookie all land on one session. The old cookie is cleared; within
   * `graceMs` of the migration it still names the new session, later it names nothing.
   */
  async #migrate(sid: string): Promise<void> {
    const legacy = this.options.migrateFrom!;
    const store = this.#ctx.store;
    const id = migratedId(this.options.secrets[0]!, legacy.cookieName, sid);
    const key = storeKey(id);
    const now = Date.now();
    let record = await store.get(key);
    if (record && record.createdAt + legacy.graceMs < now) record = null;
    else if (!record) {
      const data = await legacy.read(sid);
      if (data) {
        record = { data, version: 1, createdAt: now, expiresAt: this.nextExpiry(now, now) };
        const created = await store.create(key, record);
        if (created.ok) await legacy.retire(sid);
        // A concurrent request migrated it first (conflict: adopt that one), or it was destroyed since (gone).
        else record = created.reason === 'conflict' ? await store.get(key) : null;
      }
    }
    this.queueCookie(legacy.cookieName, '', 0);
    if (!record) return;
    this.#id = id;
    this.#key = key;
    this.#record = record;
    this.tracker.data = this.tracker.dirty ? this.tracker.overlay(record.data) : record.data;
    this.#sendCookie(id, record.createdAt);
  }

  /** Logout of a session not yet migrated: the old one is retired and its migrated id tombstoned. */
  async #destroyLegacy(sid: string): Promise<void> {
    const legacy = this.options.migrateFrom!;
    this.queueCookie(legacy.cookieName, '', 0);
    if (this.degraded) return;
    try {
      const store = this.#ctx.store;
      const key = storeKey(migratedId(this.options.secrets[0]!, legacy.cookieName, sid));
      await store.destroy(key, Date.now() + this.options.idleTimeout);
      await legacy.retire(sid);
    } catch (err) {
      this.storeFailed(err);
    }
  }

  async #create(store: SessionStore, now: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const id = this.#pendingId ?? this.#newId();
      this.#pendingId = undefined;
      if (this.options.genid && attempt > 5) {
        throw invalidOption('genid', 'returned 5 ids in a row that are already in use; ids must be unique');
      }
      const key = storeKey(id);
      const record: StoredSession = {
        data: structuredClone(this.tracker.data),
        version: 1,
        createdAt: now,
        expiresAt: this.nextExpiry(now, now),
      };
      const result = await store.create(key, record);
      if (!result.ok) continue; // 256 random bits collided with a live or dead session: draw again
      this.#id = id;
      this.#key = key;
      this.#record = record;
      this.#cookieChecked = true;
      this.tracker.reset(this.tracker.data);
      this.#sendCookie(id, now);
      return;
    }
  }

  #sendCookie(id: string, createdAt: number): void {
    this.queueCookie(this.options.name, this.#ctx.signer.sign(id), this.lifetimeSeconds(createdAt));
  }

  protected override saveDue(): boolean {
    if (this.#uninitialized()) return true;
    return (
      this.#record !== undefined &&
      (this.#staleSignature || this.options.rolling || this.#touchDue(Date.now()))
    );
  }

  /** express-session's `saveUninitialized`: a new session is saved even though nothing was set. */
  #uninitialized(): boolean {
    return this.options.saveUninitialized && !this.destroyed && this.#record === undefined;
  }

  /** A new id: `genid(req)` when given (checked: the cookie must carry it safely), else 256 random bits. */
  #newId(): string {
    const genid = this.options.genid;
    if (!genid) return newSessionId();
    const id = genid(this.info.request);
    if (typeof id !== 'string' || !GENID_PATTERN.test(id)) {
      throw invalidOption(
        'genid',
        'must return 22 to 256 characters of A-Z a-z 0-9 _ - (at least 128 random bits)',
      );
    }
    return id;
  }

  /** Throttled: only when the expiry would move by at least `touchAfter` of the idle timeout. */
  #touchDue(now: number): boolean {
    const record = this.#record!;
    const gain = this.nextExpiry(record.createdAt, now) - record.expiresAt;
    return gain > 0 && gain >= this.options.touchAfter * this.options.idleTimeout;
  }

  #forget(): void {
    this.#id = undefined;
    this.#key = undefined;
    this.#record = undefined;
    this.#cookieChecked = true;
    this.#staleSignature = false;
  }
}

function newest(a: StoredSession | undefined, b: StoredSession): StoredSession {
  return a && a.version > b.version ? a : b;
}
