import { createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { ClonesError, hostStepFailed } from '../errors.ts';
import { logger as rootLogger } from '../logger.ts';
import { checkHost, type HostSpec } from './host-spec.ts';
import { type ExecOptions, type ExecResult, sshExec } from './ssh-exec.ts';
import { positiveInt, type ResolvedSshOptions, resolveSshOptions, type SshOptions } from './ssh-options.ts';
import { SshPool } from './ssh-pool.ts';

/** What `eachHost` got from one host: its value, or the ClonesError it failed with. */
export type HostResult<T> =
  | { host: HostSpec; ok: true; value: T }
  | { host: HostSpec; ok: false; error: ClonesError };

/**
 * SSH to the fleet's hosts, as Capistrano and Kamal do it: one pooled connection per host (reconnected when it
 * drops), key-based auth, host keys checked against a known_hosts file (unknown refused unless accepted
 * explicitly, changed always refused), at most MAX_CHANNELS commands at once per host, and every failure a
 * ClonesError naming the host and the step. The pool is ssh-pool.ts, connecting ssh-connection.ts (host keys:
 * host-key-verifier.ts), and one command on a channel ssh-exec.ts.
 *
 * @example
 *   const ssh = new SshTransport({ knownHosts: '~/.ssh/known_hosts' });
 *   const host = { name: 'web-1', user: 'deploy', address: '10.0.0.11', port: 22, identity: '/home/me/.ssh/id_ed25519', dir: 'clones' };
 *   const { stdout } = await ssh.exec(host, 'node --version', { step: 'setup: check node' });
 *   const results = await ssh.eachHost(hosts, (h) => ssh.exec(h, 'uptime', { step: 'uptime' }));
 *   await ssh.close();
 */
export class SshTransport {
  readonly options: ResolvedSshOptions;
  readonly #log: Logger;
  readonly #pool: SshPool;

  constructor(options: SshOptions) {
    this.options = resolveSshOptions(options);
    this.#log = (options.logger ?? rootLogger).child({ part: 'ssh' });
    this.#pool = new SshPool(this.options, this.#log);
  }

  /**
   * Runs a shell command on the host (build it with `shellQuote` so arguments stay arguments). Rejects with
   * CLONES_HOST_STEP_FAILED (exit code and last stderr lines) unless `allowFailure`, CLONES_HOST_UNREACHABLE,
   * CLONES_HOST_AUTH_FAILED, CLONES_HOST_KEY_* or CLONES_HOST_STEP_TIMEOUT, each naming host and step.
   *
   * @example
   *   await ssh.exec(host, shellQuote(['mkdir', '-p', host.dir]), { step: 'setup: make dir' });
   *   await ssh.exec(host, 'tar -x -C /srv/app', { step: 'ship', stdin: tarStream });
   */
  async exec(host: HostSpec, command: string, opts: ExecOptions): Promise<ExecResult> {
    checkHost(host);
    const release = await this.#pool.acquire(host);
    try {
      const client = await this.#pool.connect(host, opts.step);
      const exec = (again: string, o: ExecOptions) => this.exec(host, again, o);
      return await sshExec({ client, host, log: this.#log, exec }, command, opts);
    } finally {
      release();
    }
  }

  /**
   * Opens a port on 127.0.0.1 whose connections are forwarded over SSH to `remoteHost:remotePort` as seen from
   * the host (an agent bound on the host's own address, or its loopback). `close()` stops listening and ends
   * the forwarded connections.
   *
   * @example
   *   const tunnel = await ssh.forward(host, host.address, 7077);
   *   await fetch(`http://127.0.0.1:${tunnel.port}/state`);
   *   await tunnel.close();
   */
  async forward(
    host: HostSpec,
    remoteHost: string,
    remotePort: number,
  ): Promise<{ port: number; close(): Promise<void> }> {
    checkHost(host);
    const step = `forward to ${remoteHost}:${remotePort}`;
    await this.#pool.connect(host, step);
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.pause();
      this.#pool
        .connect(host, step)
        .then((client) =>
          client.forwardOut('127.0.0.1', socket.remotePort ?? 0, remoteHost, remotePort, (err, channel) => {
            if (err) {
              this.#log.warn({ host: host.name, err: err.message }, `ssh ${step}: channel refused`);
              socket.destroy();
              return;
            }
            channel.on('error', () => socket.destroy());
            channel.once('close', () => socket.destroy());
            socket.once('close', () => channel.close());
            socket.pipe(channel).pipe(socket);
            socket.resume();
          }),
        )
        .catch((err: unknown) => {
          this.#log.warn({ host: host.name, err: (err as Error).message }, `ssh ${step}: no connection`);
          socket.destroy();
        });
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    return {
      port,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
  }

  /**
   * Runs `fn` for every host, at most `limit` (default `parallel`) at once, and waits for all of them, as Kamal
   * does: a failing host never stops the others. Results come in the order of `hosts`.
   *
   * @example
   *   const results = await ssh.eachHost(hosts, (h) => ssh.exec(h, 'node -v', { step: 'setup: check node' }));
   *   const failed = results.filter((r) => !r.ok);
   */
  async eachHost<T>(
    hosts: HostSpec[],
    fn: (host: HostSpec) => Promise<T>,
    limit?: number,
  ): Promise<HostResult<T>[]> {
    const width = limit ?? this.options.parallel;
    positiveInt('limit', width, 1);
    const results: HostResult<T>[] = new Array(hosts.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < hosts.length; i = next++) {
        const host = hosts[i]!;
        try {
          results[i] = { host, ok: true, value: await fn(host) };
        } catch (err) {
          const error =
            err instanceof ClonesError
              ? err
              : hostStepFailed(host.name, 'eachHost', (err as Error)?.message ?? String(err));
          results[i] = { host, ok: false, error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, hosts.length) }, worker));
    return results;
  }

  /**
   * Ends every connection. Idempotent; the transport cannot be used afterwards.
   *
   * @example
   *   await ssh.close();
   */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
