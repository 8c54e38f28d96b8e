import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cache } from './cache.ts';
import type { DataMetrics } from './data-metrics.ts';

/** Reads the value from the database at position `minLsn` or later. */
export type Load<T> = (minLsn: number) => Promise<T>;

interface Round {
  /** Calls that began before this round may take its value: it was read after they started. */
  seq: number;
  /** Local writes seen when the round began (no-cache mode: a local write makes older rounds unusable). */
  gen: number;
  minLsn: number;
  result: Promise<{ value: unknown } | undefined>;
}

/** How often entries left stale by a failed cache update are deleted again, and how many are tracked. */
const RETRY_MS = 200;
const MAX_UNSYNCED = 10_000;

export interface CacheAsideOptions {
  leaseTtl: number;
  leasePoll: number;
  ttlJitter: number;
  timeout: number;
}

/**
 * `cached(key, ttl, loader)`: cache-aside with a lease. A miss takes the key's lease in the shared cache (one
 * atomic step with the lookup), so across every clone one caller reads the database and the others wait for
 * its fill; inside a clone, callers of the same key share one "round" (lookup, then fill or wait) instead of
 * each asking the cache. A fill reads at or after the key's last write position and is refused if a write
 * reached the key meanwhile, so a slow fill never overwrites a newer invalidation.
 *
 * @example
 *   const aside = new CacheAside(redisCache, options, metrics);
 *   const product = await aside.get('product:1', 60_000, 0, (lsn) => readProduct(1, lsn));
 */
export class CacheAside {
  readonly #cache: Cache | undefined;
  readonly #options: CacheAsideOptions;
  readonly #metrics: DataMetrics;
  readonly #rounds = new Map<string, Round>();
  #seq = 0;
  #gen = 0;
  /** Lease tokens: this clone's random prefix and a counter, unique across clones without a syscall per miss. */
  readonly #tokenPrefix = randomBytes(9).toString('base64url');
  #tokens = 0;
  /** Keys whose cached entry may predate a committed write: see #remember. */
  readonly #unsynced = new Map<string, { lsn: number; before: number }>();
  #retry: NodeJS.Timeout | undefined;
  #resyncing = false;

  constructor(cache: Cache | undefined, options: CacheAsideOptions, metrics: DataMetrics) {
    this.#cache = cache;
    this.#options = options;
    this.#metrics = metrics;
  }

