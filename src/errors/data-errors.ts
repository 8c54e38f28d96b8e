import { ClonesError, redactUrl } from './clones-error.ts';

// Errors of clones/data: URLs, unreachable or slow databases, a write sent as a read.
// Each factory makes one coded ClonesError, e.g. `throw dataTimeout('SELECT on replica 2', 2000);`

/** A data-layer URL (`primary`, `replicas`, `cache`, DATABASE_URL, ...) that clones/data cannot use. */
export const badDataUrl = (option: string, url: string, why: string): ClonesError =>
  new ClonesError('CLONES_DATA_URL', `${option}: cannot use "${redactUrl(url)}": ${why}`);

/** The primary database refused, dropped or never answered a connection: writes cannot be made now. */
export const primaryUnavailable = (cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_DATA_PRIMARY_UNAVAILABLE',
    `the primary database is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** No database server (no replica in rotation, and not the primary) could serve a read. */
export const dataUnavailable = (cause: unknown): ClonesError =>
  new ClonesError(
    'CLONES_DATA_UNAVAILABLE',
    `no database server could serve the read: ${cause instanceof Error ? cause.message : String(cause)}`,
    { status: 503, cause },
  );

/** A database or cache call took longer than the data layer's `timeout`. */
export const dataTimeout = (what: string, ms: number): ClonesError =>
  new ClonesError('CLONES_DATA_TIMEOUT', `${what} did not answer within ${ms} ms`, { status: 503 });

/** A statement that writes was sent through a read (`query`, `cached`), which may run on a read-only replica. */
export const readOnlyViolation = (detail: string): ClonesError =>
  new ClonesError(
    'CLONES_DATA_READ_ONLY',
    `a read tried to write (${detail}); send writes through execute(), transaction() or write()`,
  );
