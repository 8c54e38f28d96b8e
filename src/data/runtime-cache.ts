import { dataUnavailable } from '../errors.ts';
import type { Cache, LeaseAnswer } from './cache.ts';
import { countFailures, withTimeout } from './with-timeout.ts';

/** Calls per operation of the cache, and how many failed or ran out of time. */
export interface CacheCounts {
  lookup: number;
  fill: number;
  written: number;
  errors: number;
  timeouts: number;
}

/**
 * The wrapper the shared cache runs inside, the twin of RuntimeDriver: every call bounded by `timeout`
 * (CLONES_DATA_TIMEOUT, named `cache`) and counted, calls refused once closed, closed once. A cache backend
 * keeps only its atomic operations.
 *
 * @example
 *   const cache = new RuntimeCache(new RedisCache({ url, prefix, timeout, markTtl, logger }), { timeout });
 *   const answer = await cache.lookup('product:1', token, 4000);
 */
export class RuntimeCache implements Cache {
  readonly counts: CacheCounts = { lookup: 0, fill: 0, written: 0, errors: 0, timeouts: 0 };
  readonly #backend: Cache;
  readonly #timeout: number;
  #closing: Promise<void> | undefined;

  constructor(backend: Cache, options: { timeout: number }) {
    this.#backend = backend;
    this.#timeout = options.timeout;
  }

  lookup(key: string, token: string, leaseMs: number): Promise<LeaseAnswer> {
    this.counts.lookup++;
    return this.#run(() => this.#backend.lookup(key, token, leaseMs));
  }

  fill(key: string, token: string, data: string, lsn: number, ttlMs: number): Promise<boolean> {
    this.counts.fill++;
    return this.#run(() => this.#backend.fill(key, token, data, lsn, ttlMs));
  }

  written(key: string, lsn: number, data: string | undefined, ttlMs: number, before: number): Promise<void> {
    this.counts.written++;
    return this.#run(() => this.#backend.written(key, lsn, data, ttlMs, before));
  }

  close(): Promise<void> {
    this.#closing ??= this.#backend.close();
    return this.#closing;
  }

  async #run<R>(call: () => Promise<R>): Promise<R> {
    if (this.#closing) throw dataUnavailable(new Error('the cache was closed'));
    return countFailures(this.counts, withTimeout(call(), this.#timeout, 'cache'));
  }
}
