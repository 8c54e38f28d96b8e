// The system under soak: 3 test hosts (network namespaces with sshd) x 2 clones of examples/shop through the
// fleet, the balancer of `clones up` on loopback, a cache host running a Redis Sentinel set (master, replica,
// three sentinels) for sessions plus the harness's plain Redis for the data cache, and a PostgreSQL primary
// with two streaming replicas. PostgreSQL listens on loopback (test/harness/postgres-server.ts); the clones
// reach it through TCP forwarders this process runs on the bridge's address.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { removeTree } from '../../src/fleet/release.ts';
import { childrenOf } from '../../test/harness/children-of.ts';
import { startTestHosts, type TestHosts } from '../../test/harness/hosts.ts';
import { type PostgresCluster, startPostgres } from '../../test/harness/postgres-server.ts';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
const MASTER = 'm';

/** The Redis Sentinel set on the cache host: data nodes by port, sentinels on 26379..26381. */
export interface Sentinel {
  readonly url: string;
  /** The port the sentinels name as master now. */
  master(): Promise<number>;
  /** kill -9 the master, wait until the sentinels name another one, start the old one again as its replica. */
  killMaster(): Promise<{ from: number; to: number }>;
}

/** The balancer engines the soak runs on, one after the other. */
export type SoakEngine = 'builtin' | 'haproxy';

export interface SoakSystem {
  engine: SoakEngine;
  hosts: TestHosts;
  pg: PostgresCluster;
  sentinel: Sentinel;
  /** The app's temp directory (`dir/shop`), where `clones` commands run. */
  dir: string;
  app: string;
  port: number;
  /** Runs the CLI (from the sources) in `dir`. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** kill -9 the `clones up` process (the balancer with it) and start it again on the same port. */
  restartUp(): Promise<void>;
  stop(): Promise<void>;
}

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const cliArgv = ['--conditions=clones-source', '--import', tsx, join(repo, 'bin/clones.js')];

/**
 * Starts everything and resolves once the fleet serves through the balancer on `port`.
 *
 * @example
 *   const system = await startSystem({ log: (l) => process.stdout.write(`${l}\n`) });
 *   await system.stop();
 */
