import type { SessionStore, StoreBackend } from '../../src/session/stores/store.ts';
import { byUserConformance } from './by-user-conformance.ts';
import { sessionConformance } from './session-conformance.ts';
import { storeContract } from './store-contract.ts';

/** A session store backend on a server its test file started once, as the shared suites see it. */
export interface StoreUnderTest {
  name: string;
  /** The store URL the apps use (called in each suite's set-up, once the file's server is up). */
  url(): string;
  /** A bare store on the same server for the store contract, which closes it when done. */
  store(): StoreBackend | SessionStore;
  /** The contract's compare-and-set race, when the default is too slow for the backend (see storeContract). */
  race?: { clients: number; rounds: number };
  /** The store keeps a per-user index: also run "log me out everywhere" over HTTP. */
  byUser?: boolean;
}

/**
 * Registers the suites every session store runs against its file's server: the store contract on a bare
 * store, the session conformance suite over HTTP, and (with `byUser`) the by-user suite. They share the
 * server: every test uses its own random keys. The outage suite, which takes the server down, is registered
 * by the file itself, after the tests that need the server up.
 *
 * @example
 *   storeConformance({
 *     name: 'redis',
 *     url: () => redis.url,
 *     store: () => new RedisStore({ url: redis.url, connectTimeout: 2000, prefix: 'test' }),
 *     byUser: true,
 *   });
 */
export function storeConformance(backend: StoreUnderTest): void {
  const leaveRunning = async () => {};
  storeContract(
    backend.name,
    async () => {
      const store = backend.store();
      return { store, cleanup: async () => await store.close?.() };
    },
    backend.race,
  );
  sessionConformance({
    name: backend.name,
    setup: async () => ({ url: backend.url(), cleanup: leaveRunning }),
  });
  if (backend.byUser) {
    byUserConformance({
      name: backend.name,
      setup: async () => ({ store: backend.url(), cleanup: leaveRunning }),
    });
  }
}
