import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClonesError } from '../../errors.ts';
import type { SessionEngine } from '../engine.ts';
import { requestInfo } from '../request-info.ts';
import { type AppSessionData, type Session, sessionProxy } from '../session-proxy.ts';
import { saveBeforeEnd, sendError } from './http-response.ts';

type Next = (err?: unknown) => void;

declare global {
  namespace Express {
    interface Request {
      /** The session (clones/session); type its data with `SessionTypes`. */
      session: Session<AppSessionData>;
      /** The session id, as express-session has it; undefined after `destroy()`. */
      sessionID: string | undefined;
    }
  }
}

/**
 * Express 5 middleware: sets `req.session` (and express-session's `req.sessionID`) and saves the session
 * before the response ends. Importing `clones/session` types `req.session` on every Express request (see
 * `SessionTypes` to give the data its type).
 *
 * @example
 *   app.use(s.express());
 */
export function expressAdapter(engine: SessionEngine) {
  return (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    const rs = engine.begin(requestInfo(req));
    let session: Session | null | undefined = sessionProxy(rs);
    // Accessors, so that `req.session = null` and `delete req.session` are seen (express-session's `unset`).
    Object.defineProperty(req, 'session', {
      get: () => session,
      set: (value: Session | null | undefined) => {
        session = value;
      },
      configurable: true,
      enumerable: true,
    });
    Object.defineProperty(req, 'sessionID', { get: () => rs.id, configurable: true, enumerable: true });
    const end = saveBeforeEnd(res, rs, () => (req as { session?: unknown }).session == null);
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
    if (err instanceof ClonesError && !res.headersSent) sendError(res, err);
    else next(err);
  };
}
