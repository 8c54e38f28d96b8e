import { performance } from 'node:perf_hooks';
import { ClonesError, sessionByUserUnsupported, storeTimeout, storeUnavailable } from '../../errors.ts';
import { Histogram } from '../../histogram.ts';
import type {
  PatchOptions,
  SessionPatch,
  SessionStore,
  StoreBackend,
  StoredSession,
  UserSession,
  WriteResult,
} from './store.ts';

/** Store calls per operation, and failures: the session's store metrics. */
export interface StoreCounts {
  get: number;
  create: number;
  patch: number;
  touch: number;
  destroy: number;
  bindUser: number;
  listByUser: number;
  destroyByUser: number;
  errors: number;
  timeouts: number;
}

/** Counts of a store that has made no call yet. */
export const noCounts = (): StoreCounts => ({
  get: 0,
  create: 0,
  patch: 0,
  touch: 0,
  destroy: 0,
  bindUser: 0,
  listByUser: 0,
  destroyByUser: 0,
  errors: 0,
  timeouts: 0,
});

/** A store operation, as the latency histogram labels it. */
export type StoreOp = Exclude<keyof StoreCounts, 'errors' | 'timeouts'>;

/**
 * What the Prometheus page of clones/session shows: latency per operation, failures by error code, CAS
 * conflicts (each one a retried update, or the last attempt of one that gave up) and sessions created and
 * destroyed in the store. Each call costs one `performance.now()` pair and a few increments.
 */
export interface StoreStats {
  latency: Map<StoreOp, Histogram>;
  errors: Map<string, number>;
  casRetries: number;
  created: number;
  destroyed: number;
}

type Open = () => StoreBackend | Promise<StoreBackend>;

/**
 * The one wrapper every session backend runs inside, as kysely's RuntimeDriver: it makes the backend (loading
 * its module on first use), runs its `init` once -- one in flight at a time, tried again on the next call when
 * it failed -- refuses calls once closed, closes once, bounds every call by `timeoutMs`
 * (CLONES_SESSION_STORE_TIMEOUT), turns any backend error into CLONES_SESSION_STORE_UNAVAILABLE (503) and
 * counts every call. Backends keep only their own operations.
 *
 * @example
 *   const store = new RuntimeStore(() => new SqliteStore(opts), { kind: 'sqlite', timeoutMs: 2000 });
 *   await store.get(key); // opens the file and creates the table first
 */
