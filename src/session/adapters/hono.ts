import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { ClonesError } from '../../errors.ts';
import type { SessionEngine } from '../engine.ts';
import type { RequestInfo } from '../request-info.ts';
import { type AppSessionData, type Session, sessionProxy } from '../session-proxy.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** The session (clones/session); type its data with `SessionTypes`. */
    session: Session<AppSessionData>;
  }
}

/**
 * Hono middleware: `c.get('session')`, saved after the handler. Session errors (a store outage, say) become the
 * JSON error body with their status. On @hono/node-server the client address comes from `c.env.incoming`.
 *
 * @example
 *   app.use(s.hono());
 *   app.get('/', async (c) => { const s = await c.get('session').load(); return c.json(s.toJSON()); });
 */
export function honoAdapter(engine: SessionEngine): MiddlewareHandler<{ Variables: { session: Session } }> {
  return async (c, next) => {
    const rs = engine.begin(honoInfo(c));
    c.set('session', sessionProxy(rs));
    try {
      if (engine.options.eager && rs.hasCookie) await rs.load();
      await next();
      if (c.error instanceof ClonesError) throw c.error;
      const cookies = rs.settled ? [] : await rs.commit();
      for (const cookie of cookies) c.header('set-cookie', cookie, { append: true });
    } catch (err) {
      if (!(err instanceof ClonesError)) throw err;
      c.res = new Response(JSON.stringify(err.toJSON()), {
        status: err.status,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
    }
  };
}

function honoInfo(c: Context): RequestInfo {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const socket = incoming?.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | undefined;
  return {
    cookie: c.req.header('cookie'),
    encrypted: socket?.encrypted === true,
    remoteAddress: socket?.remoteAddress,
    forwardedProto: c.req.header('x-forwarded-proto'),
  };
}
