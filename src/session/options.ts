import { BlockList, isIP } from 'node:net';
import { memoryInProduction, weakSecret } from '../errors.ts';
import { OptionIssues } from '../option-issues.ts';
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

/**
 * Validates options once, fills defaults, and freezes the result; every message names the option. Every wrong
 * option is reported at once, in one CLONES_INVALID_OPTION with a line each (in the order they are checked).
 * A missing or short secret and `memory:` in production keep their own codes, raised when no option before
 * them was wrong.
 *
 * @example
 *   const options = resolveOptions({ secret: process.env.SESSION_SECRET, idleTimeout: 3_600_000 });
 */
export function resolveOptions(options: SessionOptions = {}, env = process.env): ResolvedOptions {
  const v = new OptionIssues();
  checkKnown(options, v);
  const secrets = resolveSecrets(options.secret ?? env.SESSION_SECRET?.split(/\s+/).filter(Boolean), v);
  const given = options.store ?? env.SESSION_STORE ?? defaultStore(env);
  const storeInstance = typeof given === 'string' ? undefined : given;
  if (typeof given !== 'string') v.throwIfAny(); // storeInstanceKind throws its own: earlier ones first
  const store = typeof given === 'string' ? given : `instance:${storeInstanceKind(given)}`;
  if (store.startsWith('memory:') && env.NODE_ENV === 'production') {
    v.throwIfAny();
    throw memoryInProduction();
  }
  const sealed = store.startsWith('cookie:');
  const c = options.cookie ?? {};
  const maxAge = c.maxAge == null ? undefined : positive('cookie.maxAge', c.maxAge, undefined, v);
  if (maxAge !== undefined && options.idleTimeout !== undefined) {
    v.add('cookie.maxAge', 'is the idle timeout: give cookie.maxAge or idleTimeout, not both');
  }
  const idleGiven = options.idleTimeout ?? maxAge ?? 24 * HOUR;
  const idleTimeout = positive('idleTimeout', idleGiven, 24 * HOUR, v);
  const absoluteDefault = Math.max(7 * 24 * HOUR, idleTimeout);
  const absoluteTimeout = positive(
    'absoluteTimeout',
    options.absoluteTimeout ?? absoluteDefault,
    absoluteDefault,
    v,
  );
  if (idleTimeout === idleGiven && absoluteTimeout < idleTimeout)
    v.add('absoluteTimeout', 'must not be shorter than idleTimeout');
  if (options.resave === true) {
    v.add(
      'resave',
      'true is refused: clones never rewrites an unchanged session (that is what loses concurrent updates); ' +
        'it moves the expiry with a TTL-only touch. Drop resave, or use rolling: true to extend the session on every request',
    );
  }
  const rolling = bool('rolling', options.rolling, false, v);
  const touchAfter = options.touchAfter ?? (rolling ? 0 : 0.1);
  if (!(touchAfter >= 0 && touchAfter < 1)) v.add('touchAfter', 'must be a fraction in [0, 1)');
  const name = options.name ?? (sealed ? 'clones.session' : 'clones.sid');
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) v.add('name', `"${name}" is not a cookie name`);
  const sameSite = resolveSameSite(c.sameSite, v);
  if (options.genid !== undefined && typeof options.genid !== 'function') {
    v.add('genid', 'must be a function (req) => string');
  }
  if (options.unset !== undefined && options.unset !== 'keep' && options.unset !== 'destroy') {
    v.add('unset', "'keep' or 'destroy'");
  }
  if (options.proxy !== undefined && options.trustProxy !== undefined) {
    v.add('proxy', 'give proxy (express-session) or trustProxy, not both');
  }
  const trustProxy =
    options.proxy === true
      ? ['0.0.0.0/0', '::/0']
      : options.proxy === false
        ? []
        : (options.trustProxy ?? ['127.0.0.0/8', '::1/128']);
  const onStoreError = options.onStoreError ?? 'fail-closed';
  if (onStoreError !== 'fail-closed' && onStoreError !== 'anonymous') {
    v.add('onStoreError', "'fail-closed' or 'anonymous'");
  }
  const migrateFrom = options.migrateFrom;
  if (migrateFrom !== undefined) {
    if (sealed) v.add('migrateFrom', 'needs a server-side store, not cookie:');
    else if (typeof migrateFrom?.verify !== 'function' || typeof migrateFrom.read !== 'function') {
      v.add('migrateFrom', 'expected a LegacySessions such as fromConnectRedis({ ... })');
    } else if (migrateFrom.cookieName === name) {
      v.add('migrateFrom', `the old cookie and the clones cookie are both named "${name}"`);
    }
  }
  const revocationStore = options.revocations?.store ?? (sealed ? env.SESSION_REVOCATION_STORE : undefined);
  if (revocationStore !== undefined && !sealed) {
    v.add('revocations', 'only sealed cookies (cookie:) need a revocation store');
  } else if (revocationStore?.startsWith('cookie:')) {
    v.add('revocations.store', 'must be a server-side store URL (redis://, sqlite:, ...)');
  }
  const revocations =
    revocationStore === undefined
      ? undefined
      : Object.freeze({
          store: revocationStore,
          cacheMs: nonNegative('revocations.cacheMs', options.revocations?.cacheMs ?? 1000, 1000, v),
        });
  const resolved = Object.freeze({
    secrets,
    store,
    storeInstance,
    name,
    cookie: Object.freeze({
      path: c.path ?? '/',
      domain: c.domain,
      sameSite,
      secure: c.secure ?? 'auto',
      httpOnly: bool('cookie.httpOnly', c.httpOnly, true, v),
      partitioned: bool('cookie.partitioned', c.partitioned, false, v),
      priority: resolvePriority(c.priority, v),
      maxAge,
      lifetime: c.lifetime ?? 'absolute',
    }),
    rolling,
    saveUninitialized: bool('saveUninitialized', options.saveUninitialized, false, v),
    genid: options.genid,
    unset: options.unset ?? 'keep',
    regenerateKeepsData: bool('regenerateKeepsData', options.regenerateKeepsData, true, v),
    idleTimeout,
    absoluteTimeout,
    touchAfter,
    trusted: trustList(trustProxy, v),
    onStoreError,
    storeTimeout: positive('storeTimeout', options.storeTimeout ?? 2000, 2000, v),
    maxUpdateAttempts: positive('maxUpdateAttempts', options.maxUpdateAttempts ?? 1000, 1000, v),
    prefix: options.prefix ?? 'clones',
    eager: options.eager ?? false,
    migrateFrom,
    revocations,
  });
  v.throwIfAny();
  return resolved;
}

