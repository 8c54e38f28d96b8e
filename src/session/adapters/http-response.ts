import type { ServerResponse } from 'node:http';
import { ClonesError, headersSent, internalError } from '../../errors.ts';
import { logger } from '../../logger.ts';
import type { RequestSession } from '../request-session.ts';

const log = logger.child({ part: 'session' });

/**
 * Saves the session before a node:http response ends: `res.end` waits for the save, adds the Set-Cookie
 * headers, then ends. When the save fails, the response becomes the coded JSON error instead (a 503 for a
 * store outage), so the client never gets a success whose session change was lost. Returns the original
 * `end`, for error answers that must not save.
 */
export function saveBeforeEnd(
  res: ServerResponse,
  rs: RequestSession,
  unset?: () => boolean,
): ServerResponse['end'] {
  const end = res.end;
  let ending = false;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (ending) return end.apply(this, args as Parameters<typeof end>);
    ending = true;
    // express-session's `unset`: the app removed req.session; 'keep' forgets this request's changes.
    const destroy = unset?.() === true && rs.options.unset === 'destroy';
    if (unset?.() && !destroy) rs.discard();
    // Nothing to save (a read, or a route that never touched the session): end now, not a few ticks later.
    if (!destroy && rs.settled) return end.apply(this, args as Parameters<typeof end>);
    const saving = destroy ? rs.destroy().then(() => rs.commit()) : rs.commit();
    saving.then(
      (cookies) => {
        if (cookies.length > 0) {
          if (res.headersSent) log.error({ code: headersSent().code }, headersSent().message);
          else appendSetCookie(res, cookies);
        }
        end.apply(res, args as Parameters<typeof end>);
      },
      (err) => {
        log.error({ code: (err as ClonesError).code, err: (err as Error).message }, 'session save failed');
        if (res.headersSent) res.destroy(err as Error);
        else sendError(res, err, end);
      },
    );
    return this;
  } as typeof res.end;
  return end;
}

/** Answers with the project's JSON error body; errors that are not ours become a plain coded 500. */
export function sendError(res: ServerResponse, err: unknown, end: ServerResponse['end'] = res.end): void {
  const coded = err instanceof ClonesError ? err : internalError(err);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const body = JSON.stringify(coded.toJSON());
  res.statusCode = coded.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (coded.status === 503) res.setHeader('retry-after', '1');
  (end as (chunk: string) => ServerResponse).call(res, body);
}

function appendSetCookie(res: ServerResponse, cookies: string[]): void {
  const existing = res.getHeader('set-cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader('set-cookie', [...list, ...cookies]);
}