  async get<T>(key: string, ttlMs: number, minLsn: number, load: Load<T>): Promise<T> {
    const start = ++this.#seq;
    const startGen = this.#gen;
    let waited = false;
    let busy = 0;
    for (;;) {
      const round = this.#rounds.get(key);
      if (round) {
        if (!waited) this.#metrics.cacheWaits++;
        waited = true;
        const usable = this.#cache
          ? round.seq > start
          : round.gen === startGen && round.gen === this.#gen && round.minLsn >= minLsn;
        const outcome = await round.result.catch((err) => {
          if (usable) throw err;
          return undefined;
        });
        if (usable && outcome) return outcome.value as T;
        continue;
      }
      const created: Round = { seq: ++this.#seq, gen: this.#gen, minLsn, result: Promise.resolve(undefined) };
      created.result = this.#round(key, ttlMs, minLsn, load, busy);
      this.#rounds.set(key, created);
      const done = () => {
        if (this.#rounds.get(key) === created) this.#rounds.delete(key);
      };
      created.result.then(done, done);
      const outcome = await created.result;
      if (outcome) return outcome.value as T;
      busy++;
    }
  }

  /**
   * After a write to `key` committed at `lsn` (`before`: its position before COMMIT): update (or, with `data`
   * undefined, delete) the entry. Local rounds that began before it can no longer be shared.
   */
  async written(
    key: string,
    lsn: number,
    data: string | undefined,
    ttlMs: number,
    before: number,
  ): Promise<void> {
    this.#gen++;
    if (!this.#cache) return;
    this.#unsynced.delete(key);
    try {
      await this.#cache.written(key, lsn, data, this.#jitter(ttlMs), before);
    } catch (err) {
      this.#remember(key, lsn, before);
      throw err;
    }
  }

  /** Stops retrying the entries left unsynced by failed updates. */
  close(): void {
    clearInterval(this.#retry);
    this.#retry = undefined;
  }

  /**
   * The cache could not be told of a committed write (down, or too slow), so its entry for `key` may hold an
   * older value, and would until its TTL. Until a delete gets through: this clone reads `key` from the
   * database at the write's position, and retries the delete every RETRY_MS, so other clones see the old
   * value at most until the cache is reachable again (plus one retry interval), not for a whole TTL.
   */
  #remember(key: string, lsn: number, before: number): void {
    this.#unsynced.delete(key);
    this.#unsynced.set(key, { lsn, before });
    if (this.#unsynced.size > MAX_UNSYNCED) {
      const [oldest] = this.#unsynced.keys();
      this.#unsynced.delete(oldest!);
      this.#metrics.cacheUnsyncedDropped++;
    }
    this.#retry ??= setInterval(() => void this.#resync(), RETRY_MS);
    this.#retry.unref();
  }

  async #resync(): Promise<void> {
    if (this.#resyncing || !this.#cache) return;
    this.#resyncing = true;
    try {
      for (const [key, { lsn, before }] of [...this.#unsynced]) {
        try {
          await this.#cache.written(key, lsn, undefined, 1, before);
        } catch {
          return; // still unreachable: the next tick tries again
        }
        if (this.#unsynced.get(key)?.lsn === lsn) this.#unsynced.delete(key);
      }
      if (this.#unsynced.size === 0) this.close();
    } finally {
      this.#resyncing = false;
    }
  }

  /**
   * One lookup, then the fill (lease held), or a short wait (another caller fills). Undefined: look again.
   * `busy`: how many lookups of this caller found the lease taken; the wait doubles with each.
   */
  async #round<T>(
    key: string,
    ttlMs: number,
    minLsn: number,
    load: Load<T>,
    busy: number,
  ): Promise<{ value: T } | undefined> {
    const cache = this.#cache;
    if (!cache) {
      this.#metrics.cacheMisses++;
      return { value: await load(minLsn) };
    }
    const unsynced = this.#unsynced.get(key);
    if (unsynced) {
      // The cache may hold a value older than a write this clone committed: the database answers, nobody fills.
      this.#metrics.cacheMisses++;
      return { value: await load(Math.max(minLsn, unsynced.lsn)) };
    }
    const token = `${this.#tokenPrefix}.${++this.#tokens}`;
    const { leaseTtl, leasePoll } = this.#options;
    let answer: Awaited<ReturnType<Cache['lookup']>>;
    try {
      answer = await cache.lookup(key, token, leaseTtl);
    } catch {
      // The cache is down: the database answers, nobody fills. A miss storm is bounded by the local rounds.
      this.#metrics.cacheErrors++;
      return { value: await load(minLsn) };
    }
    if (answer.kind === 'hit') {
      this.#metrics.cacheHits++;
      return { value: JSON.parse(answer.data) as T };
    }
    if (answer.kind === 'busy') {
      this.#metrics.cacheWaits++;
      // A fill takes a replica read and two cache round trips, often a millisecond or two: look again soon,
      // then back off to `leasePoll` so a slow fill is not polled hard. A fixed 10 ms wait was the tail.
      await sleep(Math.min(leasePoll, 2 ** busy) * (0.5 + Math.random()));
      return undefined;
    }
    this.#metrics.cacheMisses++;
    this.#metrics.cacheFills++;
    const readAt = Math.max(minLsn, answer.writeLsn);
    const value = await load(readAt);
    const data = JSON.stringify(value);
    if (data === undefined)
      throw new TypeError(`cached("${key}"): the loader returned a value that is not JSON`);
    try {
      const stored = await cache.fill(key, token, data, readAt, this.#jitter(ttlMs));
      if (!stored) this.#metrics.cacheStaleFills++;
    } catch {
      this.#metrics.cacheErrors++;
    }
    // Returned even when the fill was refused: the write that refused it overlapped this call.
    return { value: JSON.parse(data) as T };
  }

  #jitter(ttlMs: number): number {
    return Math.max(1, ttlMs * (1 - this.#options.ttlJitter * Math.random()));
  }
}