export class RuntimeStore implements SessionStore {
  readonly counts: StoreCounts = noCounts();
  readonly stats: StoreStats = {
    latency: new Map(),
    errors: new Map(),
    casRetries: 0,
    created: 0,
    destroyed: 0,
  };
  readonly #open: Open;
  readonly #kind: string;
  readonly #timeoutMs: number;
  #backend: StoreBackend | undefined;
  #initialized = false;
  #initializing: Promise<StoreBackend> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(open: Open, options: { kind: string; timeoutMs: number }) {
    this.#open = open;
    this.#kind = options.kind;
    this.#timeoutMs = options.timeoutMs;
  }

  /** The backend's own name once it is made (`redis cluster` for a cluster client), else the URL's. */
  get kind(): string {
    return this.#backend?.kind ?? this.#kind;
  }

  get(key: string): Promise<StoredSession | null> {
    this.counts.get += 1;
    return this.#run('get', (b) => b.get(key));
  }
  create(key: string, session: StoredSession): Promise<WriteResult> {
    this.counts.create += 1;
    return this.#run('create', (b) => b.create(key, session)).then((r) => {
      if (r.ok) this.stats.created += 1;
      return r;
    });
  }
  patch(key: string, patch: SessionPatch, options?: PatchOptions): Promise<WriteResult> {
    this.counts.patch += 1;
    return this.#run('patch', (b) => b.patch(key, patch, options)).then((r) => {
      if (!r.ok && r.reason === 'conflict') this.stats.casRetries += 1;
      return r;
    });
  }
  touch(key: string, expiresAt: number): Promise<boolean> {
    this.counts.touch += 1;
    return this.#run('touch', (b) => b.touch(key, expiresAt));
  }
  destroy(key: string, tombstoneUntil: number): Promise<void> {
    this.counts.destroy += 1;
    return this.#run('destroy', (b) => b.destroy(key, tombstoneUntil)).then(() => {
      this.stats.destroyed += 1;
    });
  }
  bindUser(key: string, userId: string, indexUntil: number): Promise<boolean> {
    this.counts.bindUser += 1;
    return this.#run('bindUser', (b) => byUser(b).bindUser(key, userId, indexUntil));
  }
  listByUser(userId: string): Promise<UserSession[]> {
    this.counts.listByUser += 1;
    return this.#run('listByUser', (b) => byUser(b).listByUser(userId));
  }
  destroyByUser(userId: string, exceptKey: string | undefined, tombstoneUntil: number): Promise<number> {
    this.counts.destroyByUser += 1;
    return this.#run('destroyByUser', (b) => byUser(b).destroyByUser(userId, exceptKey, tombstoneUntil)).then(
      (n) => {
        this.stats.destroyed += n;
        return n;
      },
    );
  }

  /**
   * Makes and initialises the backend now rather than on the first call; rejects with the coded error a call
   * would get (a missing driver, a bad URL, a server that is down).
   */
  async ready(): Promise<void> {
    await this.#ready();
  }

  /** CLONES_SESSION_BY_USER_UNSUPPORTED (501) unless the backend keeps a per-user index. */
  async requireByUser(): Promise<void> {
    byUser(await this.#ready());
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#backend?.close?.() ?? Promise.resolve();
    return this.#closing;
  }

  #run<T>(name: StoreOp, op: (backend: StoreBackend) => Promise<T>): Promise<T> {
    const b = this.#backend;
    // The fast path, taken by every call once the store is up: no await before the backend's own call.
    if (b && this.#initialized && !this.#closed && b.connected !== false)
      return this.#guard(name, () => op(b));
    return this.#guard(name, async () => op(await this.#ready()));
  }

  #ready(): Promise<StoreBackend> {
    if (this.#closed) return Promise.reject(storeUnavailable(this.kind, new Error('the store was closed')));
    const b = this.#backend;
    if (b && this.#initialized && b.connected !== false) return Promise.resolve(b);
    this.#initializing ??= this.#init().then(
      (backend) => {
        this.#initializing = undefined;
        return backend;
      },
      (err) => {
        // Tried again on the next call: the server may be back, the table created, the driver installed.
        this.#initializing = undefined;
        throw err instanceof ClonesError ? err : storeUnavailable(this.kind, err);
      },
    );
    return this.#initializing;
  }

  async #init(): Promise<StoreBackend> {
    this.#backend ??= await this.#open();
    const backend = this.#backend;
    if (this.#closed) {
      // Closed while the backend was being made: release what it holds.
      this.#closing = backend.close?.() ?? Promise.resolve();
      throw new Error('the store was closed');
    }
    await backend.init?.();
    this.#initialized = true;
    return backend;
  }

  #guard<T>(name: StoreOp, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let settled = false;
    // Once per call, when the caller sees it end (a timeout ends it, the late answer does not count again).
    const observe = (code?: string) => {
      if (settled) return;
      settled = true;
      const h = this.stats.latency.get(name) ?? new Histogram();
      this.stats.latency.set(name, h);
      h.observe((performance.now() - started) / 1000);
      if (code !== undefined) this.stats.errors.set(code, (this.stats.errors.get(code) ?? 0) + 1);
    };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.counts.timeouts += 1;
        const err = storeTimeout(this.kind, this.#timeoutMs);
        observe(err.code);
        reject(err);
      }, this.#timeoutMs);
      let pending: Promise<T>;
      try {
        pending = call();
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (value) => {
          clearTimeout(timer);
          observe();
          resolve(value);
        },
        (err) => {
          clearTimeout(timer);
          if (err instanceof ClonesError && err.code === 'CLONES_SESSION_BY_USER_UNSUPPORTED') {
            observe();
            return reject(err);
          }
          this.counts.errors += 1;
          const coded = err instanceof ClonesError ? err : storeUnavailable(this.kind, err);
          observe(coded.code);
          reject(coded);
        },
      );
    });
  }
}

/** The backend's three by-user methods, or CLONES_SESSION_BY_USER_UNSUPPORTED when it lacks them. */
function byUser(b: StoreBackend): Required<Pick<StoreBackend, 'bindUser' | 'listByUser' | 'destroyByUser'>> {
  if (!b.bindUser || !b.listByUser || !b.destroyByUser) throw sessionByUserUnsupported(b.kind);
  return b as Required<Pick<StoreBackend, 'bindUser' | 'listByUser' | 'destroyByUser'>>;
}
