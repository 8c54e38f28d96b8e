import { ClonesError, storeTimeout, storeUnavailable } from '../../errors.ts';
import type {
  PatchOptions,
  SessionPatch,
  SessionStore,
  StoredSession,
  UserSession,
  WriteResult,
} from './store.ts';

/**
 * Wraps any store with the guarantees every backend needs, so backends stay simple: each call either answers
 * within `timeoutMs` or fails with CLONES_SESSION_STORE_TIMEOUT; any backend error becomes
 * CLONES_SESSION_STORE_UNAVAILABLE (503); `close` runs once.
 *
 * @example
 *   const store = new GuardedStore(new RedisStore(opts), 2000);
 */
export class GuardedStore implements SessionStore {
  readonly kind: string;
  /** Calls made per operation, and failures: the session's store metrics. */
  readonly counts = { get: 0, create: 0, patch: 0, touch: 0, destroy: 0, errors: 0, timeouts: 0 };
  readonly #inner: SessionStore;
  readonly #timeoutMs: number;
  #closing: Promise<void> | undefined;

  readonly bindUser?: (key: string, userId: string, indexUntil: number) => Promise<boolean>;
  readonly listByUser?: (userId: string) => Promise<UserSession[]>;
  readonly destroyByUser?: (
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ) => Promise<number>;

  constructor(inner: SessionStore, timeoutMs: number) {
    this.#inner = inner;
    this.kind = inner.kind;
    this.#timeoutMs = timeoutMs;
    // Present only when the backend has them: the engine tells "unsupported" by their absence.
    const { bindUser, listByUser, destroyByUser } = inner;
    if (bindUser) this.bindUser = (k, u, until) => this.#guard(() => bindUser.call(inner, k, u, until));
    if (listByUser) this.listByUser = (u) => this.#guard(() => listByUser.call(inner, u));
    if (destroyByUser) {
      this.destroyByUser = (u, except, until) =>
        this.#guard(() => destroyByUser.call(inner, u, except, until));
    }
  }

  get(key: string): Promise<StoredSession | null> {
    this.counts.get += 1;
    return this.#guard(() => this.#inner.get(key));
  }
  create(key: string, session: StoredSession): Promise<WriteResult> {
    this.counts.create += 1;
    return this.#guard(() => this.#inner.create(key, session));
  }
  patch(key: string, patch: SessionPatch, options?: PatchOptions): Promise<WriteResult> {
    this.counts.patch += 1;
    return this.#guard(() => this.#inner.patch(key, patch, options));
  }
  touch(key: string, expiresAt: number): Promise<boolean> {
    this.counts.touch += 1;
    return this.#guard(() => this.#inner.touch(key, expiresAt));
  }
  destroy(key: string, tombstoneUntil: number): Promise<void> {
    this.counts.destroy += 1;
    return this.#guard(() => this.#inner.destroy(key, tombstoneUntil));
  }
  close(): Promise<void> {
    this.#closing ??= this.#inner.close();
    return this.#closing;
  }

  #guard<T>(call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.counts.timeouts += 1;
        reject(storeTimeout(this.kind, this.#timeoutMs));
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
          resolve(value);
        },
        (err) => {
          clearTimeout(timer);
          this.counts.errors += 1;
          reject(err instanceof ClonesError ? err : storeUnavailable(this.kind, err));
        },
      );
    });
  }
}
