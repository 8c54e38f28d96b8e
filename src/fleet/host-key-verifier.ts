import type { Logger } from 'pino';
import { type ClonesError, hostKeyChanged, hostKeyUnknown } from '../errors.ts';
import type { HostSpec } from './host-spec.ts';
import { addKnownHost, checkHostKey, hostKeyFingerprint, keyType, knownKeyTypes } from './known-hosts.ts';

/** The SSH host key algorithms ssh2 offers, in its default order. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/** One of the host key algorithms ssh2 knows. */
export type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

/**
 * The host key check of one connection, as OpenSSH's StrictHostKeyChecking does it: a key known_hosts holds
 * for the host is accepted; a changed key is always refused; an unknown one is refused, or with
 * `acceptNewHostKeys` appended to known_hosts and accepted. A refusal is kept as the error the connection
 * fails with (ssh2 itself only reports a failed handshake).
 *
 * @example
 *   const hostKeys = new HostKeyVerifier(host, { knownHosts, acceptNewHostKeys: false }, log);
 *   client.connect({ ..., algorithms: { serverHostKey: hostKeys.algorithms }, hostVerifier: hostKeys.verify });
 *   client.on('error', () => hostKeys.refusal ?? unreachable);
 */
export class HostKeyVerifier {
  /** Known key types first, as OpenSSH does, so a known host is not taken for a changed one. */
  readonly algorithms: HostKeyAlgorithm[];
  /** Why the host's key was refused; undefined while it was not. */
  refusal: ClonesError | undefined;
  readonly #host: HostSpec;
  readonly #o: { knownHosts: string; acceptNewHostKeys: boolean };
  readonly #log: Logger;

  constructor(host: HostSpec, o: { knownHosts: string; acceptNewHostKeys: boolean }, log: Logger) {
    this.#host = host;
    this.#o = o;
    this.#log = log;
    const known = new Set(knownKeyTypes(o.knownHosts, host.address, host.port).flatMap(algorithmsFor));
    this.algorithms = [
      ...HOST_KEY_ALGORITHMS.filter((a) => known.has(a)),
      ...HOST_KEY_ALGORITHMS.filter((a) => !known.has(a)),
    ];
  }

  /** ssh2's `hostVerifier`: true accepts the key the host presented. */
  readonly verify = (key: Buffer): boolean => {
    const { knownHosts, acceptNewHostKeys } = this.#o;
    const host = this.#host;
    const verdict = checkHostKey(knownHosts, host.address, host.port, key);
    const fingerprint = hostKeyFingerprint(key);
    if (verdict.status === 'known') return true;
    if (verdict.status === 'changed') {
      this.refusal = hostKeyChanged(host.name, fingerprint, knownHosts, verdict.line);
      this.#log.error({ host: host.name, fingerprint }, 'ssh host key CHANGED: refused');
      return false;
    }
    if (!acceptNewHostKeys) {
      this.refusal = hostKeyUnknown(host.name, fingerprint, knownHosts);
      return false;
    }
    addKnownHost(knownHosts, host.address, host.port, key);
    this.#log.warn(
      { host: host.name, fingerprint, type: keyType(key), knownHosts },
      'ssh host key accepted and added to known_hosts',
    );
    return true;
  };
}

function algorithmsFor(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}
