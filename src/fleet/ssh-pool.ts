import type { Logger } from 'pino';
import type { Client } from 'ssh2';
import { hostStepFailed } from '../errors.ts';
import type { HostSpec } from './host-spec.ts';
import { ConnectFailure, openSshConnection, type SshConnection } from './ssh-connection.ts';
import type { ResolvedSshOptions } from './ssh-options.ts';

/**
 * Channels one connection may have open at once. OpenSSH's MaxSessions is 10 and the 11th is refused
 * (ssh2 #1190); staying under it leaves room for a person's own session multiplexed on the same sshd.
 */
export const MAX_CHANNELS = 8;

/** The channel slots of one host's connection, and who waits for one. */
interface Gate {
  active: number;
  waiters: Array<() => void>;
}

/**
 * One pooled SSH connection per host (user, address, port and key), made on first use and again after it
 * dropped, and at most MAX_CHANNELS channels at once on each.
 *
 * @example
 *   const pool = new SshPool(resolveSshOptions({ knownHosts }), log);
 *   const release = await pool.acquire(host);
 *   try {
 *     const client = await pool.connect(host, 'setup: check node');
 *   } finally {
 *     release();
 *   }
 */
export class SshPool {
  readonly #options: ResolvedSshOptions;
  readonly #log: Logger;
  readonly #connections = new Map<string, SshConnection>();
  readonly #gates = new Map<string, Gate>();
  #closed = false;

  constructor(options: ResolvedSshOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
  }

  /** The pooled connection to a host, made on first use and again after it dropped. */
  async connect(host: HostSpec, step: string): Promise<Client> {
    if (this.#closed) throw hostStepFailed(host.name, step, 'the SSH transport was closed');
    const key = poolKey(host);
    let conn = this.#connections.get(key);
    if (!conn || conn.closed) {
      conn = openSshConnection(host, this.#options, this.#log);
      this.#connections.set(key, conn);
    }
    try {
      return await conn.ready;
    } catch (err) {
      if (this.#connections.get(key) === conn) this.#connections.delete(key);
      if (err instanceof ConnectFailure) throw err.toError(step);
      throw err;
    }
  }

  /** Waits for a free channel slot on the host's connection; the returned function gives it back. */
  async acquire(host: HostSpec): Promise<() => void> {
    const key = poolKey(host);
    let gate = this.#gates.get(key);
    if (!gate) {
      gate = { active: 0, waiters: [] };
      this.#gates.set(key, gate);
    }
    const g = gate;
    if (g.active >= MAX_CHANNELS) await new Promise<void>((resolve) => g.waiters.push(resolve));
    else g.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = g.waiters.shift();
      if (next) next();
      else g.active--;
    };
  }

  /** Ends every connection. Idempotent; the pool makes none afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.closed) return resolve();
            c.client.once('close', () => resolve());
            c.client.end();
            setTimeout(() => {
              c.client.destroy();
              resolve();
            }, 1000).unref();
          }),
      ),
    );
  }
}

function poolKey(host: HostSpec): string {
  return `${host.user}@${host.address}:${host.port}#${host.identity}`;
}
