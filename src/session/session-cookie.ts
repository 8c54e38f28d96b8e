import type { RequestSession } from './request-session.ts';

/**
 * `req.session.cookie` as express-session has it: what the session cookie carries, read from the options and
 * the session's own times. `maxAge` (and `expires`) can be set for one session ("remember me"): it becomes
 * that session's idle timeout and its cookie's Max-Age, kept with the session.
 *
 * @example
 *   if (req.body.remember) req.session.cookie.maxAge = 30 * 24 * 3600 * 1000;
 */
export interface SessionCookie {
  /** Milliseconds until the cookie (and the idle session) expires; null for a browser-session cookie. */
  maxAge: number | null;
  /** The session's idle timeout in ms (express-session: the `maxAge` it was given). */
  readonly originalMaxAge: number | null;
  /** When the cookie expires; null for a browser-session cookie. */
  expires: Date | null;
  readonly httpOnly: boolean;
  /** true, false, or 'auto' (Secure when the request came over TLS). */
  readonly secure: boolean | 'auto';
  readonly sameSite: 'lax' | 'strict' | 'none' | 'auto' | false;
  readonly path: string;
  readonly domain: string | undefined;
  readonly partitioned: boolean;
  readonly priority: 'low' | 'medium' | 'high' | undefined;
  toJSON(): Record<string, unknown>;
}

/** Builds the `cookie` view of one request's session. */
export function sessionCookie(rs: RequestSession): SessionCookie {
  const options = rs.options;
  const c = options.cookie;
  const expiresAt = (): number | null => {
    const times = rs.times;
    const now = Date.now();
    if (c.maxAge !== undefined || rs.idleTimeout() !== options.idleTimeout) {
      return times ? times.expiresAt : now + rs.idleTimeout();
    }
    if (c.lifetime === 'browser') return null;
    return (times?.createdAt ?? now) + options.absoluteTimeout;
  };
  const view: SessionCookie = {
    get maxAge() {
      const at = expiresAt();
      return at === null ? null : Math.max(0, at - Date.now());
    },
    set maxAge(ms: number | null) {
      rs.setMaxAge(ms);
    },
    get originalMaxAge() {
      return rs.idleTimeout();
    },
    get expires() {
      const at = expiresAt();
      return at === null ? null : new Date(at);
    },
    set expires(date: Date | null) {
      rs.setMaxAge(date === null ? null : new Date(date).getTime() - Date.now());
    },
    httpOnly: c.httpOnly,
    secure: c.secure,
    sameSite:
      c.sameSite === undefined ? false : (c.sameSite.toLowerCase() as 'lax' | 'strict' | 'none' | 'auto'),
    path: c.path,
    domain: c.domain,
    partitioned: c.partitioned,
    priority: c.priority?.toLowerCase() as SessionCookie['priority'],
    toJSON() {
      return {
        originalMaxAge: view.originalMaxAge,
        expires: view.expires,
        httpOnly: view.httpOnly,
        secure: view.secure,
        sameSite: view.sameSite,
        path: view.path,
        domain: view.domain,
      };
    },
  };
  return view;
}
