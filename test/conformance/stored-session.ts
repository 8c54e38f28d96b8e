import { randomBytes } from 'node:crypto';
import type { SessionData, StoredSession } from '../../src/session/stores/store.ts';

/**
 * A store key as the engine makes it: the hex SHA-256 of a session id (random here), so tests that share a
 * server never meet each other's keys.
 *
 * @example
 *   await store.create(newKey(), fresh({ user: 'ada' }));
 */
export function newKey(): string {
  return randomBytes(32).toString('hex');
}

/**
 * A session at version 1, created now and expiring `ttlMs` from now, as the engine hands it to `create`.
 *
 * @example
 *   const session = fresh({ cart: [1] }, 1000); // expires in a second
 */
export function fresh(data: SessionData, ttlMs = 60_000): StoredSession {
  const now = Date.now();
  return { data, version: 1, createdAt: now, expiresAt: now + ttlMs };
}
