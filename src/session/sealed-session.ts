import { createHash } from 'node:crypto';
import { cookieTooLarge } from '../errors.ts';
import { diff } from './change-tracker.ts';
import type { ResolvedOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import { RequestSession } from './request-session.ts';
import type { SealedPayload, Sealer } from './sealer.ts';
import { newSessionId } from './session-id.ts';
import type { SessionData } from './stores/store.ts';

/** Browsers keep a Set-Cookie of at most this many bytes; over it they drop the cookie without a word. */
export const COOKIE_LIMIT = 4096;

/**
 * A session kept entirely in a sealed cookie (JWE, dir + A256GCM). Idle and absolute timeouts are checked on
 * the server from timestamps inside the seal. A destroyed session leaves a tombstone cookie (`<name>.end`,
 * the hash of the dead session's id), so a slower request that still carries the old seal cannot set it
 * again. Concurrent requests from one browser cannot merge their changes: the last response's cookie wins.
 */
export class SealedSession extends RequestSession {
  readonly #sealer: Sealer;
  #payload: SealedPayload | undefined;
  #stale = false;
  #rotated = false;

  constructor(options: ResolvedOptions, sealer: Sealer, info: RequestInfo) {
    super(options, info);
    this.#sealer = sealer;
  }

  get id(): string | undefined {
    return this.#payload?.sid;
  }

  get isNew(): boolean {
    return this.#payload === undefined;
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
      this.cookieValue(this.#tombstoneName()) !== tombstone(opened.payload.sid)
    ) {
      this.#payload = opened.payload;
      this.#stale = opened.stale;
      this.tracker.data = this.tracker.dirty
        ? this.tracker.overlay(opened.payload.data)
        : opened.payload.data;
    }
    this.markReady();
  }

  protected override saveDue(): boolean {
    const payload = this.#payload;
    if (this.#rotated || this.#stale) return true;
    return (
      payload !== undefined &&
      Date.now() - payload.seenAt >= this.options.touchAfter * this.options.idleTimeout
    );
  }

  protected async persist(): Promise<void> {
    if (!this.loaded && this.tracker.dirty) await this.load();
    const now = Date.now();
    const payload = this.#payload;
    const touchDue =
      payload !== undefined && now - payload.seenAt >= this.options.touchAfter * this.options.idleTimeout;
    if (!this.tracker.dirty && !this.#rotated && !this.#stale && !touchDue) return;
    const next: SealedPayload = {
      sid: payload?.sid ?? newSessionId(),
      data: this.tracker.data,
      createdAt: payload?.createdAt ?? now,
      seenAt: now,
    };
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
    if (this.#payload) this.#bury(this.#payload.sid);
    const now = Date.now();
    this.#payload = { sid: newSessionId(), data: this.tracker.data, createdAt: now, seenAt: now };
    this.#rotated = true;
  }

  async destroy(): Promise<void> {
    await this.load();
    const hadCookie = this.hasCookie || this.#payload !== undefined;
    if (this.#payload) this.#bury(this.#payload.sid);
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
