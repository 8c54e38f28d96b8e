/**
 * Every error the project throws, in one place: the files of src/errors/, one per area, re-exported here so
 * that every part imports them from `errors.ts`. Each error is a ClonesError with a stable `code` (the union
 * `ErrorCode`, listed in docs/errors.md) and the HTTP status an adapter answers with.
 *
 * @example
 *   import { ClonesError, storeTimeout } from '../errors.ts';
 *   if (err instanceof ClonesError && err.code === 'CLONES_SESSION_STORE_UNAVAILABLE') retryLater();
 */
export * from './errors/balancer-errors.ts';
export * from './errors/clones-error.ts';
export * from './errors/codes.ts';
export * from './errors/data-errors.ts';
export * from './errors/fleet-errors.ts';
export * from './errors/general-errors.ts';
export * from './errors/host-errors.ts';
export * from './errors/session-errors.ts';
export * from './errors/tls-errors.ts';
