import { RuntimeStore } from '../../src/session/stores/runtime-store.ts';
import type { SessionStore, StoreBackend } from '../../src/session/stores/store.ts';

/**
 * A backend made by a test, inside the RuntimeStore the engine would put it in (set-up on first use, closed
 * check, coded errors). The timeout is long by default: a test of a bare backend is not a test of timeouts.
 *
 * @example
 *   const store = runtime(new RedisStore({ url, connectTimeout: 1000, prefix: 'test' }));
 */
export function runtime(backend: StoreBackend | SessionStore, timeoutMs = 60_000): RuntimeStore {
  if (backend instanceof RuntimeStore) return backend;
  return new RuntimeStore(() => backend, { kind: backend.kind, timeoutMs });
}
