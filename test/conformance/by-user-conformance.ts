import { after, before, describe, it } from 'node:test';
import { type ByUserApp, checkLogOutEverywhere, startByUserApp } from '../harness/by-user-app.ts';

/** A store that keeps a per-user index, as the by-user suite sees it. */
export interface ByUserBackend {
  name: string;
  /** The store URL the app uses; `cleanup` releases what `setup` started. */
  setup(): Promise<{ store: string; cleanup(): Promise<void> }>;
}

/**
 * "Log me out everywhere" over HTTP, on every store with a per-user index: the same user in three browsers,
 * a stranger, and a save in flight on a browser that gets logged out (see checkLogOutEverywhere).
 *
 * @example
 *   byUserConformance({ name: 'redis', setup: async () => ({ store: redis.url, cleanup: async () => {} }) });
 */
export function byUserConformance(backend: ByUserBackend): void {
  describe(`sessions by user over HTTP (${backend.name})`, () => {
    let env: { store: string; cleanup(): Promise<void> } | undefined;
    let app: ByUserApp;
    before(async () => {
      env = await backend.setup();
      app = await startByUserApp({ store: env.store });
    });
    after(async () => {
      await app?.close();
      await env?.cleanup();
    });

    it('logs the same user out of 2 of 3 browsers; an in-flight save on a destroyed one does not revive it', async () => {
      await checkLogOutEverywhere(app);
    });
  });
}
