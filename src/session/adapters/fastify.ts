import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClonesError } from '../../errors.ts';
import type { SessionEngine } from '../engine.ts';
import { requestInfo } from '../request-info.ts';
import type { RequestSession } from '../request-session.ts';
import { type AppSessionData, type Session, sessionProxy } from '../session-proxy.ts';

const STATE = Symbol('clones.session');
const ERROR = Symbol('clones.session.error');

declare module 'fastify' {
  interface FastifyRequest {
    /** The session (clones/session); type its data with `SessionTypes`. */
    session: Session<AppSessionData>;
  }
}

type WithState = FastifyRequest & { session: Session; [STATE]?: RequestSession; [ERROR]?: ClonesError };

/**
 * Fastify 5 plugin: `request.session` on every request of the app (not encapsulated), saved in `onSend`, so a
 * save failure becomes Fastify's error answer with our code and status. A ClonesError that reaches Fastify's
 * error path (a store outage during `load()`, say) is answered with the project's JSON body
 * `{ error: { code, message } }` instead of Fastify's default shape. Type it with
 * `declare module 'fastify' { interface FastifyRequest { session: Session<MyData> } }`.
 *
 * @example
 *   await app.register(s.fastify);
 */
export function fastifyAdapter(engine: SessionEngine) {
  const plugin = async (app: FastifyInstance): Promise<void> => {
    app.decorateRequest('session', null as unknown as Session);
    app.addHook('onRequest', async (request: FastifyRequest) => {
      const rs = engine.begin(requestInfo(request.raw));
      (request as WithState)[STATE] = rs;
      (request as WithState).session = sessionProxy(rs);
      if (engine.options.eager && rs.hasCookie) await rs.load();
    });
    // onError sees the error before it is serialised; onSend then swaps Fastify's default error body for ours.
    // onError only runs when the error itself is being sent, so a custom body from a user's handler is kept.
    app.addHook('onError', async (request: FastifyRequest, _reply: FastifyReply, error: Error) => {
      if (error instanceof ClonesError) (request as WithState)[ERROR] = error;
    });
    app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const error = (request as WithState)[ERROR];
      if (error && reply.statusCode === error.status) {
        reply.header('content-type', 'application/json; charset=utf-8');
        if (error.status === 503) reply.header('retry-after', '1');
        return JSON.stringify(error.toJSON());
      }
      const rs = (request as WithState)[STATE];
      if (!rs || reply.statusCode >= 500 || rs.settled) return payload;
      const cookies = await rs.commit();
      for (const cookie of cookies) reply.header('set-cookie', cookie);
      return payload;
    });
  };
  // Hooks apply to the whole app rather than this plugin's own scope (what fastify-plugin does).
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'clones-session';
  return plugin;
}
