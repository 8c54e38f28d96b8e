import type { SessionData, SessionPatch, WriteResult } from './store.ts';

/**
 * Sets an own, enumerable key, so that a session key named `__proto__` stays data and never replaces the
 * object's prototype (plain assignment would call the prototype setter).
 */
export function setOwn(data: SessionData, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(data, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    data[key] = value;
  }
}

/**
 * Applies a patch in place: deletes, then sets, top-level keys. Stores without a native merge use it.
 *
 * @example
 *   applyPatch({ a: 1, b: 2 }, { set: { c: 3 }, del: ['a'] }); // { b: 2, c: 3 }
 */
export function applyPatch(data: SessionData, patch: SessionPatch): SessionData {
  for (const k of patch.del) delete data[k];
  for (const k of Object.keys(patch.set)) setOwn(data, k, patch.set[k]);
  return data;
}

/** The write results without a payload, shared (frozen) by every store. */
export const GONE: WriteResult = Object.freeze({ ok: false, reason: 'gone' });
export const CONFLICT: WriteResult = Object.freeze({ ok: false, reason: 'conflict' });
