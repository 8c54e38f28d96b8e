const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True when `err` says the server could not be reached or the connection broke (as opposed to an error in the
 * statement): connection refused/reset, SQLSTATE class 08, or a server shutting down (57P01-57P03).
 *
 * @example
 *   if (isConnectionError(err)) pool.markDown(replica); // and retry the read elsewhere
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code)) return true;
    if (code.startsWith('CLONES_')) return false;
  }
  return /connection terminated|connection ended|timeout exceeded when trying to connect|connection error|Connection refused/i.test(
    err.message,
  );
}

/** SQLSTATE 25006: a write in a read-only transaction (a replica, or our read-only primary sessions). */
export const isReadOnlyError = (err: unknown): boolean => (err as { code?: unknown })?.code === '25006';

/** SQLSTATE 40001 on a standby: "canceling statement due to conflict with recovery"; the read may run elsewhere. */
export const isRecoveryConflict = (err: unknown): boolean => (err as { code?: unknown })?.code === '40001';
