import { formatLsn, lsnOf } from './lsn.ts';

/**
 * The session key that carries the user's read-your-writes position (a WAL LSN such as `"0/40038A8"`). It is
 * reserved: apps should not use it for their own data. It rides in the session so that whichever clone serves
 * the user's next request reads from a replica that has replayed the user's last write, or from the primary.
 */
export const SESSION_LSN_KEY = 'clonesDataLsn';

/**
 * What clones/data needs of a session: `get` and an atomic `update`. A clones/session `req.session` fits;
 * clones/session itself knows nothing of clones/data.
 */
export interface LsnSession {
  // biome-ignore lint/suspicious/noExplicitAny: a typed Session<T> narrows the key; any session fits
  get(key: any): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: the draft is the user's own typed data
  update(fn: (draft: any) => unknown): Promise<unknown>;
}

/**
 * The position a session asks reads to see (0: none).
 *
 * @example
 *   sessionLsn(req.session); // 67123368
 */
export function sessionLsn(session: LsnSession): number {
  return lsnOf(session.get(SESSION_LSN_KEY));
}

/**
 * Raises the session's position to `lsn` (never lowers it: two requests of one user may commit out of order).
 * An atomic update, so it is stored before the response that follows the write.
 *
 * @example
 *   await recordLsn(req.session, committed.lsnValue);
 */
export async function recordLsn(session: LsnSession, lsn: number): Promise<void> {
  if (lsn <= 0) return;
  await session.update((draft: Record<string, unknown>) => {
    if (lsnOf(draft[SESSION_LSN_KEY]) < lsn) draft[SESSION_LSN_KEY] = formatLsn(lsn);
  });
}
