import { badStoreUrl, storeUnavailable } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { backoff } from '../backoff.ts';
import { applyPatch, CONFLICT, GONE } from './apply-patch.ts';
import { MemcachedClient, type MemcachedValue } from './memcached-client.ts';
import type {
  PatchOptions,
  SessionData,
  SessionPatch,
  StoreBackend,
  StoredSession,
  StoreOpenOptions,
  WriteResult,
} from './store.ts';

// Layout (docs/session-format.md): a session is the item `<prefix>:s:<key>`, JSON {"v","c","e","d"}; a
// destroyed one is the same item holding {"t": tombstoneUntil}, so a destroy replaces the session in one `set`
// and every compare-and-set in flight against the session fails. `<prefix>:e:<key>` ("v c e") is the expiry
// a touch wrote for version v: a touch is a native TOUCH of the session item plus this small record, never a
// rewrite of the data. Both items are placed by hashing <key> alone, so they always live on one server.
// Memcached's own expiry is in whole seconds: items are kept a little longer and `e` is checked on read.

const DEFAULT_PORT = 11211;
const DEFAULT_POOL = 4;
/** Compare-and-set rounds of one patch before the store gives up (only reached under pathological load). */
const MAX_CAS_ATTEMPTS = 1000;

const log = logger.child({ part: 'session', store: 'memcached' });

interface Live {
  v: number;
  c: number;
  e: number;
  d: SessionData;
}
type Item = { kind: 'live'; session: Live; cas?: string } | { kind: 'dead'; until: number; cas?: string };

/**
 * Sessions in memcached (`memcached://host:port[,host:port...][?pool=4]`), spread over the servers by
 * consistent hashing. Patches and `ifVersion` are compare-and-set loops (`gets` then `cas`); `touch` is
 * memcached's native TOUCH. Memcached keeps nothing across a restart and may evict under memory pressure: a
 * session on a server that restarts is gone (its user starts a new one). Connects on first use; a server
 * that is down fails its calls fast and is reconnected on the next call.
 *
 * @example
 *   const store = new MemcachedStore({ url: 'memcached://10.0.0.1:11211,10.0.0.2:11211', connectTimeout: 2000,
 *     prefix: 'clones' });
 */
export class MemcachedStore implements StoreBackend {
  readonly kind = 'memcached';
  /** The servers, as `host:port`, in URL order. */
  readonly servers: readonly string[];
  readonly #mc: MemcachedClient;
  readonly #prefix: string;

