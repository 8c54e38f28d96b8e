import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.ts';

/** A server the tests started: stopped by its pid, never by name. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** Settles when the process has exited, with its exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: the process gets no chance to clean up, as in a crash. Resolves once it has exited. */
  kill(): Promise<void>;
  /** The last few kilobytes the process wrote to stdout and stderr, for failure messages. */
  output(): string;
}

export interface SpawnServerOptions {
  /** For messages: 'redis-server', 'memcached', 'postgres'. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this OS user (needs root): postgres refuses to run as root. */
  uid?: number;
  gid?: number;
  /** Answers true once the server accepts work; polled every 25 ms until it does. */
  ready: () => Promise<boolean>;
  /** How long to wait for `ready` before killing the process and failing (default 10 s). */
  readyTimeoutMs?: number;
}

const OUTPUT_LIMIT = 8192;
const live = new Set<ChildProcess>();

// A test file that crashes must not leave servers behind: 'exit' handlers run synchronously, so SIGKILL.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Spawns a server and resolves once `ready` answers true; rejects (with the server's own output) when the
 * process exits first or is not ready in time. Harnesses for redis, memcached and postgres share it.
 *
 * @example
 *   const server = await spawnServer({
 *     name: 'redis-server', command: '/usr/bin/redis-server', args: ['--port', String(port)],
 *     ready: () => probeTcp(port, 'PING\r\n', (reply) => reply.includes('+PONG')),
 *   });
 *   await server.stop();
 */
export async function spawnServer(options: SpawnServerOptions): Promise<ServerProcess> {
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  live.add(child);

  let hasExited = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      hasExited = true;
      live.delete(child);
      resolve(code);
    });
    child.once('error', (err) => {
      collect(Buffer.from(`\n${err.message}`));
      hasExited = true;
      live.delete(child);
      resolve(null);
    });
  });

  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (hasExited) return;
    if (child.pid !== undefined) process.kill(child.pid, sig);
    const result = await Promise.race([
      exited.then(() => 'exited' as const),
      sleep(graceMs, 'late' as const, { ref: false }),
    ]);
    if (result === 'late' && !hasExited && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  };

  const server: ServerProcess = {
    name: options.name,
    pid: child.pid ?? -1,
    exited,
    running: () => !hasExited,
    stop: (graceMs = 5000) => signal('SIGTERM', graceMs),
    kill: () => signal('SIGKILL', 5000),
    output: () => output,
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 10_000);
  for (;;) {
    if (hasExited) {
      const code = await exited;
      throw new Error(`${options.name} exited (code ${code}) before it was ready:\n${output.trim()}`);
    }
    if (await options.ready().catch(() => false)) return server;
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(
        `${options.name} was not ready after ${options.readyTimeoutMs ?? 10_000} ms:\n${output.trim()}`,
      );
    }
    await sleep(25);
  }
}

/**
 * Connects to 127.0.0.1:`port`, writes `request`, and answers whether a reply satisfying `expect` arrived
 * within `timeoutMs`. Refused connections and timeouts answer false: it is a readiness probe.
 *
 * @example
 *   await probeTcp(6379, 'PING\r\n', (reply) => reply.includes('+PONG'));
 */
export function probeTcp(
  port: number,
  request: string | Buffer,
  expect: (reply: string) => boolean,
  timeoutMs = 1000,
): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (expect(reply)) done(true);
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(expect(reply)));
  });
}

/** A server the tests can crash and bring back on the same port. */
export interface RestartableServer {
  readonly port: number;
  /** The pid of the current process (it changes on `restart`). */
  readonly pid: number;
  /** Stops the server for good (then runs `cleanup`); calling it twice is harmless. */
  stop(): Promise<void>;
  /** SIGKILL: a crash; `restart` brings the server back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port, stopping it first if it still runs. */
  restart(): Promise<void>;
}

/**
 * Starts `spawnOn(port)` on a free loopback port, picking another one when the port was taken between
 * freePort() and the bind (`inUse` matches that error), and gives the stop/kill/restart lifecycle every server
 * harness shares. `cleanup` runs after the final stop, and when the start fails.
 *
 * @example
 *   const life = await startRestartable('memcached', (port) => spawnServer({ ... }), { inUse: /in use/ });
 */
export async function startRestartable(
  name: string,
  spawnOn: (port: number) => Promise<ServerProcess>,
  options: { inUse: RegExp; attempts?: number; cleanup?: () => Promise<void> },
): Promise<RestartableServer> {
  const attempts = options.attempts ?? 3;
  let port = 0;
  let current: ServerProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    port = await freePort();
    try {
      current = await spawnOn(port);
    } catch (err) {
      if (!options.inUse.test((err as Error).message) || attempt >= attempts) {
        await options.cleanup?.();
        throw err;
      }
    }
  }
  let server: ServerProcess = current;
  let stopped = false;
  return {
    port,
    get pid() {
      return server.pid;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await options.cleanup?.();
    },
    async kill() {
      await server.kill();
    },
    async restart() {
      if (stopped) throw new Error(`${name} was stopped (and its files removed); start a new one`);
      await server.stop();
      server = await spawnOn(port);
    },
  };
}
