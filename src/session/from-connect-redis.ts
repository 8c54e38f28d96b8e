import { createHmac, timingSafeEqual } from 'node:crypto';
import { invalidOption, storeUnavailable } from '../errors.ts';
import { requireDriver } from '../require-driver.ts';
import type { LegacySessions } from './legacy-sessions.ts';
import type { SessionData } from './stores/store.ts';

/** The two calls made on the old Redis: node-redis (v4+, what connect-redis 9 takes) and ioredis both fit. */
export interface RedisGetDel {
  get(key: string): Promise<string | null>;
  del(key: string): Promise<unknown>;
}

export interface ConnectRedisOptions {
  /** express-session's `secret` (a list: every one is tried, as express-session does). */
  secret: string | readonly string[];
  /** The Redis connect-redis used (`redis://...`); or pass `client`. */
  url?: string;
  /** An open node-redis or ioredis client; it stays the caller's to close. */
  client?: RedisGetDel;
  /** express-session's cookie name (its `name` option). Default `connect.sid`. */
  name?: string;
  /** connect-redis's key prefix. Default `sess:`. */
  prefix?: string;
  /**
   * Delete `sess:<sid>` once the session lives in clones (default true): a later logout cannot be undone by the
   * old key. Set false while old and new app versions serve side by side; the old key then expires by its TTL.
   */
  remove?: boolean;
  /** How long the old cookie keeps naming the migrated session, for concurrent requests (default 60 s). */
  graceMs?: number;
  /** Connect and command timeout of the client opened from `url`, in ms (default 2000). */
  timeoutMs?: number;
}

/**
 * Moves users of express-session + connect-redis to clones sessions without logging them out. A request with no
 * clones cookie but a valid `connect.sid` (`s:<sid>.<sig>` signed with the old secret) gets the data at
 * `sess:<sid>` (minus express-session's `cookie` member) as a new clones session, the clones cookie, and the old
 * cookie cleared; the old key is then deleted (`remove: false` leaves it).
 *
 * @example
 *   const s = sessions({
 *     secret: process.env.SESSION_SECRET,
 *     store: 'redis://127.0.0.1:6379',
 *     migrateFrom: fromConnectRedis({ url: 'redis://127.0.0.1:6379', secret: process.env.OLD_EXPRESS_SECRET! }),
 *   });
 */
export function fromConnectRedis(options: ConnectRedisOptions): LegacySessions {
  const secrets = typeof options.secret === 'string' ? [options.secret] : [...(options.secret ?? [])];
  if (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s === '')) {
    throw invalidOption('fromConnectRedis.secret', "express-session's secret (a string or a list of them)");
  }
  if ((options.url === undefined) === (options.client === undefined)) {
    throw invalidOption('fromConnectRedis', 'give either url or client');
  }
  const name = options.name ?? 'connect.sid';
  const prefix = options.prefix ?? 'sess:';
  const remove = options.remove ?? true;
  const graceMs = options.graceMs ?? 60_000;
  if (!(graceMs >= 0)) throw invalidOption('fromConnectRedis.graceMs', 'must be a number >= 0');
  const timeoutMs = options.timeoutMs ?? 2000;
  let opened: Promise<RedisGetDel & { disconnect(): void }> | undefined;
  const client = async (): Promise<RedisGetDel> => {
    if (options.client) return options.client;
    opened ??= (async () => {
      const { Redis } = requireDriver<typeof import('ioredis')>('ioredis', 'fromConnectRedis({ url })');
      return new Redis(options.url!, {
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 1,
      });
    })();
    return opened;
  };
  const call = async <T>(fn: (c: RedisGetDel) => Promise<T>): Promise<T> => {
    try {
      return await fn(await client());
    } catch (err) {
      throw storeUnavailable('connect-redis', err);
    }
  };

  return {
    cookieName: name,
    graceMs,
    verify: (value) => unsignExpressCookie(value, secrets),
    async read(sid) {
      const raw = await call((c) => c.get(prefix + sid));
      if (raw === null) return null;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        return null; // not JSON: written by another serializer; nothing we can move
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
      const { cookie, ...data } = parsed as { cookie?: { expires?: unknown } } & SessionData;
      const expires = cookie?.expires ? new Date(cookie.expires as string).getTime() : Number.NaN;
      if (expires <= Date.now()) return null; // as express-session: an expired cookie is no session
      return data;
    },
    async retire(sid) {
      if (remove) await call((c) => c.del(prefix + sid));
    },
    async close() {
      if (opened) (await opened).disconnect();
    },
  };
}

/**
 * express-session's cookie: percent-encoded `s:<sid>.<base64 HMAC-SHA256(secret, sid) without '='>`, checked
 * as cookie-signature does (constant time, against each secret). The sid, or null.
 */
export function unsignExpressCookie(value: string, secrets: readonly string[]): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return null;
  }
  if (!decoded.startsWith('s:')) return null;
  const signed = decoded.slice(2);
  const dot = signed.lastIndexOf('.');
  if (dot <= 0) return null;
  const sid = signed.slice(0, dot);
  const given = Buffer.from(signed.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(
      createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, ''),
    );
    if (expected.length === given.length && timingSafeEqual(expected, given)) return sid;
  }
  return null;
}