export async function startSystem(options: {
  log: (line: string) => void;
  engine: SoakEngine;
}): Promise<SoakSystem> {
  const { log, engine } = options;
  const cleanups: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    cleanups.length = 0;
  };
  try {
    log('starting 3 test hosts and the cache host ...');
    const hosts = await startTestHosts({ count: 3, cache: true });
    cleanups.push(() => hosts.stop());
    const sentinel = await startSentinel(hosts);
    log(`redis sentinel: ${sentinel.url}`);
    log('starting PostgreSQL primary + 2 streaming replicas ...');
    const pg = await startPostgres({ replicas: 2 });
    cleanups.push(() => pg.stop());
    const forwarders: Server[] = [];
    cleanups.push(() => {
      for (const f of forwarders) f.close();
    });
    const forward = async (url: string) => {
      const target = Number(new URL(url).port);
      const sockets = new Set<import('node:net').Socket>();
      const server = createServer((client) => {
        const upstream = connect({ host: '127.0.0.1', port: target });
        sockets.add(client);
        client.once('close', () => sockets.delete(client));
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        upstream.once('close', () => client.destroy());
        client.once('close', () => upstream.destroy());
      });
      forwarders.push(server);
      await new Promise<void>((resolve) => server.listen(0, hosts.gateway, resolve));
      const port = (server.address() as import('node:net').AddressInfo).port;
      return `postgres://postgres@${hosts.gateway}:${port}/postgres`;
    };
    const primary = await forward(pg.primaryUrl);
    const replicas = await Promise.all(pg.replicaUrls.map(forward));

    const dir = mkdtempSync(join(tmpdir(), 'clones-soak-'));
    cleanups.push(() => removeTree(dir));
    const app = join(dir, 'shop');
    cpSync(join(repo, 'examples/shop'), app, { recursive: true });
    writeFileSync(
      join(app, 'clones.json'),
      JSON.stringify({
        hosts: hosts.hosts.map((h) => ({ name: h.name, address: h.address, user: 'root', clones: 2 })),
        ssh: { identity: hosts.identity, knownHosts: hosts.knownHosts },
      }),
    );
    const env = {
      ...process.env,
      CLONES_LOG_LEVEL: 'error',
      SESSION_STORE: sentinel.url,
      DATABASE_URL: primary,
      DATABASE_REPLICA_URLS: replicas.join(','),
      CACHE_URL: hosts.cache!.redisUrl,
      CLONES_PASS_ENV: 'DATABASE_URL,DATABASE_REPLICA_URLS,CACHE_URL',
    };
    const port = await freeLoopbackPort();
    let up: ChildProcess | undefined;
    const startUp = async () => {
      rmSync(join(dir, '.clones/up.json'), { force: true });
      const args = ['up', 'shop', '--port', String(port), '--drain-timeout', '2s', '--ready-timeout', '30s'];
      args.push('--balancer', engine);
      const child = spawn(process.execPath, [...cliArgv, ...args], { cwd: dir, env, stdio: 'ignore' });
      up = child;
      const deadline = Date.now() + 240_000;
      while (!existsSync(join(dir, '.clones/up.json'))) {
        if (child.exitCode !== null) throw new Error(`clones up exited with ${child.exitCode}`);
        if (Date.now() > deadline) throw new Error('clones up was not ready within 240 s');
        await sleep(100);
      }
    };
    // `clones up` runs haproxy as its child; a kill -9 of `clones up` leaves it running. Those it leaves are
    // stopped here, by pid, once the soak is over (not during it: what they do meanwhile is part of the test).
    const engineChildren = new Map<number, string | undefined>();
    const noteEngineChildren = () => {
      if (up?.pid === undefined) return;
      for (const pid of childrenOf(up.pid, 'haproxy')) {
        // Its working directory (a temporary one `clones up` would have removed on a clean stop) is in `-f`.
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        const config = argv[argv.indexOf('-f') + 1];
        const dir = config?.replace(/\/haproxy\.cfg$/, '');
        engineChildren.set(pid, dir?.startsWith(join(tmpdir(), 'clones-haproxy-')) ? dir : undefined);
      }
    };
    cleanups.push(async () => {
      for (const [pid, dir] of engineChildren) {
        try {
          // SIGTERM: the master stops its workers, then exits.
          process.kill(pid, 'SIGTERM');
          log(`stopped haproxy pid ${pid}, left running by a kill -9 of clones up`);
          for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await sleep(100);
        } catch {
          // Gone already.
        }
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    });
    cleanups.push(async () => {
      if (up && up.exitCode === null) {
        up.kill('SIGTERM');
        const timer = setTimeout(() => up?.kill('SIGKILL'), 20_000);
        await new Promise((r) => up?.once('exit', r));
        clearTimeout(timer);
      }
    });
    log(`clones up: 3 hosts x 2 clones, ${engine} balancer on 127.0.0.1:${port} ...`);
    await startUp();
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [...cliArgv, ...args], { cwd: dir, env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => (stdout += c));
        child.stderr.on('data', (c) => (stderr += c));
        child.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    return {
      engine,
      hosts,
      pg,
      sentinel,
      dir,
      app,
      port,
      cli,
      async restartUp() {
        const old = up;
        noteEngineChildren();
        if (old && old.exitCode === null) {
          old.kill('SIGKILL');
          await new Promise((r) => old.once('exit', r));
        }
        await startUp();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A master (6380), a replica (6381) and three sentinels (26379-26381) in the cache host's namespace. */
async function startSentinel(hosts: TestHosts): Promise<Sentinel> {
  const address = hosts.cache!.address;
  const base = join(hosts.runDir, 'sentinel');
  mkdirSync(base, { recursive: true });
  const nodes = new Map<number, ChildProcess>();
  const cliIn = async (port: number, ...args: string[]) =>
    (await hosts.exec('cache', ['redis-cli', '-h', address, '-p', String(port), ...args])).stdout.trim();
  const until = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`sentinel set: timed out waiting for ${what}`);
      await sleep(200);
    }
  };
  const dataNode = async (port: number, replicaOf?: number) => {
    const dir = join(base, String(port));
    mkdirSync(dir, { recursive: true });
    const args = [
      '--bind',
      address,
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ];
    // A file, not stdout: nobody reads the child's pipe, and a full pipe would block the server.
    args.push('--logfile', join(dir, 'redis.log'));
    if (replicaOf) args.push('--replicaof', address, String(replicaOf));
    nodes.set(port, hosts.spawn('cache', ['redis-server', ...args, '--protected-mode', 'no']));
    await until(`redis ${port}`, async () => (await cliIn(port, 'PING')) === 'PONG');
  };
  await dataNode(6380);
  await dataNode(6381, 6380);
  await until('the replica to sync', async () =>
    (await cliIn(6381, 'INFO', 'replication')).includes('master_link_status:up'),
  );
  const sentinels = [26379, 26380, 26381];
  for (const port of sentinels) {
    const dir = join(base, `s${port}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `bind ${address}`,
        `port ${port}`,
        `dir ${dir}`,
        'protected-mode no',
        `logfile ${join(dir, 'sentinel.log')}`,
        `sentinel monitor ${MASTER} ${address} 6380 2`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        '',
      ].join('\n'),
    );
    hosts.spawn('cache', ['redis-server', conf, '--sentinel']);
  }
  const masterPort = async () =>
    Number((await cliIn(26379, 'SENTINEL', 'get-master-addr-by-name', MASTER)).split('\n')[1]);
  await until('the sentinels to see each other and the replica', async () => {
    const info = await cliIn(26379, 'SENTINEL', 'master', MASTER);
    const field = (name: string) => Number(info.split('\n')[info.split('\n').indexOf(name) + 1]);
    return field('num-other-sentinels') === 2 && field('num-slaves') === 1;
  });
  return {
    url: `redis+sentinel://${sentinels.map((p) => `${address}:${p}`).join(',')}/${MASTER}`,
    master: masterPort,
    async killMaster() {
      const from = await masterPort();
      nodes.get(from)?.kill('SIGKILL');
      await until('the sentinels to promote the replica', async () => (await masterPort()) !== from, 60_000);
      const to = await masterPort();
      await sleep(500);
      await dataNode(from, to);
      return { from, to };
    },
  };
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as import('node:net').AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Reads a file on a host (the hosts share this machine's file system). */
export function hostFile(system: SoakSystem, host: string, path: string): string {
  const h = system.hosts.hosts.find((x) => x.name === host)!;
  return readFileSync(join(h.dir, 'clones', path), 'utf8');
}
