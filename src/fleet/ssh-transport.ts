import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import {
  ClonesError,
  hostAuthFailed,
  hostKeyChanged,
  hostKeyUnknown,
  hostStepFailed,
  hostStepTimeout,
  hostUnreachable,
  invalidOption,
} from '../errors.ts';
import { logger as rootLogger } from '../logger.ts';
import { addKnownHost, checkHostKey, hostKeyFingerprint, keyType, knownKeyTypes } from './known-hosts.ts';

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

export interface SshOptions {
  /** The known_hosts file (OpenSSH format) host keys are checked against. */
  knownHosts: string;
  /** Append the key of a host known_hosts does not name (like `accept-new`); a changed key is refused anyway. */
  acceptNewHostKeys?: boolean;
  /** Hosts worked on at once by `eachHost` (default 10). */
  parallel?: number;
  /** Milliseconds for TCP connect plus the SSH handshake and auth (default 10000). */
  readyTimeout?: number;
  /** Milliseconds between keepalives on an idle connection (default 15000); 3 unanswered ones drop it. */
  keepaliveInterval?: number;
  logger?: Logger;
}

export interface ExecOptions {
  /** What this command is for, named in every error: `setup: check node`, `ship release 1a2b3c`. */
  step: string;
  /** Sent as the command's standard input, then EOF. Without it, the command gets EOF at once. */
  stdin?: Buffer | NodeJS.ReadableStream;
  /** Milliseconds before the command is signalled (KILL) and the call fails with CLONES_HOST_STEP_TIMEOUT. */
  timeout?: number;
  /** Resolve with the exit code instead of failing when it is not 0. */
  allowFailure?: boolean;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type HostResult<T> =
  | { host: HostSpec; ok: true; value: T }
  | { host: HostSpec; ok: false; error: ClonesError };

/** Defaults for SshOptions, in one place. */
export const sshDefaults = Object.freeze({
  acceptNewHostKeys: false,
  parallel: 10,
  readyTimeout: 10_000,
  keepaliveInterval: 15_000,
});

/**
 * Channels one connection may have open at once. OpenSSH's MaxSessions is 10 and the 11th is refused
 * (ssh2 #1190); staying under it leaves room for a person's own session multiplexed on the same sshd.
 */
export const MAX_CHANNELS = 8;

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
type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

/** Why a connection failed, turned into an error naming the step of each call that waited for it. */
class ConnectFailure extends Error {
  constructor(readonly toError: (step: string) => ClonesError) {
    super('ssh connect failed');
  }
}

interface Connection {
  client: Client;
  ready: Promise<Client>;
  closed: boolean;
}

interface Gate {
  active: number;
  waiters: Array<() => void>;
}

const STDERR_TAIL_LINES = 10;
/** How often a session refused at the MaxSessions limit is tried again. */
const OPEN_ATTEMPTS = 25;
/** The first stdout line of a command run with a timeout: its process group, so it can be killed. */
const PID_MARK = 'clones-pid:';
const STDERR_TAIL_CHARS = 2000;

/**
 * SSH to the fleet's hosts, as Capistrano and Kamal do it: one pooled connection per host (reconnected when it
 * drops), key-based auth, host keys checked against a known_hosts file (unknown refused unless accepted
 * explicitly, changed always refused), at most MAX_CHANNELS commands at once per host, and every failure a
 * ClonesError naming the host and the step.
 *
 * @example
 *   const ssh = new SshTransport({ knownHosts: '~/.ssh/known_hosts' });
 *   const host = { name: 'web-1', user: 'deploy', address: '10.0.0.11', port: 22, identity: '/home/me/.ssh/id_ed25519', dir: 'clones' };
 *   const { stdout } = await ssh.exec(host, 'node --version', { step: 'setup: check node' });
 *   const results = await ssh.eachHost(hosts, (h) => ssh.exec(h, 'uptime', { step: 'uptime' }));
 *   await ssh.close();
 */
export class SshTransport {
  readonly options: Readonly<Required<Omit<SshOptions, 'logger'>>>;
  readonly #log: Logger;
  readonly #connections = new Map<string, Connection>();
  readonly #gates = new Map<string, Gate>();
  #closed = false;

