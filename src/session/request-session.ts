import { ClonesError, invalidOption, notLoaded, sessionByUserUnsupported } from '../errors.ts';
import { logger } from '../logger.ts';
import { ChangeTracker } from './change-tracker.ts';
import { type CookieAttributes, parseCookies, serializeCookie } from './cookie.ts';
import type { ResolvedOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import type { SessionData } from './stores/store.ts';

const log = logger.child({ part: 'session' });

/**
 * The data key that keeps a per-session `req.session.cookie.maxAge` (express-session keeps its whole cookie
 * there too); hidden from the session's keys.
 */
export const COOKIE_KEY = 'cookie';

/**
 * One request's view of its session, whatever keeps it (a store or a sealed cookie). Subclasses say how a
 * session is read, saved, rotated and destroyed; this class holds what they share: lazy loading, the data and
 * its changes, the outage policy and the Set-Cookie headers to send.
 */
export abstract class RequestSession {
  readonly options: ResolvedOptions;
  protected readonly info: RequestInfo;
  protected readonly tracker = new ChangeTracker();
  protected readonly setCookies: string[] = [];
  /** 'idle': nothing read yet; 'ready': data is what the backend holds (or an empty new session). */
  #state: 'idle' | 'loading' | 'ready' = 'idle';
  #loading: Promise<void> | undefined;
  #cookies: Map<string, string[]> | undefined;
  /** Set when the store failed and `onStoreError` is 'anonymous': serve without a session, write nothing. */
  protected degraded = false;
  /** Set by destroy(): `saveUninitialized` must not bring a new session back on this request. */
  protected destroyed = false;
  #discarded = false;

  constructor(options: ResolvedOptions, info: RequestInfo) {
    this.options = options;
    this.info = info;
  }

  /** The session id, or undefined while no session exists yet. */
  abstract get id(): string | undefined;
  /** True until the session has been saved once. */
  abstract get isNew(): boolean;
  /** Reads the session the cookie names; leaves an empty new session when there is none. */
  protected abstract read(): Promise<void>;
  /** Writes pending changes (or a due touch) and queues the cookies to send. */
  protected abstract persist(): Promise<void>;
  abstract update<R>(fn: (draft: SessionData) => R | Promise<R>): Promise<Awaited<R>>;
  abstract regenerate(): Promise<void>;
  abstract destroy(): Promise<void>;
  /**
   * Records `userId` on the stored session (creating it if new) so `listByUser`/`destroyByUser` find it;
   * `regenerate()` keeps it. Sealed cookies have no per-user index: CLONES_SESSION_BY_USER_UNSUPPORTED.
   */
  async bindUser(_userId: string): Promise<void> {
    throw sessionByUserUnsupported('cookie');
  }
  /** True when the request carries a cookie that may name a session (so reading it means I/O). */
  abstract get hasCookie(): boolean;
  /** When the session began and when it idles out; undefined while it does not exist yet. */
  abstract get times(): { createdAt: number; expiresAt: number } | undefined;

  /**
   * Drops this request's changes and reads the session again from its backend (express-session's
   * `reload`).
   */
  async reload(): Promise<void> {
    if (this.#state === 'loading') await this.#loading;
    this.tracker.reset({});
    this.#state = 'idle';
    this.#loading = undefined;
    await this.load();
  }

  /** Forgets this request's changes without reading again (`unset: 'keep'` after `req.session = null`). */
  discard(): void {
    this.#discarded = true;
  }

  /** This session's idle timeout: its own `cookie.maxAge` when one was set, else the option's. */
  idleTimeout(): number {
    if (!this.readable()) return this.options.idleTimeout;
    const own = (this.tracker.read(COOKIE_KEY) as { originalMaxAge?: unknown } | undefined)?.originalMaxAge;
    return typeof own === 'number' && own > 0 ? own : this.options.idleTimeout;
  }

  /** Sets this session's own `cookie.maxAge` (ms; null: back to the option's), kept with the session. */
  setMaxAge(ms: number | null): void {
    if (ms === null) {
      this.removeKey(COOKIE_KEY);
      return;
    }
    if (!Number.isFinite(ms) || ms <= 0)
      throw invalidOption('req.session.cookie.maxAge', 'a number of ms > 0');
    this.writeKey(COOKIE_KEY, { originalMaxAge: Math.min(ms, this.options.absoluteTimeout) });
  }

  /** The cookie's Max-Age follows the idle expiry (express-session's `cookie.maxAge`, given or per session). */
  protected cookieFollowsExpiry(): boolean {
    return this.options.cookie.maxAge !== undefined || this.idleTimeout() !== this.options.idleTimeout;
  }

  /** Loads the session once; later calls wait for the same load. */
  load(): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    this.#loading ??= this.#load();
    return this.#loading;
  }

  get loaded(): boolean {
    return this.#state === 'ready';
  }

  /**
   * Keeps the session alive: loads it, and the save at the end of the request moves its idle expiry, TTL only,
   * at most once per `touchAfter` of the idle timeout (every loaded session is touched the same way).
   */
  async touch(): Promise<void> {
    await this.load();
  }

  /** Saves now (the adapters also save at the end of the response). */
  async save(): Promise<void> {
    if (this.#state === 'loading') await this.#loading;
    if (this.degraded || this.#discarded) return;
    try {
      await this.persist();
    } catch (err) {
      this.#storeFailed(err);
    }
  }

  /**
   * True when a save now would do nothing (no change, no cookie queued, no touch due), so an adapter can end
   * the response at once instead of waiting on an empty save: the common read-only request.
   */
  get settled(): boolean {
    if (this.#state === 'loading' || this.setCookies.length > 0) return false;
    if (this.degraded || this.#discarded) return true;
    return !this.tracker.dirty && !this.saveDue();
  }

  /** True when a save would write even without data changes (a touch that is due, a cookie to re-sign). */
  protected saveDue(): boolean {
    return true;
  }

  /** Saves and returns the Set-Cookie values to send; each call returns only the ones not returned before. */
  async commit(): Promise<string[]> {
    await this.save();
    return this.setCookies.splice(0);
  }

  readKey(key: string): unknown {
    if (!this.readable()) throw notLoaded(key);
    return this.tracker.read(key);
  }

  writeKey(key: string, value: unknown): void {
    this.tracker.write(key, value);
  }

  removeKey(key: string): void {
    this.tracker.remove(key);
  }

  keys(): string[] {
    if (!this.readable()) throw notLoaded('*');
    return Object.keys(this.tracker.data).filter((k) => k !== COOKIE_KEY);
  }

  /** Data can be read without I/O: it is loaded, or there is no cookie so the session is new and empty. */
  readable(): boolean {
    if (this.#state === 'ready') return true;
    if (this.#state === 'idle' && !this.hasCookie) {
      this.#state = 'ready';
      return true;
    }
    return false;
  }

  protected markReady(): void {
    this.#state = 'ready';
  }

  protected cookieValues(name: string): string[] | undefined {
    this.#cookies ??= parseCookies(this.info.cookie);
    return this.#cookies.get(name);
  }

  /** The one value of a cookie; a cookie sent twice is refused (cookie tossing), as is an absent one. */
  protected cookieValue(name: string): string | undefined {
    const values = this.cookieValues(name);
    return values?.length === 1 ? values[0] : undefined;
  }

  protected queueCookie(name: string, value: string, maxAgeSeconds: number | undefined): string {
    const c = this.options.cookie;
    const secure = this.secure();
    const attributes: CookieAttributes = { path: c.path, httpOnly: c.httpOnly, secure };
    // 'auto' (express-session 1.19): None where the cookie can be Secure, Lax where it cannot.
    const sameSite = c.sameSite === 'auto' ? (secure ? 'None' : 'Lax') : c.sameSite;
    if (sameSite) attributes.sameSite = sameSite;
    if (c.domain) attributes.domain = c.domain;
    if (c.partitioned) attributes.partitioned = true;
    if (c.priority) attributes.priority = c.priority;
    if (maxAgeSeconds !== undefined) attributes.maxAge = maxAgeSeconds;
    const header = serializeCookie(name, value, attributes);
    // One Set-Cookie per name per response: a later one (a save, then the end of the response) replaces it.
    const at = this.setCookies.findIndex((h) => h.startsWith(`${name}=`));
    if (at !== -1) this.setCookies.splice(at, 1);
    this.setCookies.push(header);
    return header;
  }

  /** Max-Age for a cookie that should live as long as the session may: the rest of the absolute timeout. */
  protected lifetimeSeconds(createdAt: number): number | undefined {
    if (this.cookieFollowsExpiry()) {
      return Math.max(1, Math.ceil((this.nextExpiry(createdAt) - Date.now()) / 1000));
    }
    if (this.options.cookie.lifetime === 'browser') return undefined;
    return Math.max(1, Math.ceil((createdAt + this.options.absoluteTimeout - Date.now()) / 1000));
  }

  /** The idle expiry a session active now gets, never past its absolute timeout. */
  protected nextExpiry(createdAt: number, now = Date.now()): number {
    return Math.min(now + this.idleTimeout(), createdAt + this.options.absoluteTimeout);
  }

  /** Secure when asked, or ('auto') when the request came over TLS directly or via a trusted proxy. */
  protected secure(): boolean {
    const wanted = this.options.cookie.secure;
    if (wanted !== 'auto') return wanted;
    if (this.info.encrypted) return true;
    const address = this.info.remoteAddress;
    if (!address || this.info.forwardedProto === undefined) return false;
    const mapped = address.startsWith('::ffff:') ? address.slice(7) : address;
    const type = mapped.includes(':') ? 'ipv6' : 'ipv4';
    if (!this.options.trusted.check(mapped, type)) return false;
    const header = Array.isArray(this.info.forwardedProto)
      ? this.info.forwardedProto.join(',')
      : this.info.forwardedProto;
    const last = header.split(',').pop()?.trim().toLowerCase();
    return last === 'https';
  }

  /** A store failure: rethrown as a coded 503 (fail-closed), or the session goes anonymous. */
  protected storeFailed(err: unknown): void {
    this.#storeFailed(err);
  }

  async #load(): Promise<void> {
    this.#state = 'loading';
    try {
      await this.read();
    } catch (err) {
      this.#state = 'ready';
      this.#storeFailed(err);
    }
    this.#state = 'ready';
  }

  #storeFailed(err: unknown): void {
    if (!(err instanceof ClonesError)) throw err;
    const coded = err;
    if (coded.status !== 503 || this.options.onStoreError === 'fail-closed') throw coded;
    log.warn({ code: coded.code, err: coded.message }, 'session store failed; serving without a session');
    this.degraded = true;
    this.tracker.reset({});
    this.setCookies.length = 0;
  }
}