// Every option name, in the order "unknown option" lists them.
const KNOWN = new Set(
  [
    'secret store name cookie idleTimeout absoluteTimeout touchAfter trustProxy onStoreError storeTimeout',
    'maxUpdateAttempts prefix eager migrateFrom revocations rolling resave saveUninitialized genid unset proxy',
    'regenerateKeepsData',
  ]
    .join(' ')
    .split(' '),
);
const KNOWN_COOKIE = new Set(
  'path domain sameSite secure httpOnly partitioned priority maxAge lifetime'.split(' '),
);

/** No option is ever silently ignored: unknown names, and express-session's that clones cannot honour, are refused. */
function checkKnown(options: SessionOptions, v: OptionIssues): void {
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) v.add(name, `unknown option; known: ${[...KNOWN].join(', ')}`);
  }
  const cookie = (options.cookie ?? {}) as Record<string, unknown>;
  if (cookie.expires !== undefined && cookie.expires !== null) {
    v.add(
      'cookie.expires',
      'one fixed date for every session is refused (express-session advises against it too); use cookie.maxAge (ms)',
    );
  }
  if (cookie.encode !== undefined) v.add('cookie.encode', 'session ids are already cookie-safe; remove it');
  for (const name of Object.keys(cookie)) {
    if (!KNOWN_COOKIE.has(name) && name !== 'expires' && name !== 'encode') {
      v.add(`cookie.${name}`, `unknown cookie option; known: ${[...KNOWN_COOKIE].join(', ')}`);
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
function resolveSameSite(
  value: SameSiteOption | undefined,
  v: OptionIssues,
): ResolvedOptions['cookie']['sameSite'] {
  if (value === undefined || value === null) return 'Lax';
  if (value === true) return 'Strict';
  if (value === false) return undefined;
  const found = typeof value === 'string' ? SAME_SITE[value.toLowerCase()] : undefined;
  if (!found) v.add('cookie.sameSite', "'lax', 'strict', 'none' (any case), 'auto', true or false");
  return found ?? 'Lax';
}

function resolvePriority(value: string | undefined, v: OptionIssues): CookieAttributes['priority'] {
  if (value === undefined) return undefined;
  const found = { low: 'Low', medium: 'Medium', high: 'High' }[String(value).toLowerCase()];
  if (!found) v.add('cookie.priority', "'low', 'medium' or 'high'");
  return found as CookieAttributes['priority'];
}

function bool(option: string, value: unknown, fallback: boolean, v: OptionIssues): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  v.add(option, 'must be true or false');
  return fallback;
}

/** The secrets, or CLONES_SESSION_SECRET_WEAK: its own code, so options found wrong before it are thrown first. */
function resolveSecrets(secret: string | readonly string[] | undefined, v: OptionIssues): readonly string[] {
  const list = typeof secret === 'string' ? [secret] : secret;
  const weak = (message: string) => {
    v.throwIfAny();
    return weakSecret(message);
  };
  if (!list || list.length === 0) {
    throw weak('no session secret: pass { secret } or set SESSION_SECRET (at least 32 bytes, random)');
  }
  list.forEach((s, i) => {
    if (typeof s !== 'string' || Buffer.byteLength(s) < 32) {
      throw weak(`secret[${i}] is shorter than 32 bytes; use e.g. \`openssl rand -base64 32\``);
    }
  });
  return Object.freeze([...list]);
}

/** `value` when a positive number; else the problem is recorded and `fallback` stands in, so later checks that use it do not fail as well. */
function positive<T extends number | undefined>(
  option: string,
  value: number,
  fallback: T,
  v: OptionIssues,
): number | T {
  if (Number.isFinite(value) && value > 0) return value;
  v.add(option, 'must be a positive number');
  return fallback;
}

function nonNegative(option: string, value: number, fallback: number, v: OptionIssues): number {
  if (Number.isFinite(value) && value >= 0) return value;
  v.add(option, 'must be a number >= 0');
  return fallback;
}

function trustList(entries: readonly string[], v: OptionIssues): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const family = isIP(address);
    if (family === 0) {
      v.add('trustProxy', `"${entry}" is not an address or CIDR`);
      continue;
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    const prefix = Number(bits);
    if (bits === undefined) list.addAddress(address, type);
    else if (Number.isInteger(prefix) && prefix >= 0 && prefix <= (family === 6 ? 128 : 32))
      list.addSubnet(address, prefix, type);
    else v.add('trustProxy', `"${entry}" has a bad prefix length`);
  }
  return list;
}
