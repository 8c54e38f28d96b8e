import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a dashboard login lasts. */
export const SESSION_TTL = 12 * 60 * 60 * 1000;

/**
 * The dashboard's login cookie: an expiry signed with a key kept in the fleet's home (0600), so a login
 * survives a restart of `clones up` and needs no server-side state. The one-time login token of the URL
 * `clones up` prints is exchanged for it once.
 *
 * @example
 *   const s = new DashboardSession(key);
 *   res.setHeader('set-cookie', s.cookie());
 *   s.valid(req.headers.cookie); // true
 */
export class DashboardSession {
  static readonly cookieName = 'clones_dashboard';
  readonly #key: string;
  #oneTime: string | undefined = randomBytes(24).toString('base64url');

  constructor(key: string) {
    this.#key = key;
  }

  /** The token of the login URL, until it is used. */
  get loginToken(): string | undefined {
    return this.#oneTime;
  }

  /** True (and the token is spent) when `token` is this process's one-time login token. */
  redeem(token: string): boolean {
    const expected = this.#oneTime;
    if (!expected || !same(token, expected)) return false;
    this.#oneTime = undefined;
    return true;
  }

  /** A Set-Cookie value: HttpOnly, SameSite=Strict, scoped to the dashboard. */
  cookie(now = Date.now()): string {
    const expires = now + SESSION_TTL;
    const value = `${expires}.${this.#sign(String(expires))}`;
    return `${DashboardSession.cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL / 1000}`;
  }

  /** Whether a Cookie header carries a login that is ours and not expired. */
  valid(header: string | undefined, now = Date.now()): boolean {
    const raw = (header ?? '')
      .split(';')
      .map((p) => p.trim())
      .find((p) => p.startsWith(`${DashboardSession.cookieName}=`));
    if (!raw) return false;
    const [expires, mac] = raw.slice(DashboardSession.cookieName.length + 1).split('.');
    if (!expires || !mac || !(Number(expires) > now)) return false;
    return same(mac, this.#sign(expires));
  }

  #sign(value: string): string {
    return createHmac('sha256', this.#key).update(`dashboard:${value}`).digest('base64url');
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
