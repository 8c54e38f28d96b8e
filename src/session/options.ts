import { BlockList, isIP } from 'node:net';
import { invalidOption, memoryInProduction, weakSecret } from '../errors.ts';
import type { CookieAttributes } from './cookie.ts';
import type { LegacySessions } from './legacy-sessions.ts';
import { type StoreInstance, storeInstanceKind } from './stores/store-instance.ts';

/**
 * What `sessions(options)` accepts. Only `secret` is needed (or the SESSION_SECRET environment variable);
 * everything else has a default chosen to be safe behind a load balancer.
 *
 * @example
 *   sessions({ secret: [process.env.NEW_SECRET!, process.env.OLD_SECRET!], store: 'redis://127.0.0.1:6379' });
 */
export interface SessionOptions {
  /** At least 32 bytes; `[current, ...previous]` to rotate. Default: SESSION_SECRET (space-separated list). */
  secret?: string | readonly string[];
  /**
   * Store URL (default: SESSION_STORE, else `sqlite:.clones/sessions.db`), or an object you already have: an
   * express-session `Store` (connect-redis, connect-pg-simple, ...), an ioredis client or a pg `Pool`.
   */
  store?: string | StoreInstance;
  /** Cookie name. Default `clones.sid` (`clones.session` for the sealed cookie). */
  name?: string;
  cookie?: {
    path?: string;
    domain?: string;
    /** `'Lax'` (default), `'Strict'`, `'None'` in any case; `true` = Strict, `false` = no attribute; `'auto'`: None over TLS, else Lax. */
    sameSite?: SameSiteOption;
    /** 'auto' (default): Secure when the request came over TLS, directly or through a trusted proxy. */
    secure?: boolean | 'auto';
    /** Default true. `false` lets page scripts read the session cookie (as express-session allows). */
    httpOnly?: boolean;
    partitioned?: boolean;
    priority?: 'low' | 'medium' | 'high' | 'Low' | 'Medium' | 'High';
    /**
     * express-session's `cookie.maxAge` (ms): the session ends after this long without a request (it becomes
     * the idle timeout) and the cookie's Max-Age follows that expiry. `req.session.cookie.maxAge = ms` changes
     * it for one session ("remember me").
     */
    maxAge?: number;
    /** 'absolute' (default): the cookie lives as long as the absolute timeout; 'browser': a session cookie. */
    lifetime?: 'absolute' | 'browser';
    /** Refused: one fixed date for every session. Use `maxAge`. */
    expires?: Date | null;
    /** Refused: session ids are already cookie-safe, so there is nothing to encode. */
    encode?: unknown;
  };
  /** express-session's `rolling`: re-send the cookie and move the idle expiry on every request that uses the session. */
  rolling?: boolean;
  /**
   * express-session's `resave`. `false` is what clones always does (an unchanged session is never rewritten);
   * `true` is refused: rewriting unchanged sessions is what loses concurrent updates.
   */
  resave?: boolean;
  /** express-session's `saveUninitialized`: `true` saves (and sets the cookie of) every new session, changed or not. Default false. */
  saveUninitialized?: boolean;
  /** express-session's `genid(req)`: makes new session ids; 22 to 256 characters of `A-Z a-z 0-9 _ -`. */
  genid?: (req: unknown) => string;
  /** express-session's `unset`: what `delete req.session` / `req.session = null` does. 'keep' (default) or 'destroy'. */
  unset?: 'keep' | 'destroy';
  /** express-session's `proxy`: `true` believes X-Forwarded-Proto from any proxy, `false` from none. Default: `trustProxy`. */
  proxy?: boolean;
  /**
   * What `regenerate()` does with the data: true (default) keeps it under the new id; false starts an empty
   * session, as express-session does (`expressSession()` sets false).
   */
  regenerateKeepsData?: boolean;
  /** Idle timeout in ms (default 24 h): a session unused this long is gone, checked on the server. */
  idleTimeout?: number;
  /** Absolute timeout in ms (default 7 days) from creation or `regenerate()`, whatever the activity. */
  absoluteTimeout?: number;
  /** Touch at most once per this fraction of the idle timeout (default 0.1). */
  touchAfter?: number;
  /** Proxies whose X-Forwarded-Proto is believed: addresses or CIDRs. Default loopback. */
  trustProxy?: readonly string[];
  /** What a store outage does: 'fail-closed' (default, 503 JSON) or 'anonymous' (serve without a session). */
  onStoreError?: 'fail-closed' | 'anonymous';
  /** Longest wait for the store per operation, in ms (default 2000). */
  storeTimeout?: number;
  /** Attempts of `update(fn)` against concurrent writers before CLONES_SESSION_CONFLICT (default 1000). */
  maxUpdateAttempts?: number;
  /** Prefix for store keys / table names (default 'clones'). */
  prefix?: string;
  /** Load the session before the handler when the request carries a session cookie (express-session style). */
  eager?: boolean;
  /**
   * Adopt sessions of the app's previous session library (`fromConnectRedis(...)`): a request with its cookie
   * and no clones cookie gets the old session's data as a clones session. Server-side stores only.
   */
  migrateFrom?: LegacySessions;
  /**
   * Sealed cookies only: a server-side store (any store URL; default SESSION_REVOCATION_STORE) that keeps a
   * revocation epoch per user, so `bindUser`, `listByUser` and `destroyByUser` work on sealed sessions too.
   * Each clone caches a user's epoch for `cacheMs` (default 1000): the longest a revoked cookie still works on
   * another clone.
   */
  revocations?: { store?: string; cacheMs?: number };
}

