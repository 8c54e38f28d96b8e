import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Client, type ConnectConfig } from 'ssh2';
import { type ClonesError, hostAuthFailed, hostUnreachable, invalidOption } from '../errors.ts';
import { HostKeyVerifier } from './host-key-verifier.ts';
import type { HostSpec } from './host-spec.ts';
import type { ResolvedSshOptions } from './ssh-options.ts';

/** Why a connection failed, turned into an error naming the step of each call that waited for it. */
export class ConnectFailure extends Error {
  constructor(readonly toError: (step: string) => ClonesError) {
    super('ssh connect failed');
  }
}

/** One SSH connection to a host: ready once the handshake, host key check and auth have passed. */
export interface SshConnection {
  client: Client;
  /** Rejects with a ConnectFailure. */
  ready: Promise<Client>;
  closed: boolean;
}

/**
 * Connects to a host with its key (no password, no keyboard-interactive), the host key checked against
 * known_hosts, keepalives on. Every way it can fail becomes a ConnectFailure carrying the ClonesError to
 * report (unreachable, auth, host key, unreadable identity); a connection lost later only marks it closed,
 * so that the pool makes a new one on next use.
 *
 * @example
 *   const conn = openSshConnection(host, resolveSshOptions({ knownHosts }), log);
 *   const client = await conn.ready;
 */
export function openSshConnection(host: HostSpec, options: ResolvedSshOptions, log: Logger): SshConnection {
  const { readyTimeout, keepaliveInterval } = options;
  const client = new Client();
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(host.identity);
  } catch (err) {
    const why = (err as Error).message;
    const failure = new ConnectFailure(() =>
      invalidOption(`host ${host.name}: identity`, `cannot read ${host.identity}: ${why}`),
    );
    return { client, closed: true, ready: Promise.reject(failure) };
  }
  const hostKeys = new HostKeyVerifier(host, options, log);
  const conn: SshConnection = { client, closed: false, ready: Promise.resolve(client) };
  conn.ready = new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (toError: (step: string) => ClonesError) => {
      conn.closed = true;
      if (!settled) {
        settled = true;
        reject(new ConnectFailure(toError));
      }
    };
    client.once('ready', () => {
      settled = true;
      log.debug({ host: host.name }, 'ssh connected');
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (settled) {
        log.warn({ host: host.name, err: err.message }, 'ssh connection lost');
        conn.closed = true;
        return;
      }
      const saved = hostKeys.refusal;
      if (saved) return fail(() => saved);
      if (err.level === 'client-authentication') {
        return fail((step) => hostAuthFailed(host.name, host.user, host.identity, step));
      }
      if (err.level === 'client-timeout') {
        const timeout = new Error(
          `no SSH answer from ${host.address}:${host.port} within ${readyTimeout} ms`,
        );
        return fail((step) => hostUnreachable(host.name, step, timeout));
      }
      if (/private key|passphrase|unsupported key/i.test(err.message)) {
        return fail(() => invalidOption(`host ${host.name}: identity`, `${host.identity}: ${err.message}`));
      }
      const cause = new Error(`${host.address}:${host.port}: ${err.message}`);
      return fail((step) => hostUnreachable(host.name, step, cause));
    });
    client.once('close', () => {
      conn.closed = true;
      const gone = new Error(`${host.address}:${host.port}: the connection closed before SSH was ready`);
      fail((step) => hostKeys.refusal ?? hostUnreachable(host.name, step, gone));
    });
    const config: ConnectConfig = {
      host: host.address,
      port: host.port,
      username: host.user,
      privateKey,
      readyTimeout,
      keepaliveInterval,
      keepaliveCountMax: 3,
      tryKeyboard: false,
      algorithms: { serverHostKey: hostKeys.algorithms },
      hostVerifier: hostKeys.verify,
    };
    try {
      client.connect(config);
    } catch (err) {
      fail(() => invalidOption(`host ${host.name}: identity`, `${host.identity}: ${(err as Error).message}`));
    }
  });
  // A failure no caller waits for yet must not become an unhandled rejection.
  conn.ready.catch(() => {});
  return conn;
}
