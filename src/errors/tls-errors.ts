import { ClonesError } from './clones-error.ts';

// Errors of the balancer's TLS certificates and keys.
// Each factory makes one coded ClonesError, e.g. `throw tlsUnusable('PEM', 'site.crt', 'holds no PEM certificate');`

/**
 * A TLS certificate or key of the balancer cannot be used: unreadable file, no PEM in it, a key that does not
 * match its certificate, a chain out of order, a directory without any pair. At start-up the balancer does
 * not start; on a reload the old certificates stay in use. `reason` is the stable part of the code.
 */
export const tlsUnusable = (reason: keyof typeof TLS_CODES, file: string, why: string): ClonesError =>
  new ClonesError(TLS_CODES[reason], `${file}: ${why}`, { status: 422 });

const TLS_CODES = {
  FILE: 'CLONES_TLS_FILE',
  PEM: 'CLONES_TLS_PEM',
  KEY_MISMATCH: 'CLONES_TLS_KEY_MISMATCH',
  CHAIN: 'CLONES_TLS_CHAIN',
  DIR_EMPTY: 'CLONES_TLS_DIR_EMPTY',
} as const;

/** `reloadTls` (admin `POST /tls/reload`, SIGHUP) on a balancer started without TLS. */
export const tlsOff = (): ClonesError =>
  new ClonesError('CLONES_TLS_OFF', 'this balancer serves no TLS: start it with tls.cert and tls.key', {
    status: 409,
  });

/** A certificate is expired or not yet valid: logged as a warning (clients will refuse it), not thrown. */
export const tlsExpired = (file: string, notAfter: string): ClonesError =>
  new ClonesError(
    'CLONES_TLS_EXPIRED',
    `${file}: the certificate is not valid now (valid until ${notAfter})`,
  );
