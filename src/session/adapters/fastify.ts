import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionEngine } from '../engine.ts';
import { requestInfo } from '../request-info.ts';
import type { RequestSession } from '../request-session.ts';
import { type Session, sessionProxy } from '../session-proxy.ts';

const STATE = Symbol('clones.session');

type WithState = FastifyRequest & { session: Session; [STATE]?: RequestSession };

/**
 * Fastify 5 plugin: `request.session` on every request of the app (not encapsulated), saved in `onSend`, so a
 * save failure becomes Fastify's error answer with our code and status. Type it with
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
    app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const rs = (request as WithState)[STATE];
      if (!rs || reply.statusCode >= 500) return payload;
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
