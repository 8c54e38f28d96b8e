import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ensureBinary } from './ensure-binary.ts';
import { probeTcp, spawnServer, startRestartable } from './server-process.ts';

/** A redis-server the test started on a free loopback port, with its own temporary directory. */
export interface RedisServer {
  /** `redis://[:password@]127.0.0.1:<port>`, ready for a store or a client. */
  readonly url: string;
  readonly port: number;
  /** The pid of the current process (it changes on `restart`). */
  readonly pid: number;
  /** The data directory (`--dir`), kept across `kill` and `restart`, removed by `stop`. */
  readonly dir: string;
  /** Shuts the server down, waits for it to exit and removes its directory. Calling it twice is harmless. */
  stop(): Promise<void>;
  /** SIGKILL: simulates a crash; the directory stays so `restart` can bring the server back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and directory (stopping it first if it still runs). */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** Persist every write to the append-only file before answering (`--appendfsync always`). */
  appendonly?: boolean;
  /** Require this password (`--requirepass`); the `url` carries it. */
  password?: string;
  /** Serve TLS only, with a self-signed certificate made by openssl; the `url` is `rediss://...?ca=<pem>`. */
  tls?: boolean;
}

const liveDirs = new Set<string>();

// A test file that fails before its after() hook must not leave data directories behind (server-process.ts
// kills the servers themselves on exit).
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts redis-server on 127.0.0.1 and a free port, with no RDB snapshots, and resolves once it answers PING.
 *
 * @example
 *   const redis = await startRedis({ appendonly: true });
 *   const store = new RedisStore({ url: redis.url, connectTimeout: 1000, prefix: 'test' });
 *   await redis.kill(); // crash
 *   await redis.restart(); // back, same port and data
 *   await redis.stop();
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = ensureBinary('redis-server');
  const dir = await mkdtemp(join(tmpdir(), 'clones-redis-'));
  liveDirs.add(dir);
  const password = options.password;

  const tls = options.tls ? makeCertificate(dir) : undefined;
  const spawnOn = (port: number) => {
    const args = ['--bind', '127.0.0.1', '--dir', dir, '--save', ''];
    if (tls) {
      args.push('--port', '0', '--tls-port', String(port), '--tls-auth-clients', 'no');
      args.push('--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.cert);
    } else {
      args.push('--port', String(port));
    }
    args.push('--daemonize', 'no', '--databases', '16', '--logfile', '');
    if (options.appendonly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    else args.push('--appendonly', 'no');
    if (password !== undefined) args.push('--requirepass', password);
    const ready = () => (tls ? pingTls(port, password, tls.cert) : ping(port, password));
    return spawnServer({ name: 'redis-server', command: binary, args, ready });
  };

  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  const life = await startRestartable('redis-server', spawnOn, { inUse: /address already in use/i, cleanup });
  const port = life.port;
  const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
  return {
    url: tls
      ? `rediss://${auth}127.0.0.1:${port}?ca=${encodeURIComponent(tls.cert)}`
      : `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return life.pid;
    },
    stop: life.stop,
    kill: life.kill,
    restart: life.restart,
  };
}

/** PING (after AUTH when a password is set) answered with PONG: the server is up and has loaded its data. */
function ping(port: number, password: string | undefined): Promise<boolean> {
  const request = password === undefined ? 'PING\r\n' : `${resp(['AUTH', password])}${resp(['PING'])}`;
  return probeTcp(port, request, (reply) => reply.includes('+PONG'));
}

/** The same probe over TLS, trusting only the server's own certificate. */
function pingTls(port: number, password: string | undefined, caFile: string): Promise<boolean> {
  const request = password === undefined ? 'PING\r\n' : `${resp(['AUTH', password])}${resp(['PING'])}`;
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(caFile) }, () =>
      socket.write(request),
    );
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('data', (d) => {
      reply += d;
      if (reply.includes('+PONG')) done(true);
    });
    socket.on('error', () => done(false));
  });
}

/** A self-signed certificate for 127.0.0.1, made once per server in its directory. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'tls-cert.pem');
  const key = join(dir, 'tls-key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1'].concat([
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]),
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function resp(parts: string[]): string {
  return `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
}
