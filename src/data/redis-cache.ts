import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { requireDriver } from '../require-driver.ts';
import type { Cache, LeaseAnswer } from './cache.ts';

// Three keys per cache key K: the entry (hash: d = data, n = WAL position it holds), the lease (token), and the
// write mark (WAL position of K's last write). They share the hash tag {K}: the scripts stay valid on a cluster.

// KEYS: entry, lease, mark. ARGV: token, leaseMs.
const LOOKUP = `
local e = redis.call('HMGET', KEYS[1], 'd', 'n')
if e[1] then return {1, e[1], e[2] or '0'} end
local w = redis.call('GET', KEYS[3]) or '0'
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, w} end
return {3, w}`;

// KEYS: entry, lease, mark. ARGV: token, data, lsn, ttlMs.
const FILL = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if tonumber(ARGV[3]) < tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'n', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

// KEYS: entry, lease, mark. ARGV: lsn, markTtlMs, data ('' = delete), ttlMs, hasData ('1' | '0'), before.
// Positions read after COMMIT do not order two overlapping writes (the first to commit may read its position
// last). `before`, read inside the transaction after its statements, is past the commit of every write it
// waited for: only a write whose `before` is past the mark (every write already marked committed before it
// wrote) may set its value; an overlapping one deletes the entry instead.
const WRITTEN = `
local lsn = tonumber(ARGV[1])
local w = tonumber(redis.call('GET', KEYS[3]) or '0')
if lsn >= w then redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[2])
if ARGV[5] == '0' or tonumber(ARGV[6]) <= w then redis.call('DEL', KEYS[1]) return 0 end
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '-1')
if lsn < n then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'n', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

interface Commands {
  clonesDataLookup(e: string, l: string, w: string, token: string, leaseMs: number): Promise<unknown[]>;
  clonesDataFill(e: string, l: string, w: string, ...args: (string | number)[]): Promise<number>;
  clonesDataWritten(e: string, l: string, w: string, ...args: (string | number)[]): Promise<number>;
}

/**
 * The cache in Redis or Valkey. Each operation is one Lua script, so "entry or lease", "fill unless a write
 * came first" and "mark the write, drop the lease, set or delete" are atomic across every clone: the Facebook
 * memcache lease, on Redis. One round trip per cache hit.
 *
 * @example
 *   const cache = new RedisCache({ url: 'redis://127.0.0.1:6379', prefix: 'clones:data:', timeout: 2000, markTtl, logger });
 */
export class RedisCache implements Cache {
  readonly #redis: Redis & Commands;
  readonly #prefix: string;
  readonly #markTtl: number;

  constructor(options: { url: string; prefix: string; timeout: number; markTtl: number; logger: Logger }) {
    this.#prefix = options.prefix;
    this.#markTtl = options.markTtl;
    // Loaded on first use, like the PostgreSQL client: a clone without a cache never loads it.
    const { Redis: RedisClient } = requireDriver<typeof import('ioredis')>('ioredis', 'a redis:// cache');
    this.#redis = new RedisClient(options.url, {
      connectTimeout: options.timeout,
      // Every call is also bounded by the data layer's timeout; a queued call fails after one reconnect attempt.
      maxRetriesPerRequest: 1,
      // No auto-pipelining: ioredis keeps one auto-pipeline in flight per connection and queues every other
      // command until its replies are back, so a hit could wait a whole round trip before being sent. Commands
      // written at once are pipelined by the connection anyway. Measured with bench:data: p99 down ~15-25%.
      enableAutoPipelining: false,
      socketTimeout: Math.max(options.timeout, 1000),
      retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    }) as Redis & Commands;
    this.#redis.defineCommand('clonesDataLookup', { lua: LOOKUP, numberOfKeys: 3 });
    this.#redis.defineCommand('clonesDataFill', { lua: FILL, numberOfKeys: 3 });
    this.#redis.defineCommand('clonesDataWritten', { lua: WRITTEN, numberOfKeys: 3 });
    let down = false;
    this.#redis.on('error', (err: Error) => {
      if (!down)
        options.logger.warn({ err: err.message }, 'data cache unavailable; reads go to the database');
      down = true;
    });
    this.#redis.on('ready', () => {
      if (down) options.logger.info('data cache reconnected');
      down = false;
    });
  }

  async lookup(key: string, token: string, leaseMs: number): Promise<LeaseAnswer> {
    const r = await this.#redis.clonesDataLookup(...this.#keys(key), token, leaseMs);
    if (r[0] === 1) return { kind: 'hit', data: String(r[1]), lsn: Number(r[2]) };
    return { kind: r[0] === 2 ? 'lease' : 'busy', writeLsn: Number(r[1]) };
  }

  async fill(key: string, token: string, data: string, lsn: number, ttlMs: number): Promise<boolean> {
    return (await this.#redis.clonesDataFill(...this.#keys(key), token, data, lsn, Math.ceil(ttlMs))) === 1;
  }

  async written(
    key: string,
    lsn: number,
    data: string | undefined,
    ttlMs: number,
    before: number,
  ): Promise<void> {
    const [e, l, w] = this.#keys(key);
    await this.#redis.clonesDataWritten(
      e,
      l,
      w,
      lsn,
      this.#markTtl,
      data ?? '',
      Math.ceil(ttlMs),
      data ? '1' : '0',
      before,
    );
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  #keys(key: string): [string, string, string] {
    const tag = `{${key}}`;
    return [`${this.#prefix}e:${tag}`, `${this.#prefix}l:${tag}`, `${this.#prefix}w:${tag}`];
  }
}