  constructor(options: SshOptions) {
    if (typeof options?.knownHosts !== 'string' || options.knownHosts === '') {
      throw invalidOption(
        'ssh.knownHosts',
        'a known_hosts file path is required (host keys are always checked)',
      );
    }
    const o = { ...sshDefaults, ...stripUndefined(options) };
    positiveInt('ssh.parallel', o.parallel, 1);
    positiveInt('ssh.readyTimeout', o.readyTimeout, 100);
    positiveInt('ssh.keepaliveInterval', o.keepaliveInterval, 0);
    if (typeof o.acceptNewHostKeys !== 'boolean')
      throw invalidOption('ssh.acceptNewHostKeys', 'must be true or false');
    this.options = Object.freeze({
      knownHosts: options.knownHosts,
      acceptNewHostKeys: o.acceptNewHostKeys,
      parallel: o.parallel,
      readyTimeout: o.readyTimeout,
      keepaliveInterval: o.keepaliveInterval,
    });
    this.#log = (options.logger ?? rootLogger).child({ part: 'ssh' });
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
    const step = opts.step;
    // sshd ignores the SSH "signal" request for most sessions, so a command that may need stopping says first
    // which process group it runs in: the session's shell is a group leader (sshd calls setsid).
    const line = opts.timeout === undefined ? command : `printf '${PID_MARK}%s\\n' $$; ${command}`;
    const release = await this.#acquire(host);
    try {
      const client = await this.#connect(host, step);
      const session = await this.#openSession(host, step, client, line);
      return await this.#run(host, step, session, opts);
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
    await this.#connect(host, step);
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.pause();
      this.#connect(host, step)
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

  /** The pooled connection to a host, made on first use and again after it dropped. */
  async #connect(host: HostSpec, step: string): Promise<Client> {
    if (this.#closed) throw hostStepFailed(host.name, step, 'the SSH transport was closed');
    const key = poolKey(host);
    let conn = this.#connections.get(key);
    if (!conn || conn.closed) {
      conn = this.#open(host);
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

  #open(host: HostSpec): Connection {
    const { knownHosts, acceptNewHostKeys, readyTimeout, keepaliveInterval } = this.options;
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
    // Known key types first, as OpenSSH does, so a known host is not taken for a changed one.
    const known = new Set(knownKeyTypes(knownHosts, host.address, host.port).flatMap(algorithmsFor));
    const serverHostKey = [
      ...HOST_KEY_ALGORITHMS.filter((a) => known.has(a)),
      ...HOST_KEY_ALGORITHMS.filter((a) => !known.has(a)),
    ];
    let refusal: ClonesError | undefined;
    const conn: Connection = { client, closed: false, ready: Promise.resolve(client) };
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
        this.#log.debug({ host: host.name }, 'ssh connected');
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (settled) {
          this.#log.warn({ host: host.name, err: err.message }, 'ssh connection lost');
          conn.closed = true;
          return;
        }
        const saved = refusal;
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
        fail((step) => refusal ?? hostUnreachable(host.name, step, gone));
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
        algorithms: { serverHostKey: serverHostKey as HostKeyAlgorithm[] },
        hostVerifier: (key: Buffer) => {
          const verdict = checkHostKey(knownHosts, host.address, host.port, key);
          const fingerprint = hostKeyFingerprint(key);
          if (verdict.status === 'known') return true;
          if (verdict.status === 'changed') {
            refusal = hostKeyChanged(host.name, fingerprint, knownHosts, verdict.line);
            this.#log.error({ host: host.name, fingerprint }, 'ssh host key CHANGED: refused');
            return false;
          }
          if (!acceptNewHostKeys) {
            refusal = hostKeyUnknown(host.name, fingerprint, knownHosts);
            return false;
          }
          addKnownHost(knownHosts, host.address, host.port, key);
          this.#log.warn(
            { host: host.name, fingerprint, type: keyType(key), knownHosts },
            'ssh host key accepted and added to known_hosts',
          );
          return true;
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        fail(() =>
          invalidOption(`host ${host.name}: identity`, `${host.identity}: ${(err as Error).message}`),
        );
      }
    });
    // A failure no caller waits for yet must not become an unhandled rejection.
    conn.ready.catch(() => {});
    return conn;
  }

  /** Waits for a free channel slot on the host's connection; the returned function gives it back. */
  async #acquire(host: HostSpec): Promise<() => void> {
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