/** Every spelling of SameSite express-session takes. */
export type SameSiteOption = boolean | 'lax' | 'strict' | 'none' | 'auto' | 'Lax' | 'Strict' | 'None';

export interface ResolvedOptions {
  readonly secrets: readonly string[];
  /** The store URL; `'instance:<kind>'` when `storeInstance` is set. */
  readonly store: string;
  readonly storeInstance: StoreInstance | undefined;
  readonly name: string;
  readonly cookie: {
    readonly path: string;
    readonly domain: string | undefined;
    /** undefined: no SameSite attribute (express-session's `sameSite: false`). */
    readonly sameSite: 'Lax' | 'Strict' | 'None' | 'auto' | undefined;
    readonly secure: boolean | 'auto';
    readonly httpOnly: boolean;
    readonly partitioned: boolean;
    readonly priority: CookieAttributes['priority'];
    /** The cookie's Max-Age follows the session's idle expiry (express-session's `cookie.maxAge` was given). */
    readonly maxAge: number | undefined;
    readonly lifetime: 'absolute' | 'browser';
  };
  readonly rolling: boolean;
  readonly saveUninitialized: boolean;
  readonly genid: ((req: unknown) => string) | undefined;
  readonly unset: 'keep' | 'destroy';
  readonly regenerateKeepsData: boolean;
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly touchAfter: number;
  readonly trusted: BlockList;
  readonly onStoreError: 'fail-closed' | 'anonymous';
  readonly storeTimeout: number;
  readonly maxUpdateAttempts: number;
  readonly prefix: string;
  readonly eager: boolean;
  readonly migrateFrom: LegacySessions | undefined;
  readonly revocations: { readonly store: string; readonly cacheMs: number } | undefined;
}

const HOUR = 3_600_000;
const DEFAULT_STORE = 'sqlite:.clones/sessions.db';
/** Under a fleet, the default file goes to the clone's writable data directory (its cwd is a read-only release). */
const defaultStore = (env: NodeJS.ProcessEnv) =>
  env.CLONES_DATA_DIR ? `sqlite:${env.CLONES_DATA_DIR.replace(/\/+$/, '')}/sessions.db` : DEFAULT_STORE;

