import { userInfo } from 'node:os';
import { ensureBinary } from './ensure-binary.ts';
import { probeTcp, spawnServer, startRestartable } from './server-process.ts';

/** A memcached the test started on a free loopback port. */
export interface MemcachedServer {
  /** `memcached://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>`, as it appears in a multi-server URL. */
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server and waits for it to exit. Calling it twice is harmless. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; `restart` brings it back (empty: memcached keeps nothing). */
  kill(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it still runs). */
  restart(): Promise<void>;
}

/**
 * Starts memcached on 127.0.0.1 and a free port (64 MB, UDP off) and resolves once it answers `version`.
 *
 * @example
 *   const [a, b] = await Promise.all([startMemcached(), startMemcached()]);
 *   const url = `memcached://${a.address},${b.address}`;
 *   await a.kill(); await a.restart(); await a.stop();
 */
export async function startMemcached(): Promise<MemcachedServer> {
  const binary = ensureBinary('memcached');
  const spawnOn = (port: number) => {
    const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-c', '1024'];
    // memcached refuses to run as root without naming the user to run as.
    if (process.getuid?.() === 0) args.push('-u', userInfo().username);
    return spawnServer({
      name: 'memcached',
      command: binary,
      args,
      ready: () => probeTcp(port, 'version\r\n', (reply) => reply.startsWith('VERSION')),
    });
  };

  const life = await startRestartable('memcached', spawnOn, {
    inUse: /address already in use|failed to listen/i,
  });
  const port = life.port;
  return {
    url: `memcached://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    port,
    get pid() {
      return life.pid;
    },
    stop: life.stop,
    kill: life.kill,
    restart: life.restart,
  };
}
