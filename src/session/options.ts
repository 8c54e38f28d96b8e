import { BlockList, isIP } from 'node:net';
import { invalidOption, memoryInProduction, weakSecret } from '../errors.ts';
import type { CookieAttributes } from './cookie.ts';
import type { LegacySessions } from './legacy-sessions.ts';

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
  /** Store URL. Default: SESSION_STORE, else `sqlite:.clones/sessions.db`. */
  store?: string;
  /** Cookie name. Default `clones.sid` (`clones.session` for the sealed cookie). */
  name?: string;
  cookie?: {
    path?: string;
    domain?: string;
    sameSite?: 'Lax' | 'Strict' | 'None';
    /** 'auto' (default): Secure when the request came over TLS, directly or through a trusted proxy. */
    secure?: boolean | 'auto';
    partitioned?: boolean;
    /** 'absolute' (default): the cookie lives as long as the absolute timeout; 'browser': a session cookie. */
    lifetime?: 'absolute' | 'browser';
  };
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

export interface ResolvedOptions {
  readonly secrets: readonly string[];
  readonly store: string;
  readonly name: string;
  readonly cookie: Readonly<Required<Omit<CookieAttributes, 'maxAge' | 'domain' | 'priority' | 'secure'>>> & {
    readonly domain: string | undefined;
    readonly secure: boolean | 'auto';
    readonly lifetime: 'absolute' | 'browser';
  };
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

/** Validates options once, fills defaults, and freezes the result; every message names the option. */
export function resolveOptions(options: SessionOptions = {}, env = process.env): ResolvedOptions {
  const secrets = resolveSecrets(options.secret ?? env.SESSION_SECRET?.split(/\s+/).filter(Boolean));
  const store = options.store ?? env.SESSION_STORE ?? DEFAULT_STORE;
  if (store.startsWith('memory:') && env.NODE_ENV === 'production') throw memoryInProduction();
  const sealed = store.startsWith('cookie:');
  const idleTimeout = positive('idleTimeout', options.idleTimeout ?? 24 * HOUR);
  const absoluteTimeout = positive('absoluteTimeout', options.absoluteTimeout ?? 7 * 24 * HOUR);
  if (absoluteTimeout < idleTimeout)
    throw invalidOption('absoluteTimeout', 'must not be shorter than idleTimeout');
  const touchAfter = options.touchAfter ?? 0.1;
  if (!(touchAfter >= 0 && touchAfter < 1)) throw invalidOption('touchAfter', 'must be a fraction in [0, 1)');
  const name = options.name ?? (sealed ? 'clones.session' : 'clones.sid');
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
    throw invalidOption('name', `"${name}" is not a cookie name`);
  const c = options.cookie ?? {};
  const sameSite = c.sameSite ?? 'Lax';
  if (!['Lax', 'Strict', 'None'].includes(sameSite))
    throw invalidOption('cookie.sameSite', 'Lax, Strict or None');
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
    name,
    cookie: Object.freeze({
      path: c.path ?? '/',
      domain: c.domain,
      sameSite,
      secure: c.secure ?? 'auto',
      httpOnly: true,
      partitioned: c.partitioned ?? false,
      lifetime: c.lifetime ?? 'absolute',
    }),
    idleTimeout,
    absoluteTimeout,
    touchAfter,
    trusted: trustList(options.trustProxy ?? ['127.0.0.0/8', '::1/128']),
    onStoreError,
    storeTimeout: positive('storeTimeout', options.storeTimeout ?? 2000),
    maxUpdateAttempts: positive('maxUpdateAttempts', options.maxUpdateAttempts ?? 1000),
    prefix: options.prefix ?? 'clones',
    eager: options.eager ?? false,
    migrateFrom,
    revocations,
  });
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