/** Validates options once, fills defaults, and freezes the result; every message names the option. */
export function resolveOptions(options: SessionOptions = {}, env = process.env): ResolvedOptions {
  checkKnown(options);
  const secrets = resolveSecrets(options.secret ?? env.SESSION_SECRET?.split(/\s+/).filter(Boolean));
  const given = options.store ?? env.SESSION_STORE ?? defaultStore(env);
  const storeInstance = typeof given === 'string' ? undefined : given;
  const store = typeof given === 'string' ? given : `instance:${storeInstanceKind(given)}`;
  if (store.startsWith('memory:') && env.NODE_ENV === 'production') throw memoryInProduction();
  const sealed = store.startsWith('cookie:');
  const c = options.cookie ?? {};
  const maxAge =
    c.maxAge === undefined || c.maxAge === null ? undefined : positive('cookie.maxAge', c.maxAge);
  if (maxAge !== undefined && options.idleTimeout !== undefined) {
    throw invalidOption('cookie.maxAge', 'is the idle timeout: give cookie.maxAge or idleTimeout, not both');
  }
  const idleTimeout = positive('idleTimeout', options.idleTimeout ?? maxAge ?? 24 * HOUR);
  const absoluteTimeout = positive(
    'absoluteTimeout',
    options.absoluteTimeout ?? Math.max(7 * 24 * HOUR, idleTimeout),
  );
  if (absoluteTimeout < idleTimeout)
    throw invalidOption('absoluteTimeout', 'must not be shorter than idleTimeout');
  if (options.resave === true) {
    throw invalidOption(
      'resave',
      'true is refused: clones never rewrites an unchanged session (that is what loses concurrent updates); ' +
        'it moves the expiry with a TTL-only touch. Drop resave, or use rolling: true to extend the session on every request',
    );
  }
  const rolling = bool('rolling', options.rolling, false);
  const touchAfter = options.touchAfter ?? (rolling ? 0 : 0.1);
  if (!(touchAfter >= 0 && touchAfter < 1)) throw invalidOption('touchAfter', 'must be a fraction in [0, 1)');
  const name = options.name ?? (sealed ? 'clones.session' : 'clones.sid');
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
    throw invalidOption('name', `"${name}" is not a cookie name`);
  const sameSite = resolveSameSite(c.sameSite);
  if (options.genid !== undefined && typeof options.genid !== 'function') {
    throw invalidOption('genid', 'must be a function (req) => string');
  }
  if (options.unset !== undefined && options.unset !== 'keep' && options.unset !== 'destroy') {
    throw invalidOption('unset', "'keep' or 'destroy'");
  }
  if (options.proxy !== undefined && options.trustProxy !== undefined) {
    throw invalidOption('proxy', 'give proxy (express-session) or trustProxy, not both');
  }
  const trustProxy =
    options.proxy === true
      ? ['0.0.0.0/0', '::/0']
      : options.proxy === false
        ? []
        : (options.trustProxy ?? ['127.0.0.0/8', '::1/128']);
  const onStoreError = options.onStoreError ?? 'fail-closed';
  if (onStoreError !== 'fail-closed' && onStoreError !== 'anonymous') {
    throw invalidOption('onStoreError', "'fail-closed' or 'anonymous'");
  }
  const migrateFrom = options.migrateFrom;
  if (migrateFrom !== undefined) {
    if (sealed) throw invalidOption('migrateFrom', 'needs a server-side store, not cookie:');
    if (typeof migrateFrom?.verify !== 'function' || typeof migrateFrom.read !== 'function') {
      throw invalidOption('migrateFrom', 'expected a LegacySessions such as fromConnectRedis({ ... })');
    }
    if (migrateFrom.cookieName === name) {
      throw invalidOption('migrateFrom', `the old cookie and the clones cookie are both named "${name}"`);
    }
  }
  const revocationStore = options.revocations?.store ?? (sealed ? env.SESSION_REVOCATION_STORE : undefined);
  if (revocationStore !== undefined && !sealed) {
    throw invalidOption('revocations', 'only sealed cookies (cookie:) need a revocation store');
  }
  if (revocationStore?.startsWith('cookie:')) {
    throw invalidOption('revocations.store', 'must be a server-side store URL (redis://, sqlite:, ...)');
  }
  const revocations =
    revocationStore === undefined
      ? undefined
      : Object.freeze({
          store: revocationStore,
          cacheMs: nonNegative('revocations.cacheMs', options.revocations?.cacheMs ?? 1000),
        });
  return Object.freeze({
    secrets,
    store,
    storeInstance,
    name,
    cookie: Object.freeze({
      path: c.path ?? '/',
      domain: c.domain,
      sameSite,
      secure: c.secure ?? 'auto',
      httpOnly: bool('cookie.httpOnly', c.httpOnly, true),
      partitioned: bool('cookie.partitioned', c.partitioned, false),
      priority: resolvePriority(c.priority),
      maxAge,
      lifetime: c.lifetime ?? 'absolute',
    }),
    rolling,
    saveUninitialized: bool('saveUninitialized', options.saveUninitialized, false),
    genid: options.genid,
    unset: options.unset ?? 'keep',
    regenerateKeepsData: bool('regenerateKeepsData', options.regenerateKeepsData, true),
    idleTimeout,
    absoluteTimeout,
    touchAfter,
    trusted: trustList(trustProxy),
    onStoreError,
    storeTimeout: positive('storeTimeout', options.storeTimeout ?? 2000),
    maxUpdateAttempts: positive('maxUpdateAttempts', options.maxUpdateAttempts ?? 1000),
    prefix: options.prefix ?? 'clones',
    eager: options.eager ?? false,
    migrateFrom,
    revocations,
  });
}

