import { badStoreUrl, ClonesError, sessionByUserUnsupported, storeUnavailable } from '../errors.ts';
import { KeyLock } from './key-lock.ts';
import { type ResolvedOptions, resolveOptions, type SessionOptions } from './options.ts';
import type { RequestInfo } from './request-info.ts';
import type { RequestSession } from './request-session.ts';
import { SealedSession } from './sealed-session.ts';
import { createSealer, type Sealer } from './sealer.ts';
import { IdSigner, storeKey } from './session-id.ts';
import { type StoreContext, StoreSession } from './store-session.ts';
import type { GuardedStore } from './stores/guarded-store.ts';
import { openStore, openStoreInstance, schemeOf, storeSchemes } from './stores/open-store.ts';
import type { SessionStore, UserSession } from './stores/store.ts';
import type { StoreInstance } from './stores/store-instance.ts';
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
  #store: Promise<SessionStore> | undefined;
  /** Sealed cookies with a revocation store: the per-user epochs that make destroyByUser work. */
  readonly #epochs: UserEpochs | undefined;
  #revocationStore: Promise<SessionStore> | undefined;

  constructor(options: SessionOptions = {}) {
    this.options = resolveOptions(options);
    const scheme = schemeOf(this.options.store);
    this.#signer = new IdSigner(this.options.secrets);
    this.#context = {
      options: this.options,
      store: () => this.store(),
      signer: this.#signer,
      locks: this.#locks,
    };
    const revocations = this.options.revocations;
    if (revocations) {
      const at = schemeOf(revocations.store);
      if (!at || !storeSchemes().includes(at)) {
        throw badStoreUrl(revocations.store, `revocation store: use one of ${storeSchemes().join(' ')}`);
      }
      this.#epochs = new UserEpochs(
        () => this.#openRevocationStore(revocations.store),
        revocations.cacheMs,
        this.options.absoluteTimeout,
      );
    }
    if (scheme === 'cookie:') {
      this.#sealer = createSealer(this.options.secrets);
    } else if (this.options.storeInstance) {
      // An object the app gave (`store: client`): its kind was checked when the options were resolved.
    } else if (!scheme || !storeSchemes().includes(scheme)) {
      throw badStoreUrl(
        this.options.store,
        `unknown scheme; use one of ${[...storeSchemes(), 'cookie:'].join(' ')}`,
      );
    }
  }

  /** True when sessions live in sealed cookies rather than a store. */
  get sealed(): boolean {
    return this.#sealer !== undefined;
  }

  begin(info: RequestInfo): RequestSession {
    if (this.#sealer) return new SealedSession(this.options, this.#sealer, info, this.#epochs);
    return new StoreSession(this.#context, info);
  }

  /** The store, opened on first use (no I/O until then). */
  store(): Promise<SessionStore> {
    this.#store ??= this.#open(this.options.storeInstance ?? this.options.store, () => {
      this.#store = undefined;
    });
    return this.#store;
  }

  #openRevocationStore(url: string): Promise<SessionStore> {
    this.#revocationStore ??= this.#open(url, () => {
      this.#revocationStore = undefined;
    });
    return this.#revocationStore;
  }

  #open(from: string | StoreInstance, forget: () => void): Promise<SessionStore> {
    const options = { timeoutMs: this.options.storeTimeout, prefix: this.options.prefix };
    const url = typeof from === 'string' ? from : this.options.store;
    const opening = typeof from === 'string' ? openStore(from, options) : openStoreInstance(from, options);
    return opening.catch((err) => {
      // A backend that failed to load (a missing native module, say) is tried again on the next request.
      forget();
      throw err instanceof ClonesError ? err : storeUnavailable(url, err);
    });
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
    return store.listByUser!(userId);
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
    return store.destroyByUser!(userId, exceptKey, Date.now() + this.options.idleTimeout);
  }

  async #byUserStore(): Promise<SessionStore> {
    if (this.#sealer) throw sessionByUserUnsupported('cookie (no revocation store)');
    const store = await this.store();
    if (!store.listByUser || !store.destroyByUser || !store.bindUser)
      throw sessionByUserUnsupported(store.kind);
    return store;
  }

  /** Store calls so far per operation (all zero while the store has not been opened). */
  async metrics(): Promise<GuardedStore['counts']> {
    if (!this.#store) return { get: 0, create: 0, patch: 0, touch: 0, destroy: 0, errors: 0, timeouts: 0 };
    return { ...((await this.#store) as GuardedStore).counts };
  }

  async close(): Promise<void> {
    await this.options.migrateFrom?.close();
    if (this.#store) await (await this.#store).close();
    if (this.#revocationStore) await (await this.#revocationStore).close();
  }
}
