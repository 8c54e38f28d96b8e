import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionEngine } from '../engine.ts';
import { requestInfo } from '../request-info.ts';
import { type Session, sessionProxy } from '../session-proxy.ts';
import type { SessionData } from '../stores/store.ts';
import { saveBeforeEnd, sendError } from './http-response.ts';

/** A node:http request with its session. */
export type SessionRequest<T extends SessionData> = IncomingMessage & { session: Session<T> };

/**
 * Wraps a plain node:http handler: `req.session` is set, the session is saved before the response ends, and
 * a session error thrown by the handler (a store outage, say) becomes the coded JSON answer.
 *
 * @example
 *   http.createServer(s.node(async (req, res) => { await req.session.load(); res.end(String(req.session.n)); }));
 */
export function nodeAdapter<T extends SessionData>(
  engine: SessionEngine,
  handler: (req: SessionRequest<T>, res: ServerResponse) => unknown,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const rs = engine.begin(requestInfo(req));
    (req as SessionRequest<T>).session = sessionProxy<T>(rs);
    const end = saveBeforeEnd(res, rs);
    const run = async () => {
      if (engine.options.eager && rs.hasCookie) await rs.load();
      await handler(req as SessionRequest<T>, res);
    };
    run().catch((err) => {
      if (res.headersSent) res.destroy(err);
      else sendError(res, err, end);
    });
  };
}
