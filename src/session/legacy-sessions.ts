import { createHmac, hkdfSync } from 'node:crypto';
import type { SessionData } from './stores/store.ts';

/**
 * Where sessions of the app's previous session library live (express-session + connect-redis, say), so that
 * users carrying its cookie move to clones sessions without being logged out. The engine asks it only for a
 * request that has no clones session cookie but has `cookieName`; `fromConnectRedis` is one implementation.
 *
 * @example
 *   const legacy: LegacySessions = fromConnectRedis({ url: 'redis://old:6379', secret: OLD_SECRET });
 *   sessions({ secret, store: 'redis://new:6379', migrateFrom: legacy });
 */
export interface LegacySessions {
  /** The old session cookie's name, e.g. `connect.sid`. */
  readonly cookieName: string;
  /**
   * How long (ms) after a migration the old cookie still names the new session: concurrent requests of one
   * browser, all carrying the old cookie, land on the one migrated session. Later, the old cookie names nothing.
   */
  readonly graceMs: number;
  /** The old session id when `value` (the raw cookie value) is validly signed, else null. Never throws. */
  verify(value: string): string | null;
  /** The old session's data without the old library's own members (its `cookie`), or null when there is none. */
  read(sid: string): Promise<SessionData | null>;
  /** Called once the session lives in the clones store; may delete the old session or leave it. */
  retire(sid: string): Promise<void>;
  /** Releases connections this object opened itself. */
  close(): Promise<void>;
}

/**
 * The clones id a migrated session gets: derived from the old id with a key from the newest clones secret, so
 * concurrent requests migrating one old session all name the same clones session (the second `create`
 * conflicts and adopts the first). Unguessable without the secret; 43 base64url characters like a random id.
 */
export function migratedId(secret: string, cookieName: string, sid: string): string {
  const key = Buffer.from(hkdfSync('sha256', secret, 'clones/session', 'clones session migration v1', 32));
  return createHmac('sha256', key).update(`${cookieName}\0${sid}`).digest('base64url');
}
