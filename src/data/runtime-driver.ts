import { ClonesError, dataUnavailable, primaryUnavailable } from '../errors.ts';
import type { Driver, QueryResult, Transaction } from './driver.ts';
import { countFailures, withTimeout } from './with-timeout.ts';

/** A database backend: a `Driver`'s operations, and optionally an `init` run once before the first call. */
export interface DriverBackend extends Driver {
  /** Opens what the backend needs (a file, a connection check); a failure is tried again on the next call. */
  init?(): Promise<void>;
}

/** Calls per operation of one driver, and how many failed or ran out of time. */
export interface DriverCounts {
  read: number;
  write: number;
  transaction: number;
  position: number;
  errors: number;
  timeouts: number;
}

/**
 * The one wrapper every database server runs inside, as clones/session's RuntimeStore is for session stores
 * (and kysely's RuntimeDriver): it runs the backend's `init` once (one in flight; tried again on the next
 * call when it failed), refuses calls once closed, closes once, bounds `read`, `write` and `position` by
 * `timeout` (CLONES_DATA_TIMEOUT) and counts every call. A transaction is not bounded as a whole: its body is
 * the app's code, and each of its statements is bounded by the driver's own statement timeout.
 *
 * @example
 *   const primary = new RuntimeDriver(new SqliteDriver({ path: 'data.db', timeout: 2000 }), { timeout: 2000 });
 *   await primary.read('SELECT 1'); // opens the file first
 */
export class RuntimeDriver implements Driver {
  readonly counts: DriverCounts = { read: 0, write: 0, transaction: 0, position: 0, errors: 0, timeouts: 0 };
  readonly #backend: DriverBackend;
  readonly #timeout: number;
  #initialized: boolean;
  #initializing: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(backend: DriverBackend, options: { timeout: number }) {
    this.#backend = backend;
    this.#timeout = options.timeout;
    this.#initialized = backend.init === undefined;
  }

  get name(): string {
    return this.#backend.name;
  }

  read<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    this.counts.read++;
    return this.#run(false, true, () => this.#backend.read<T>(sql, params));
  }

  write<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<{ value: QueryResult<T>; lsn: number }> {
    this.counts.write++;
    return this.#run(true, true, () => this.#backend.write<T>(sql, params));
  }

  transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<{ value: R; lsn: number; before: number }> {
    this.counts.transaction++;
    return this.#run(true, false, () => this.#backend.transaction(fn));
  }

  position(): Promise<number> {
    this.counts.position++;
    return this.#run(false, true, () => this.#backend.position());
  }

  /** Closes the backend once (after an init in flight); later calls are refused with a coded error. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await this.#initializing?.catch(() => {});
      if (this.#initialized) await this.#backend.close();
    })();
    return this.#closing;
  }

  async #run<R>(writes: boolean, bounded: boolean, call: () => Promise<R>): Promise<R> {
    if (this.#closed) {
      const closed = new Error(`${this.name} was closed`);
      throw writes ? primaryUnavailable(closed) : dataUnavailable(closed);
    }
    const attempt = async () => {
      if (!this.#initialized) {
        await this.#init().catch((err) => {
          // A file that cannot be opened, say: coded, and tried again by the next call.
          throw err instanceof ClonesError ? err : writes ? primaryUnavailable(err) : dataUnavailable(err);
        });
      }
      return bounded ? withTimeout(call(), this.#timeout, this.name) : call();
    };
    return countFailures(this.counts, attempt());
  }

  #init(): Promise<void> {
    this.#initializing ??= this.#backend.init!().then(
      () => {
        this.#initialized = true;
        this.#initializing = undefined;
      },
      (err) => {
        this.#initializing = undefined;
        throw err;
      },
    );
    return this.#initializing;
  }
}