  constructor(options: StoreOpenOptions) {
    const { servers, poolSize } = memcachedServers(options.url);
    this.servers = servers;
    // Memcached keys may hold no spaces or control characters.
    this.#prefix = options.prefix.replace(/[^\x21-\x7e]/g, '_');
    this.#mc = new MemcachedClient({
      servers,
      poolSize,
      connectTimeoutMs: options.connectTimeout,
      replyTimeoutMs: Math.max(options.connectTimeout, 1000),
    });
  }

  /** The server that holds the session stored under `key` (for tests and operations). */
  serverFor(key: string): string {
    return this.#mc.serverFor(key);
  }

  async get(key: string): Promise<StoredSession | null> {
    const items = await this.#mc.get(key, [this.#s(key), this.#e(key)]);
    const item = decode(items.get(this.#s(key)));
    if (item?.kind !== 'live') return null;
    const expiresAt = effectiveExpiry(item.session, items.get(this.#e(key)));
    if (expiresAt <= Date.now()) return null;
    const { v, c, d } = item.session;
    return { data: d, version: v, createdAt: c, expiresAt };
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    const live: Live = { v: session.version, c: session.createdAt, e: session.expiresAt, d: session.data };
    const value = Buffer.from(JSON.stringify(live));
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const exptime = this.#mc.expiry(session.expiresAt);
      const added = await this.#mc.store('add', key, this.#s(key), value, exptime);
      if (added === 'STORED') return { ok: true, version: session.version };
      // The key is taken: by a live session, a tombstone, or something past its ms expiry that memcached's
      // whole seconds still keep. Only the last may be replaced, and only if nothing changed it meanwhile.
      const items = await this.#mc.get(key, [this.#s(key), this.#e(key)], true);
      const item = decode(items.get(this.#s(key)));
      if (!item) continue; // expired or evicted in between: add again
      const now = Date.now();
      if (item.kind === 'dead' && item.until > now) return GONE;
      if (item.kind === 'live' && effectiveExpiry(item.session, items.get(this.#e(key))) > now)
        return CONFLICT;
      const replaced = await this.#mc.store('cas', key, this.#s(key), value, exptime, item.cas);
      if (replaced === 'STORED') return { ok: true, version: session.version };
      if (attempt >= 3) await backoff(attempt, 20);
    }
    throw storeUnavailable(this.kind, new Error(`create kept racing after ${MAX_CAS_ATTEMPTS} attempts`));
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    // Through JSON once, as the whole object would be: undefined values disappear, dates become strings.
    const set = JSON.parse(JSON.stringify(patch.set)) as SessionData;
    const dropped = Object.keys(patch.set).filter((k) => !Object.hasOwn(set, k));
    const del = dropped.length === 0 ? patch.del : [...patch.del, ...dropped];
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const items = await this.#mc.get(key, [this.#s(key), this.#e(key)], true);
      const item = decode(items.get(this.#s(key)));
      if (item?.kind !== 'live') return GONE;
      const current = item.session;
      const expiresAt = effectiveExpiry(current, items.get(this.#e(key)));
      if (expiresAt <= Date.now()) return GONE;
      if (options.ifVersion !== undefined && options.ifVersion !== current.v) {
        const now: StoredSession = { data: current.d, version: current.v, createdAt: current.c, expiresAt };
        return { ok: false, reason: 'conflict', current: now };
      }
      const next: Live = {
        v: current.v + 1,
        c: current.c,
        e: options.expiresAt ?? expiresAt,
        d: applyPatch(current.d, { set, del }),
      };
      const value = Buffer.from(JSON.stringify(next));
      const stored = await this.#mc.store('cas', key, this.#s(key), value, this.#mc.expiry(next.e), item.cas);
      if (stored === 'STORED') return { ok: true, version: next.v };
      if (stored === 'NOT_FOUND') return GONE;
      if (attempt >= 3) await backoff(attempt, 20);
    }
    throw storeUnavailable(this.kind, new Error(`patch kept racing after ${MAX_CAS_ATTEMPTS} attempts`));
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    const items = await this.#mc.get(key, [this.#s(key), this.#e(key)]);
    const item = decode(items.get(this.#s(key)));
    if (item?.kind !== 'live') return false;
    const { v, c } = item.session;
    if (effectiveExpiry(item.session, items.get(this.#e(key))) <= Date.now()) return false;
    const exptime = this.#mc.expiry(expiresAt);
    // The record first: if the TOUCH then finds the item gone, the record names a version nobody reads. A patch
    // that lands in between bumps the version, which makes the record moot (the patch was activity itself).
    await this.#mc.store('set', key, this.#e(key), Buffer.from(`${v} ${c} ${expiresAt}`), exptime);
    return (await this.#mc.touch(key, this.#s(key), exptime)) === 'TOUCHED';
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    if (tombstoneUntil <= Date.now()) {
      await this.#mc.delete(key, this.#s(key));
      return;
    }
    const tombstone = Buffer.from(JSON.stringify({ t: tombstoneUntil }));
    const stored = await this.#mc.store('set', key, this.#s(key), tombstone, this.#mc.expiry(tombstoneUntil));
    if (stored !== 'STORED') throw new Error(`memcached refused the tombstone: ${stored}`);
  }

  async close(): Promise<void> {
    this.#mc.close();
  }

  #s(key: string): string {
    return `${this.#prefix}:s:${key}`;
  }

  #e(key: string): string {
    return `${this.#prefix}:e:${key}`;
  }
}

function decode(raw: MemcachedValue | undefined): Item | undefined {
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.value.toString('utf8'));
  } catch {
    log.warn('an unreadable session item was ignored');
    return undefined;
  }
  const p = parsed as Partial<Live> & { t?: number };
  if (typeof p.t === 'number') return { kind: 'dead', until: p.t, cas: raw.cas };
  if (typeof p.v !== 'number' || typeof p.c !== 'number' || typeof p.e !== 'number' || !p.d) return undefined;
  return { kind: 'live', session: p as Live, cas: raw.cas };
}

/** The session's expiry: the touch record's when it was written for this very version, else the item's. */
function effectiveExpiry(session: Live, record: MemcachedValue | undefined): number {
  if (!record) return session.e;
  const [v, c, e] = record.value.toString('latin1').split(' ').map(Number);
  return v === session.v && c === session.c && Number.isFinite(e) ? (e as number) : session.e;
}

/**
 * The servers of a `memcached://h1:11211,h2:11211[?pool=N]` URL, as `host:port` strings, validated once.
 *
 * @example
 *   memcachedServers('memcached://a:11211,b'); // { servers: ['a:11211', 'b:11211'], poolSize: 4 }
 */
export function memcachedServers(url: string): { servers: string[]; poolSize: number } {
  const match = /^memcached:\/\/([^/?#]*)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw badStoreUrl(url, 'expected memcached://host:port[,host:port...]');
  const servers: string[] = [];
  for (const part of (match[1] as string).split(',')) {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(part.trim());
    if (!m) throw badStoreUrl(url, `"${part}" is not host[:port]`);
    const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
    if (port < 1 || port > 65535) throw badStoreUrl(url, `port ${m[2]} is out of range`);
    const server = `${m[1]}:${port}`;
    if (servers.includes(server)) throw badStoreUrl(url, `${server} is listed twice`);
    servers.push(server);
  }
  let poolSize = DEFAULT_POOL;
  for (const [name, value] of new URLSearchParams(match[2] ?? '')) {
    if (name !== 'pool') throw badStoreUrl(url, `unknown parameter "${name}"; known: pool`);
    poolSize = Number(value);
    if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 64) {
      throw badStoreUrl(url, 'pool must be a whole number from 1 to 64');
    }
  }
  return { servers, poolSize };
}