  /**
   * Opens an exec channel. sshd frees a closed session's slot a moment after the close, so a refusal right at
   * the MaxSessions limit is retried briefly; the connection being gone is not. The exit is recorded from the
   * moment the channel exists: a fast command's exit status can arrive in the same read as the reply to the
   * exec request, and ssh2 emits it then, before any later listener could see it.
   */
  async #openSession(host: HostSpec, step: string, client: Client, command: string): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise<Session>((resolve, reject) =>
          client.exec(command, (err, channel) => {
            if (err) return reject(err);
            const exit: Session['exit'] = {};
            channel.on('exit', (code: number | null, signal?: string) => {
              if (typeof code === 'number') exit.code = code;
              if (signal) exit.signal = signal;
            });
            resolve({ channel, exit });
          }),
        );
      } catch (err) {
        const refused = /open fail/i.test((err as Error).message);
        if (!refused || attempt >= OPEN_ATTEMPTS) throw hostUnreachable(host.name, step, err);
        await sleep(20 * attempt);
      }
    }
  }

  /** Feeds stdin, collects output, and settles on the channel's close with its exit status. */
  #run(host: HostSpec, step: string, session: Session, opts: ExecOptions): Promise<ExecResult> {
    const { channel: stream, exit } = session;
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        fn();
      };
      let group = 0;
      const timer =
        opts.timeout === undefined
          ? undefined
          : setTimeout(() => {
              settle(() => reject(hostStepTimeout(host.name, step, opts.timeout!)));
              stream.close();
              if (group > 0) {
                const kill = `kill -KILL -- -${group} 2>/dev/null || kill -KILL ${group} 2>/dev/null; true`;
                this.exec(host, kill, { step: `${step}: stop after timeout` }).catch((err: Error) =>
                  this.#log.warn({ host: host.name, err: err.message }, 'could not stop a timed-out command'),
                );
              }
            }, opts.timeout);
      let head = opts.timeout !== undefined;
      stream.on('data', (d: Buffer) => {
        stdout.push(d);
        if (!head) return;
        const text = Buffer.concat(stdout).toString('latin1');
        const end = text.indexOf('\n');
        if (end < 0) return;
        head = false;
        if (text.startsWith(PID_MARK)) group = Number(text.slice(PID_MARK.length, end)) || 0;
      });
      stream.stderr.on('data', (d: Buffer) => stderr.push(d));
      // Writing stdin to a command that already exited fails: its exit status is what matters.
      stream.on('error', () => {});
      stream.once('close', () => {
        let out = Buffer.concat(stdout).toString('utf8');
        if (opts.timeout !== undefined && out.startsWith(PID_MARK)) out = out.slice(out.indexOf('\n') + 1);
        const err = Buffer.concat(stderr).toString('utf8');
        const { code, signal } = exit;
        if (code === undefined && signal === undefined) {
          return settle(() =>
            reject(hostUnreachable(host.name, step, new Error('the SSH connection was lost'))),
          );
        }
        const status = code ?? 128;
        if (status === 0 || opts.allowFailure)
          return settle(() => resolve({ code: status, stdout: out, stderr: err }));
        settle(() => reject(hostStepFailed(host.name, step, commandFailure(status, err, signal))));
      });
      const input = opts.stdin;
      if (input === undefined) stream.end();
      else if (Buffer.isBuffer(input)) stream.end(input);
      else {
        (input as NodeJS.ReadableStream).once('error', (e: Error) => {
          settle(() => reject(hostStepFailed(host.name, step, `reading the input failed: ${e.message}`)));
          stream.close();
        });
        (input as NodeJS.ReadableStream).pipe(stream);
      }
    });
  }
}

/** An exec channel and its exit, recorded from the channel's first moment. */
interface Session {
  channel: ClientChannel;
  exit: { code?: number; signal?: string };
}

function poolKey(host: HostSpec): string {
  return `${host.user}@${host.address}:${host.port}#${host.identity}`;
}

function algorithmsFor(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

/**
 * The detail of a failed command: how it ended and the last lines of its stderr.
 *
 * @example
 *   throw hostStepFailed(host.name, step, commandFailure(result.code, result.stderr));
 */
export function commandFailure(code: number, stderr: string, signal?: string): string {
  const how = signal ? `was killed by SIG${signal}` : `exited with code ${code}`;
  const tail = stderrTail(stderr);
  return `the command ${how}${tail ? `:\n${tail}` : ''}`;
}

function stderrTail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
  return lines.length > STDERR_TAIL_CHARS ? `...${lines.slice(-STDERR_TAIL_CHARS)}` : lines;
}

function positiveInt(option: string, value: unknown, min: number): void {
  if (!Number.isInteger(value) || (value as number) < min) {
    throw invalidOption(option, `must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
}

function checkHost(host: HostSpec): void {
  const where = `host ${host?.name ?? host?.address ?? '?'}`;
  for (const field of ['name', 'user', 'address', 'identity'] as const) {
    if (typeof host?.[field] !== 'string' || host[field] === '')
      throw invalidOption(`${where}: ${field}`, 'is required');
  }
  if (!Number.isInteger(host.port) || host.port < 1 || host.port > 65535) {
    throw invalidOption(`${where}: port`, `must be 1..65535, got ${JSON.stringify(host.port)}`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
