import { badStoreUrl, sessionByUserUnsupported } from '../errors.ts';
import { KeyLock } from './key-lock.ts';
import { type ResolvedOptions, resolveOptions, type SessionOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import type { RequestSession } from './request-session.ts';
import { SealedSession } from './sealed-session.ts';
import { createSealer, type Sealer } from './sealer.ts';
import { IdSigner, storeKey } from './session-id.ts';
import { sessionPrometheus } from './session-prometheus.ts';
import { type StoreContext, StoreSession } from './store-session.ts';
import { openStore, openStoreInstance, schemeOf, storeSchemes } from './stores/open-store.ts';
import { noCounts, type RuntimeStore, type StoreCounts } from './stores/runtime-store.ts';
import type { SessionStore, UserSession } from './stores/store.ts';
import { UserEpochs } from './user-epochs.ts';

/**
 * The framework-neutral core: options validated once, the store opened lazily, and one RequestSession per
 * request. Adapters call `begin(info)` when a request arrives and `commit()` on it before the response goes.
 *
 * @example
 *   const engine = new SessionEngine({ secret, store: 'sqlite:.clones/sessions.db' });
 *   const rs = engine.begin(requestInfo(req));
 */
export class SessionEngine {
  readonly options: ResolvedOptions;
  readonly #sealer: Sealer | undefined;
  readonly #signer: IdSigner;
  readonly #locks = new KeyLock();
  /** Shared by every StoreSession of this engine: built once, not per request. */
  readonly #context: StoreContext;
  /** The server-side store (none for sealed cookies): made here, opened by its first call. */
  readonly #store: RuntimeStore | undefined;
  /** Sealed cookies with a revocation store: the per-user epochs that make destroyByUser work. */
  readonly #epochs: UserEpochs | undefined;
  readonly #revocationStore: RuntimeStore | undefined;

  constructor(options: SessionOptions = {}) {
    this.options = resolveOptions(options);
    const scheme = schemeOf(this.options.store);
    this.#signer = new IdSigner(this.options.secrets);
    const storeOptions = { timeoutMs: this.options.storeTimeout, prefix: this.options.prefix };
    const revocations = this.options.revocations;
    if (revocations) {
      const at = schemeOf(revocations.store);
      if (!at || !storeSchemes().includes(at)) {
        throw badStoreUrl(revocations.store, `revocation store: use one of ${storeSchemes().join(' ')}`);
      }
      this.#revocationStore = openStore(revocations.store, storeOptions);
      this.#epochs = new UserEpochs(this.#revocationStore, revocations.cacheMs, this.options.absoluteTimeout);
    }
    if (scheme === 'cookie:') {
      this.#sealer = createSealer(this.options.secrets);
    } else if (this.options.storeInstance) {
      // An object the app gave (`store: client`): its kind was checked when the options were resolved.
      this.#store = openStoreInstance(this.options.storeInstance, storeOptions);
    } else {
      this.#store = openStore(this.options.store, storeOptions);
    }
    // Sealed sessions never reach the store: their context's store is only there to satisfy the type.
    this.#context = {
      options: this.options,
      store: this.#store as RuntimeStore,
      signer: this.#signer,
      locks: this.#locks,
    };
  }

  /** True when sessions live in sealed cookies rather than a store. */
  get sealed(): boolean {
    return this.#sealer !== undefined;
  }

  begin(info: RequestInfo): RequestSession {
    if (this.#sealer) return new SealedSession(this.options, this.#sealer, info, this.#epochs);
    return new StoreSession(this.#context, info);
  }

  /**
   * The store, opened (its backend loaded and set up): rejects with the coded error a request would get.
   * Requests do not need this; each store call opens the store when it has to.
   */
  async store(): Promise<SessionStore> {
    const store = this.#store ?? openStore(this.options.store, { timeoutMs: 0, prefix: '' });
    await store.ready();
    return store;
  }

  /**
   * Opens the session store and the revocation store now (driver loaded, connected, tables set up) rather
   * than on the first request, so the first request a clone serves does not wait for a connect that may
   * outlast `storeTimeout`. Rejects with the coded error a request would get; a later call tries again.
   */
  async ready(): Promise<void> {
    await Promise.all([this.#store?.ready(), this.#revocationStore?.ready()]);
  }

  /**
   * The user's live sessions (bound with `req.session.bindUser(userId)`), by store key: ids never leave the
   * store. CLONES_SESSION_BY_USER_UNSUPPORTED (501) on stores without a per-user index, and on sealed cookies
   * without a revocation store (`revocations`).
   *
   * @example
   *   const devices = await s.engine.listByUser('user-42'); // [{ key, createdAt, expiresAt }]
   */
  async listByUser(userId: string): Promise<UserSession[]> {
    if (this.#sealer && this.#epochs) return this.#epochs.list(userId);
    const store = await this.#byUserStore();
    return store.listByUser(userId);
  }

  /**
   * "Log me out everywhere": destroys every session bound to `userId` except `except` (usually the current
   * `req.session`), each leaving a tombstone like `destroy()`, so an in-flight save cannot revive it. Answers
   * how many sessions it destroyed.
   *
   * @example
   *   const n = await s.engine.destroyByUser(req.session.userId, { except: req.session });
   */
  async destroyByUser(
    userId: string,
    options: { except?: { readonly id: string | undefined } } = {},
  ): Promise<number> {
    const id = options.except?.id;
    const exceptKey = id === undefined ? undefined : storeKey(id);
    if (this.#sealer && this.#epochs) return this.#epochs.revoke(userId, exceptKey);
    const store = await this.#byUserStore();
    return store.destroyByUser(userId, exceptKey, Date.now() + this.options.idleTimeout);
  }

  async #byUserStore(): Promise<RuntimeStore> {
    if (!this.#store) throw sessionByUserUnsupported('cookie (no revocation store)');
    await this.#store.requireByUser();
    return this.#store;
  }

  /** Store calls so far per operation (all zero while the store has not been used). */
  async metrics(): Promise<StoreCounts> {
    return { ...(this.#store?.counts ?? noCounts()) };
  }

  /**
   * The session metrics in the Prometheus text format (0.0.4), for the app's own `/metrics`: store latency per
   * operation, errors by code, CAS retries, sessions created and destroyed (docs/metrics.md).
   *
   * @example
   *   app.get('/metrics', async (_req, res) => res.type('text/plain; version=0.0.4').send(await engine.prometheus()));
   */
  async prometheus(): Promise<string> {
    return sessionPrometheus(this.#store?.stats);
  }

  async close(): Promise<void> {
    await this.options.migrateFrom?.close();
    await this.#store?.close();
    await this.#revocationStore?.close();
  }
}
