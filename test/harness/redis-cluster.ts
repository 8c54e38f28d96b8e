import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ensureBinary } from './ensure-binary.ts';
import { freePort } from './free-port.ts';
import { probeTcp, type ServerProcess, spawnServer } from './server-process.ts';

const run = promisify(execFile);

/** One redis-server (or redis-sentinel) of a set the test started. */
export interface RedisNodeProcess {
  readonly port: number;
  readonly pid: number;
  /** SIGKILL: a crash. The node is not restarted. */
  kill(): Promise<void>;
}

/** A cluster node: it can also come back after a kill, on its port, with its node id and slots (not its data). */
export interface RedisClusterNode extends RedisNodeProcess {
  restart(): Promise<void>;
}

/**
 * A 3-master Redis Cluster on loopback ports, no replicas. `cluster-require-full-coverage no`: while a master is
 * down, the slots of the other two keep serving.
 */
export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>` */
  readonly url: string;
  readonly nodes: readonly RedisClusterNode[];
  /** Stops every node by its pid and removes their directories. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/** One master, one replica and three sentinels watching the master as `m` (quorum 2). */
export interface RedisSentinelSet {
  /** `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/m` */
  readonly url: string;
  readonly masterName: string;
  readonly master: RedisNodeProcess;
  readonly replica: RedisNodeProcess;
  readonly sentinels: readonly RedisNodeProcess[];
  /** The port the sentinels currently name as the master (it changes after a failover). */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts three cluster-enabled redis-servers on free loopback ports, joins them with `redis-cli --cluster
 * create` (no replicas) and resolves once every node reports `cluster_state:ok`.
 *
 * @example
 *   const cluster = await startRedisCluster();
 *   const store = new RedisStore({ url: cluster.url, connectTimeout: 2000, prefix: 'test' });
 *   await cluster.stop();
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const binary = ensureBinary('redis-server');
  const cli = ensureBinary('redis-cli', 'redis-tools');
  const dir = await tempDir('clones-redis-cluster-');
  const started: ServerProcess[] = [];
  const ports: number[] = [];
  const respawn: (() => Promise<ServerProcess>)[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => s.stop()));
    await removeDir(dir);
  };
  try {
    for (let i = 0; i < 3; i++) {
      const nodeDir = join(dir, `node-${i}`);
      // The bus port defaults to port + 10000, which may be taken or past 65535: pick it too.
      const spawnNode = async (port: number, busPort: number) =>
        spawnServer({
          name: `redis-server (cluster node ${i})`,
          command: binary,
          args: [
            ...['--bind', '127.0.0.1', '--port', String(port), '--cluster-port', String(busPort)],
            ...['--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf')],
            ...['--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no'],
            ...['--dir', await ensureDir(nodeDir), '--save', '', '--appendonly', 'no'],
            ...['--daemonize', 'no', '--logfile', ''],
          ],
          ready: () => ping(port),
        });
      let busPort = 0;
      const { port, server } = await startOnFreePort(async (port) => {
        busPort = await freePort();
        return spawnNode(port, busPort);
      });
      started.push(server);
      ports.push(port);
      // The same ports and nodes.conf: the node rejoins with its id and slots (its data is gone: no persistence).
      respawn.push(() => spawnNode(port, busPort));
    }
    await run(cli, [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await waitFor('cluster_state:ok on every node', 20_000, async () => {
      const ok = await Promise.all(
        ports.map((p) => probeTcp(p, 'CLUSTER INFO\r\n', (r) => r.includes('cluster_state:ok'))),
      );
      return ok.every(Boolean);
    });
  } catch (err) {
    await stop();
    throw err;
  }
  let stopped = false;
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes: ports.map((port, i) => ({
      port,
      get pid() {
        return (started[i] as ServerProcess).pid;
      },
      kill: () => (started[i] as ServerProcess).kill(),
      async restart() {
        if ((started[i] as ServerProcess).running()) throw new Error(`cluster node ${i} is still running`);
        started[i] = await (respawn[i] as () => Promise<ServerProcess>)();
      },
    })),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stop();
    },
  };
}

/**
 * Starts a master, a replica of it, and three sentinels monitoring it as `m` with quorum 2 and a 1 s
 * down-after, and resolves once every sentinel sees the replica and the two other sentinels, so a failover
 * can happen from then on.
 *
 * @example
 *   const set = await startRedisSentinel();
 *   await set.master.kill(); // the sentinels promote the replica within a few seconds
 *   await set.stop();
 */
export async function startRedisSentinel(): Promise<RedisSentinelSet> {
  const binary = ensureBinary('redis-server');
  const dir = await tempDir('clones-redis-sentinel-');
  const masterName = 'm';
  const started: ServerProcess[] = [];
  const stop = async () => {
    // Sentinels first, so they do not react to the data nodes going away.
    await Promise.all(started.slice(2).map((s) => s.stop()));
    await Promise.all(started.slice(0, 2).map((s) => s.stop()));
    await removeDir(dir);
  };
  const dataNode = async (name: string, extra: string[]) =>
    startOnFreePort(async (port) =>
      spawnServer({
        name,
        command: binary,
        args: [
          ...['--bind', '127.0.0.1', '--port', String(port), '--dir', await ensureDir(join(dir, name))],
          ...['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', ...extra],
        ],
        ready: () => ping(port),
      }),
    );
  try {
    const master = await dataNode('master', []);
    started.push(master.server);
    const replica = await dataNode('replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    started.push(replica.server);
    await waitFor('the replica to sync', 10_000, () =>
      probeTcp(replica.port, 'INFO replication\r\n', (r) => r.includes('master_link_status:up')),
    );
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinelDir = await ensureDir(join(dir, `sentinel-${i}`));
      const conf = join(sentinelDir, 'sentinel.conf');
      const sentinel = await startOnFreePort(async (port) => {
        // Sentinel rewrites its config file (the epoch, the peers it found): one file per sentinel.
        await writeFile(
          conf,
          [
            'bind 127.0.0.1',
            `port ${port}`,
            `dir ${sentinelDir}`,
            `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${masterName} 1000`,
            `sentinel failover-timeout ${masterName} 5000`,
            `sentinel parallel-syncs ${masterName} 1`,
            '',
          ].join('\n'),
        );
        return spawnServer({
          name: `redis-sentinel ${i}`,
          command: binary,
          args: [conf, '--sentinel', '--daemonize', 'no', '--logfile', ''],
          ready: () => ping(port),
        });
      });
      started.push(sentinel.server);
      sentinelPorts.push(sentinel.port);
    }
    await waitFor('every sentinel to see the replica and its two peers', 20_000, async () => {
      const ok = await Promise.all(
        sentinelPorts.map((p) =>
          probeTcp(p, `SENTINEL master ${masterName}\r\n`, (r) => {
            const field = (name: string) => new RegExp(`${name}\\r\\n\\$\\d+\\r\\n(\\d+)`).exec(r)?.[1];
            return field('num-slaves') === '1' && field('num-other-sentinels') === '2';
          }),
        ),
      );
      return ok.every(Boolean);
    });
    let stopped = false;
    return {
      url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${masterName}`,
      masterName,
      master: nodeOf(master.server, master.port),
      replica: nodeOf(replica.server, replica.port),
      sentinels: started.slice(2).map((s, i) => nodeOf(s, sentinelPorts[i] as number)),
      async currentMasterPort() {
        for (const p of sentinelPorts) {
          let reply = '';
          const ok = await probeTcp(p, `SENTINEL get-master-addr-by-name ${masterName}\r\n`, (r) => {
            reply = r;
            return /^\*2\r\n\$\d+\r\n[^\r]+\r\n\$\d+\r\n\d+\r\n/.test(r);
          });
          if (ok) return Number(reply.split('\r\n')[4]);
        }
        throw new Error('no sentinel answered');
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function nodeOf(server: ServerProcess, port: number): RedisNodeProcess {
  return { port, pid: server.pid, kill: () => server.kill() };
}

/** Another process may take a free port before we bind it: pick another one and try again. */
async function startOnFreePort(
  spawn: (port: number) => Promise<ServerProcess>,
): Promise<{ port: number; server: ServerProcess }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { port, server: await spawn(port) };
    } catch (err) {
      if (!/address already in use/i.test((err as Error).message) || attempt >= 3) throw err;
    }
  }
}

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

function ping(port: number): Promise<boolean> {
  return probeTcp(port, 'PING\r\n', (reply) => reply.includes('+PONG'));
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}
