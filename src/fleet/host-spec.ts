import { invalidOption } from '../errors.ts';

/** How to reach one host over SSH, and the directory that is the fleet's on it. */
export interface HostSpec {
  /** For messages: `web-1`, or the address. */
  name: string;
  user: string;
  address: string;
  port: number;
  /** Private key file (OpenSSH or PEM format, not passphrase-protected): key-based auth only. */
  identity: string;
  dir: string;
}

/**
 * Throws CLONES_INVALID_OPTION naming the host and the field when `host` cannot be connected to: a field
 * missing or empty, or a port outside 1..65535. Checked on every call, before any connection is tried.
 *
 * @example
 *   checkHost({ name: 'web-1', user: 'deploy', address: '10.0.0.11', port: 22, identity, dir: 'clones' });
 */
export function checkHost(host: HostSpec): void {
  const where = `host ${host?.name ?? host?.address ?? '?'}`;
  for (const field of ['name', 'user', 'address', 'identity'] as const) {
    if (typeof host?.[field] !== 'string' || host[field] === '')
      throw invalidOption(`${where}: ${field}`, 'is required');
  }
  if (!Number.isInteger(host.port) || host.port < 1 || host.port > 65535) {
    throw invalidOption(`${where}: port`, `must be 1..65535, got ${JSON.stringify(host.port)}`);
  }
}
