import type { SessionData, StoredSession } from './store.ts';

/**
 * A StoredSession from a backend's row or item; `userId` only when one is bound (null and undefined mean
 * none), so sessions read from any store compare equal.
 *
 * @example
 *   storedSession(JSON.parse(row.data), row.version, row.created_at, row.expires_at, row.user_id);
 */
export function storedSession(
  data: SessionData,
  version: number,
  createdAt: number,
  expiresAt: number,
  userId: string | null | undefined,
): StoredSession {
  const session: StoredSession = { data, version, createdAt, expiresAt };
  if (userId != null) session.userId = userId;
  return session;
}
