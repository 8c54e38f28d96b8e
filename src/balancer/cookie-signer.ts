import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signs and checks the balancer's sticky cookies: `<value>.<expiry>.<hmac>`, HMAC-SHA256 over value and
 * expiry, compared in constant time. The expiry inside the value means a copied cookie stops working when
 * its duration is over, whatever Max-Age the browser was told.
 *
 * @example
 *   const signer = new CookieSigner(secret);
 *   const v = signer.sign('clone-2', Date.now() + 60_000);
 *   signer.verify(v, Date.now()); // 'clone-2'
 */
export class CookieSigner {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  sign(value: string, expiresAt: number): string {
    const body = `${Buffer.from(value).toString('base64url')}.${Math.ceil(expiresAt / 1000).toString(36)}`;
    return `${body}.${this.#mac(body).toString('base64url')}`;
  }

  /** The signed value, or undefined when the cookie is forged, malformed or expired. */
  verify(cookie: string, now: number): string | undefined {
    const last = cookie.lastIndexOf('.');
    if (last <= 0 || cookie.length > 512) return undefined;
    const body = cookie.slice(0, last);
    // Compare the canonical text, not decoded bytes: base64 decoders ignore the low bits of the last
    // character, so several spellings decode to one MAC and a decoded comparison accepts all of them.
    const given = Buffer.from(cookie.slice(last + 1));
    const expected = Buffer.from(this.#mac(body).toString('base64url'));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const dot = body.indexOf('.');
    const expires = Number.parseInt(body.slice(dot + 1), 36) * 1000;
    if (!(expires > now)) return undefined;
    return Buffer.from(body.slice(0, dot), 'base64url').toString();
  }

  #mac(body: string): Buffer {
    return createHmac('sha256', this.#secret).update(body).digest().subarray(0, 16);
  }
}

/**
 * The value of cookie `name` in a Cookie header, or undefined.
 *
 * @example
 *   readCookie('a=1; clones_sticky=abc', 'clones_sticky'); // 'abc'
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let from = 0;
  while (from < header.length) {
    let end = header.indexOf(';', from);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', from);
    if (eq !== -1 && eq < end && header.slice(from, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    from = end + 1;
  }
  return undefined;
}

/**
 * The Cookie header without the named cookies, or undefined when nothing is left; the balancer's own
 * cookies are not the clone's business.
 *
 * @example
 *   stripCookies('a=1; clones_sticky=x', ['clones_sticky']); // 'a=1'
 */
export function stripCookies(header: string, names: readonly string[]): string | undefined {
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !names.includes(part.slice(0, part.indexOf('=')).trim()));
  return kept.length === 0 ? undefined : kept.join('; ');
}
