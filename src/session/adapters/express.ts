import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionEngine } from '../engine.ts';
import { requestInfo } from '../request-info.ts';
import { type Session, sessionProxy } from '../session-proxy.ts';
import { saveBeforeEnd, sendError } from './http-response.ts';

type Next = (err?: unknown) => void;

/**
 * Express 5 middleware: sets `req.session` and saves it before the response ends. Typing `req.session` is done
 * once in the app: `declare global { namespace Express { interface Request { session: Session<MyData> } } }`.
 *
 * @example
 *   app.use(s.express());
 */
export function expressAdapter(engine: SessionEngine) {
  return (req: IncomingMessage & { session?: Session }, res: ServerResponse, next: Next): void => {
    const rs = engine.begin(requestInfo(req));
    req.session = sessionProxy(rs);
    const end = saveBeforeEnd(res, rs);
    if (!(engine.options.eager && rs.hasCookie)) {
      next();
      return;
    }
    rs.load().then(
      () => next(),
      (err) => sendError(res, err, end),
    );
  };
}

/**
 * Express error handler that answers session errors (and any ClonesError) with the JSON error body and its
 * status; other errors go on to the next handler.
 *
 * @example
 *   app.use(s.expressErrors());
 */
export function expressErrors() {
  return (err: unknown, _req: IncomingMessage, res: ServerResponse, next: Next): void => {
    if (err instanceof Error && err.name === 'ClonesError' && !res.headersSent) sendError(res, err);
    else next(err);
  };
}
