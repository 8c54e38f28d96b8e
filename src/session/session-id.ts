import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Ids from an app's `genid(req)`: cookie-safe, without the '.' that separates the MAC, and not short. */
export const GENID_PATTERN = /^[A-Za-z0-9_-]{22,256}$/;
/** Verified cookie values kept per signer (about 200 bytes each). */
const VERIFIED_CACHE = 10_000;

/** A new session id: 256 bits from the OS CSPRNG, base64url (43 characters). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** The key a store files a session under: hex SHA-256 of the id, so a store dump yields no live session. */
export function storeKey(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/**
 * Signs and checks the id cookie (`<id>.<HMAC-SHA256>`), with `[current, ...previous]` secrets. The HMAC key is
 * derived from each secret (HKDF) so the same secret can also seal cookies without key reuse.
 *
 * @example
 *   const signer = new IdSigner(['a-32-byte-or-longer-secret.......']);
 *   signer.verify(signer.sign(id)); // { id, stale: false }
 */
export class IdSigner {
  readonly #keys: Buffer[];
  /**
   * Cookie values already verified, so a browser's every request does not pay for an HMAC again. Keyed by the
   * whole cookie value (id and MAC), so only a value that passed the check can hit; bounded, oldest out first.
   */
  readonly #verified = new Map<string, Readonly<{ id: string; stale: boolean }>>();

  constructor(secrets: readonly string[]) {
    this.#keys = secrets.map((s) =>
      Buffer.from(hkdfSync('sha256', s, 'clones/session', 'clones session id v1', 32)),
    );
  }

  sign(id: string): string {
    return `${id}.${this.#mac(this.#keys[0]!, id).toString('base64url')}`;
  }

  /** The id when the cookie value is well-formed and signed by one of the secrets; checked in constant time. */
  verify(value: string): Readonly<{ id: string; stale: boolean }> | null {
    const known = this.#verified.get(value);
    if (known) return known;
    // `<id>.<43 characters of MAC>`: the id is ours (43 characters) or an app's genid() (22 to 256).
    const dot = value.length - 44;
    if (dot < 22 || value.charCodeAt(dot) !== 46) return null;
    const id = value.slice(0, dot);
    if (!(dot === 43 ? ID_PATTERN : GENID_PATTERN).test(id)) return null;
    const mac = value.slice(dot + 1);
    const given = Buffer.from(mac, 'base64url');
    // Base64 decoders ignore the unused low bits of the last character: without this check, a cookie with its
    // last character changed could still carry the same MAC bytes and be accepted.
    if (given.length !== 32 || given.toString('base64url') !== mac) return null;
    for (let i = 0; i < this.#keys.length; i++) {
      if (timingSafeEqual(given, this.#mac(this.#keys[i]!, id))) return this.#remember(value, id, i > 0);
    }
    return null;
  }

  #remember(value: string, id: string, stale: boolean): Readonly<{ id: string; stale: boolean }> {
    if (this.#verified.size >= VERIFIED_CACHE) this.#verified.delete(this.#verified.keys().next().value!);
    const verified = Object.freeze({ id, stale });
    this.#verified.set(value, verified);
    return verified;
  }

  #mac(key: Buffer, id: string): Buffer {
    return createHmac('sha256', key).update(id).digest();
  }
}