const KNOWN = new Set([
  'secret',
  'store',
  'name',
  'cookie',
  'idleTimeout',
  'absoluteTimeout',
  'touchAfter',
  'trustProxy',
  'onStoreError',
  'storeTimeout',
  'maxUpdateAttempts',
  'prefix',
  'eager',
  'migrateFrom',
  'revocations',
  'rolling',
  'resave',
  'saveUninitialized',
  'genid',
  'unset',
  'proxy',
  'regenerateKeepsData',
]);
const KNOWN_COOKIE = new Set([
  'path',
  'domain',
  'sameSite',
  'secure',
  'httpOnly',
  'partitioned',
  'priority',
  'maxAge',
  'lifetime',
]);

/** No option is ever silently ignored: unknown names, and express-session's that clones cannot honour, are refused. */
function checkKnown(options: SessionOptions): void {
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) {
      throw invalidOption(name, `unknown option; known: ${[...KNOWN].join(', ')}`);
    }
  }
  const cookie = (options.cookie ?? {}) as Record<string, unknown>;
  if (cookie.expires !== undefined && cookie.expires !== null) {
    throw invalidOption(
      'cookie.expires',
      'one fixed date for every session is refused (express-session advises against it too); use cookie.maxAge (ms)',
    );
  }
  if (cookie.encode !== undefined) {
    throw invalidOption('cookie.encode', 'session ids are already cookie-safe; remove it');
  }
  for (const name of Object.keys(cookie)) {
    if (!KNOWN_COOKIE.has(name) && name !== 'expires' && name !== 'encode') {
      throw invalidOption(`cookie.${name}`, `unknown cookie option; known: ${[...KNOWN_COOKIE].join(', ')}`);
    }
  }
}

const SAME_SITE: Record<string, 'Lax' | 'Strict' | 'None' | 'auto'> = {
  lax: 'Lax',
  strict: 'Strict',
  none: 'None',
  auto: 'auto',
};

/** express-session's spellings: true = Strict, false = no attribute, any case of lax/strict/none, 'auto'. */
function resolveSameSite(value: SameSiteOption | undefined): ResolvedOptions['cookie']['sameSite'] {
  if (value === undefined || value === null) return 'Lax';
  if (value === true) return 'Strict';
  if (value === false) return undefined;
  const found = typeof value === 'string' ? SAME_SITE[value.toLowerCase()] : undefined;
  if (!found) {
    throw invalidOption('cookie.sameSite', "'lax', 'strict', 'none' (any case), 'auto', true or false");
  }
  return found;
}

function resolvePriority(value: string | undefined): CookieAttributes['priority'] {
  if (value === undefined) return undefined;
  const found = { low: 'Low', medium: 'Medium', high: 'High' }[String(value).toLowerCase()];
  if (!found) throw invalidOption('cookie.priority', "'low', 'medium' or 'high'");
  return found as CookieAttributes['priority'];
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(option, 'must be true or false');
  return value;
}

function resolveSecrets(secret: string | readonly string[] | undefined): readonly string[] {
  const list = typeof secret === 'string' ? [secret] : secret;
  if (!list || list.length === 0) {
    throw weakSecret('no session secret: pass { secret } or set SESSION_SECRET (at least 32 bytes, random)');
  }
  list.forEach((s, i) => {
    if (typeof s !== 'string' || Buffer.byteLength(s) < 32) {
      throw weakSecret(`secret[${i}] is shorter than 32 bytes; use e.g. \`openssl rand -base64 32\``);
    }
  });
  return Object.freeze([...list]);
}

function positive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw invalidOption(option, 'must be a positive number');
  return value;
}

function nonNegative(option: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw invalidOption(option, 'must be a number >= 0');
  return value;
}

function trustList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const family = isIP(address);
    if (family === 0) throw invalidOption('trustProxy', `"${entry}" is not an address or CIDR`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}
