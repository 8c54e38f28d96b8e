import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { probeTcp, spawnServer, startRestartable } from './server-process.ts';

/** A dynalite (DynamoDB emulator) the test started as a child process on a free loopback port. */
export interface DynaliteServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** `dynamodb://<table>?region=us-east-1&endpoint=<endpoint>` for a table name. */
  url(table: string): string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server and removes its data directory. Calling it twice is harmless. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; with `persist` the data (LevelDB on disk) stays for `restart`. */
  kill(): Promise<void>;
  /** Starts it again on the same port (and data, with `persist`; else empty). */
  restart(): Promise<void>;
}

const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts dynalite on 127.0.0.1, tables ACTIVE at once, in memory; with `persist` its data is on disk, so a
 * kill and restart keeps the tables and items. The AWS SDK needs credentials even for an emulator: the caller sets fake ones in the env
 * (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), which `fakeAwsCredentials()` does.
 *
 * @example
 *   fakeAwsCredentials();
 *   const dynalite = await startDynalite({ persist: true });
 *   const store = new DynamoDbStore({ url: dynalite.url('sessions'), connectTimeout: 1000, prefix: 'test' });
 */
export async function startDynalite(options: { persist?: boolean } = {}): Promise<DynaliteServer> {
  const cli = join(dirname(createRequire(import.meta.url).resolve('dynalite/package.json')), 'cli.js');
  const dir = await mkdtemp(join(tmpdir(), 'clones-dynalite-'));
  liveDirs.add(dir);
  const spawnOn = (port: number) =>
    spawnServer({
      name: 'dynalite',
      command: process.execPath,
      args: [
        cli,
        ...['--host', '127.0.0.1', '--port', String(port), '--createTableMs', '0'],
        ...(options.persist ? ['--path', dir] : []),
      ],
      ready: () => probeTcp(port, 'GET / HTTP/1.0\r\n\r\n', (reply) => reply.startsWith('HTTP/1.')),
    });

  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  const life = await startRestartable('dynalite', spawnOn, { inUse: /EADDRINUSE/, cleanup });
  const port = life.port;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    url: (table) => `dynamodb://${table}?region=us-east-1&endpoint=${encodeURIComponent(endpoint)}`,
    port,
    get pid() {
      return life.pid;
    },
    stop: life.stop,
    kill: life.kill,
    restart: life.restart,
  };
}

/** Fake AWS credentials for the emulator, set only where none are configured. */
export function fakeAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= 'clones-test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'clones-test-secret';
}
