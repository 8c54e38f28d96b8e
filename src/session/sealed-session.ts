import { createHash } from 'node:crypto';
import { cookieTooLarge, sessionByUserUnsupported } from '../errors.ts';
import { logger } from '../logger.ts';
import { diff } from './change-tracker.ts';
import type { ResolvedOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import { RequestSession } from './request-session.ts';
import type { SealedPayload, Sealer } from './sealer.ts';
import { newSessionId, storeKey } from './session-id.ts';
import type { SessionData } from './stores/store.ts';
import type { UserEpochs } from './user-epochs.ts';

const log = logger.child({ part: 'session' });

/** Browsers keep a Set-Cookie of at most this many bytes; over it they drop the cookie without a word. */
export const COOKIE_LIMIT = 4096;

/**
 * A session kept entirely in a sealed cookie (JWE, dir + A256GCM). Idle and absolute timeouts are checked on
 * the server from timestamps inside the seal. A destroyed session leaves a tombstone cookie (`<name>.end`,
 * the hash of the dead session's id), so a slower request that still carries the old seal cannot set it
 * again. Concurrent requests from one browser cannot merge their changes: the last response's cookie wins.
 * With a revocation store, a session bound to a user carries the user's epoch, and is refused once
 * `destroyByUser` has raised it (see UserEpochs).
 */
export class SealedSession extends RequestSession {
  readonly #sealer: Sealer;
  readonly #epochs: UserEpochs | undefined;
  #payload: SealedPayload | undefined;
  #stale = false;
  #rotated = false;

  constructor(options: ResolvedOptions, sealer: Sealer, info: RequestInfo, epochs?: UserEpochs) {
    super(options, info);
    this.#sealer = sealer;
    this.#epochs = epochs;
  }

  get id(): string | undefined {
    return this.#payload?.sid;
  }

  get isNew(): boolean {
    return this.#payload === undefined;
  }

  get times(): { createdAt: number; expiresAt: number } | undefined {
    const p = this.#payload;
    return p && { createdAt: p.createdAt, expiresAt: this.nextExpiry(p.createdAt, p.seenAt) };
  }

  /** express-session's `saveUninitialized`: a new session is sealed even though nothing was set. */
  #uninitialized(): boolean {
    return this.options.saveUninitialized && !this.destroyed && this.#payload === undefined;
  }

  get hasCookie(): boolean {
    return this.cookieValues(this.options.name) !== undefined;
  }

  protected async read(): Promise<void> {
    const token = this.cookieValue(this.options.name);
    const opened = token === undefined ? null : await this.#sealer.unseal(token);
    const now = Date.now();
    if (
      opened &&
      opened.payload.createdAt + this.options.absoluteTimeout > now &&
      opened.payload.seenAt + this.options.idleTimeout > now &&
      opened.payload.createdAt <= now + 60_000 &&
      this.cookieValue(this.#tombstoneName()) !== tombstone(opened.payload.sid) &&
      (await this.#notRevoked(opened))
    ) {
      this.#payload = opened.payload;
      this.#stale ||= opened.stale;
      this.tracker.data = this.tracker.dirty
        ? this.tracker.overlay(opened.payload.data)
        : opened.payload.data;
    }
    this.markReady();
  }

  /**
   * False for a session bound to a user whose epoch has moved past the cookie's (logged out everywhere),
   * unless the `destroyByUser` that moved it spared this session: that one is re-sealed with the new epoch.
   */
  async #notRevoked(opened: { payload: SealedPayload }): Promise<boolean> {
    const { userId, epoch = 0, sid } = opened.payload;
    if (userId === undefined || this.#epochs === undefined) return true;
    const record = await this.#epochs.current(userId);
    if (epoch >= record.epoch) return true;
    if (!record.keep.includes(storeKey(sid))) {
      this.queueCookie(this.options.name, '', 0);
      return false;
    }
    opened.payload = { ...opened.payload, epoch: record.epoch };
    this.#stale = true;
    return true;
  }

  protected override saveDue(): boolean {
    const payload = this.#payload;
    if (this.#rotated || this.#stale || this.#uninitialized()) return true;
    return (
      payload !== undefined &&
      Date.now() - payload.seenAt >= this.options.touchAfter * this.options.idleTimeout
    );
  }

  protected async persist(): Promise<void> {
    if (!this.loaded && (this.tracker.dirty || this.#uninitialized())) await this.load();
    const now = Date.now();
    const payload = this.#payload;
    const touchDue =
      payload !== undefined && now - payload.seenAt >= this.options.touchAfter * this.options.idleTimeout;
    if (!this.tracker.dirty && !this.#rotated && !this.#stale && !touchDue && !this.#uninitialized()) return;
    const next: SealedPayload = {
      sid: payload?.sid ?? newSessionId(),
      data: this.tracker.data,
      createdAt: payload?.createdAt ?? now,
      seenAt: now,
    };
    if (payload?.userId !== undefined) {
      next.userId = payload.userId;
      next.epoch = payload.epoch ?? 0;
    }
    const bytes = this.#headerBytes(next);
    if (bytes > COOKIE_LIMIT) throw cookieTooLarge(bytes, COOKIE_LIMIT);
    const token = await this.#sealer.seal(next);
    this.queueCookie(this.options.name, token, this.lifetimeSeconds(next.createdAt));
    this.#payload = next;
    this.#stale = false;
    this.#rotated = false;
    this.tracker.reset(this.tracker.data);
  }

  async update<R>(fn: (draft: SessionData) => R | Promise<R>): Promise<Awaited<R>> {
    await this.load();
    const draft = structuredClone(this.tracker.data);
    const result = await fn(draft);
    const { set, del } = diff(this.tracker.data, draft);
    for (const key of del) this.tracker.remove(key);
    for (const key of Object.keys(set)) this.tracker.write(key, set[key]);
    return result;
  }

  async regenerate(): Promise<void> {
    await this.load();
    const old = this.#payload;
    if (old) this.#bury(old.sid);
    const now = Date.now();
    const keep = this.options.regenerateKeepsData;
    if (!keep) this.tracker.reset({});
    this.destroyed = false;
    this.#payload = { sid: newSessionId(), data: this.tracker.data, createdAt: now, seenAt: now };
    this.#rotated = true;
    // A rotated session stays bound to its user, under its new id.
    if (keep && old?.userId !== undefined && !this.degraded) await this.#bind(old.userId, old.sid);
  }

  /** Binds the session to `userId` in the revocation store, so `destroyByUser` can revoke it. */
  override async bindUser(userId: string): Promise<void> {
    if (this.#epochs === undefined) throw sessionByUserUnsupported('cookie (no revocation store)');
    await this.load();
    if (this.degraded) return;
    if (this.#payload === undefined) {
      const now = Date.now();
      this.#payload = { sid: newSessionId(), data: this.tracker.data, createdAt: now, seenAt: now };
    }
    await this.#bind(userId, undefined);
    this.#rotated = true;
  }

  async #bind(userId: string, replacesSid: string | undefined): Promise<void> {
    const payload = this.#payload!;
    try {
      const epoch = await this.#epochs!.register(
        userId,
        {
          key: storeKey(payload.sid),
          createdAt: payload.createdAt,
          expiresAt: payload.createdAt + this.options.absoluteTimeout,
        },
        replacesSid === undefined ? undefined : storeKey(replacesSid),
      );
      this.#payload = { ...payload, userId, epoch };
    } catch (err) {
      this.storeFailed(err);
    }
  }

  async destroy(): Promise<void> {
    await this.load();
    const hadCookie = this.hasCookie || this.#payload !== undefined;
    const bound = this.#payload?.userId;
    if (bound !== undefined && this.#epochs && !this.degraded) {
      // Only keeps listByUser tidy: the tombstone cookie already ends the session, so logout never fails here.
      await this.#epochs
        .unregister(bound, storeKey(this.#payload!.sid))
        .catch((err) => log.warn({ err: (err as Error).message }, 'could not unlist a destroyed session'));
    }
    if (this.#payload) this.#bury(this.#payload.sid);
    this.destroyed = true;
    this.#payload = undefined;
    this.#rotated = false;
    this.tracker.reset({});
    if (hadCookie) this.queueCookie(this.options.name, '', 0);
  }

  /** The tombstone cookie that keeps `sid` dead for as long as an in-flight request could still revive it. */
  #bury(sid: string): void {
    const maxAge = Math.ceil(Math.min(this.options.idleTimeout, this.options.absoluteTimeout) / 1000);
    this.queueCookie(this.#tombstoneName(), tombstone(sid), maxAge);
  }

  #tombstoneName(): string {
    return `${this.options.name}.end`;
  }

  /** Bytes of the whole Set-Cookie header for `payload`, computed without encrypting. */
  #headerBytes(payload: SealedPayload): number {
    const valueLength = this.#sealer.sealedLength(payload);
    const probe = this.queueCookie(this.options.name, 'x', this.lifetimeSeconds(payload.createdAt));
    this.setCookies.pop();
    return 'Set-Cookie: '.length + Buffer.byteLength(probe) - 1 + valueLength;
  }
}

function tombstone(sid: string): string {
  return createHash('sha256').update(sid).digest('base64url').slice(0, 22);
}
