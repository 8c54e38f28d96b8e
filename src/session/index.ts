import type { IncomingMessage, ServerResponse } from 'node:http';
import { expressAdapter, expressErrors } from './adapters/express.ts';
import { fastifyAdapter } from './adapters/fastify.ts';
import { honoAdapter } from './adapters/hono.ts';
import { nodeAdapter, type SessionRequest } from './adapters/node.ts';
import { SessionEngine } from './engine.ts';
import type { SessionOptions } from './options.ts';
import type { SessionData } from './stores/store.ts';

export { ClonesError } from '../errors.ts';
export type { SessionRequest } from './adapters/node.ts';
export { SessionEngine } from './engine.ts';
export { type ConnectRedisOptions, fromConnectRedis, type RedisGetDel } from './from-connect-redis.ts';
export type { LegacySessions } from './legacy-sessions.ts';
export type { SessionOptions } from './options.ts';
export type { SessionCookie } from './session-cookie.ts';
export type {
  AppSessionData,
  Session,
  SessionCallback,
  SessionMethods,
  SessionTypes,
} from './session-proxy.ts';
export { openStore, openStoreInstance } from './stores/open-store.ts';
export { RuntimeStore, type StoreCounts } from './stores/runtime-store.ts';
export type { SessionData, SessionStore, StoreBackend, StoredSession } from './stores/store.ts';
export type {
  ExpressSessionStore,
  PgPoolLike,
  RedisClientLike,
  StoreInstance,
} from './stores/store-instance.ts';
export { type ExpressStore, type ExpressStoreOptions, toExpressStore } from './to-express-store.ts';

/**
 * Sessions that live outside the clone. One factory; the store is chosen by URL (`store` option or
 * SESSION_STORE): `sqlite:<path>` (default `.clones/sessions.db`), `redis://`, `rediss://`, `cookie:`,
 * `memory:` (tests only).
 *
 * @example
 *   type Data = { userId: string; cart: string[] };
 *   const s = sessions<Data>({ secret: process.env.SESSION_SECRET });
 *   app.use(s.express());                                  // Express 5
 *   await fastify.register(s.fastify);                     // Fastify 5
 *   hono.use(s.hono());                                    // Hono
 *   http.createServer(s.node(async (req, res) => { ... })); // node:http
 */
export function sessions<T extends SessionData = SessionData>(options?: SessionOptions) {
  const engine = new SessionEngine(options);
  return {
    engine,
    express: () => expressAdapter(engine),
    expressErrors,
    fastify: fastifyAdapter(engine),
    hono: () => honoAdapter(engine),
    node: (handler: (req: SessionRequest<T>, res: ServerResponse) => unknown) =>
      nodeAdapter<T>(engine, handler) as (req: IncomingMessage, res: ServerResponse) => void,
    /** The session metrics in the Prometheus text format, for the app's own `/metrics` (docs/metrics.md). */
    prometheus: () => engine.prometheus(),
    /**
     * Opens the store now (connects, sets up tables): await it before `listen`, so a clone's first request
     * does not pay for the connect. Rejects with the coded error a request would get.
     */
    ready: () => engine.ready(),
    /** Closes the store's connections. */
    close: () => engine.close(),
  };
}

/**
 * A drop-in for express-session's `session(options)`: the same option names (each honoured, or refused
 * with a coded error saying what to use instead) and express-session's habits where clones' defaults differ:
 * the session is loaded before the handler (so `req.session.views` reads at once) and `regenerate()` starts
 * an empty session. The differences that remain are listed in docs/migrating.md.
 *
 * @example
 *   import { expressSession as session } from 'clones/session';
 *   app.use(session({ secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: true }));
 */
export function expressSession(options?: SessionOptions) {
  const s = sessions({ eager: true, regenerateKeepsData: false, ...options });
  return Object.assign(s.express(), { engine: s.engine, close: s.close });
}
