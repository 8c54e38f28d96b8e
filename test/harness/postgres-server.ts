import { type ExecFileSyncOptions, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { childrenOf } from './children-of.ts';
import { ensureBinary } from './ensure-binary.ts';
import { freePort } from './free-port.ts';
import { type ServerProcess, spawnServer } from './server-process.ts';

/** A PostgreSQL 15 primary (and 0-2 streaming replicas) the test started on free loopback ports. */
export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth, loopback only). */
  readonly primaryUrl: string;
  readonly replicaUrls: readonly string[];
  /** The temporary directory holding every data directory, the sockets and the logs; removed by `stop`. */
  readonly dir: string;
  /** Runs one statement on the primary (`'primary'`) or on replica `i` (0-based) and returns its rows. */
  query(on: 'primary' | number, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** `pg_wal_replay_pause()` on replica `i`: it keeps receiving WAL but stops applying it. */
  pauseReplay(i: number): Promise<void>;
  resumeReplay(i: number): Promise<void>;
  /** `recovery_min_apply_delay` on replica `i` (0 removes it): commits become visible `ms` late. */
  setApplyDelay(i: number, ms: number): Promise<void>;
  /** Fast shutdown of the primary (its directory stays); `startPrimary` brings it back on the same port. */
  stopPrimary(): Promise<void>;
  startPrimary(): Promise<void>;
  stopReplica(i: number): Promise<void>;
  startReplica(i: number): Promise<void>;
  /**
   * kill -9 of replica `i`'s postmaster, as in a crash; resolves once its backends have gone too (they exit
   * when they see the postmaster dead), so `startReplica` can start it again at once (crash recovery).
   */
  killReplica(i: number): Promise<void>;
  /** Stops every server and removes the directory. Calling it twice is harmless. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Streaming replicas made with pg_basebackup -R (default 0: a lone primary, the fast mode). */
  replicas?: 0 | 1 | 2;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const START_ATTEMPTS = 3;
const liveDirs = new Set<string>();

// A test file that dies before its after() hook must not leave data directories behind (server-process.ts
// SIGKILLs the servers themselves; their backends exit when they see the postmaster gone).
process.once('exit', () => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts PostgreSQL 15 from initdb on 127.0.0.1 (trust auth, fsync off: throwaway test data), plus `replicas`
 * streaming replicas from pg_basebackup -R, and resolves once every replica streams. As root, the servers run
 * as the `postgres` OS user (initdb refuses root). Every process is our child and is stopped by its pid.
 *
 * @example
 *   const pg = await startPostgres({ replicas: 2 });
 *   await pg.pauseReplay(0);          // replica 0 stops applying WAL
 *   await pg.setApplyDelay(1, 3000);  // replica 1 shows commits 3 s late
 *   await pg.stop();
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
  ensureBinary(`${PG_BIN}/postgres`, 'postgresql');
  const replicaCount = options.replicas ?? 0;
  const owner = osUser();
  const dir = mkdtempSync('/tmp/clones-pg-');
  liveDirs.add(dir);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (binary: string, args: string[], extra: ExecFileSyncOptions = {}) =>
    execFileSync(`${PG_BIN}/${binary}`, args, {
      cwd: dir,
      env: { PATH: process.env.PATH, LANG: 'C', PGHOST: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      ...extra,
    });

  const servers: Node[] = [];
  const cleanup = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  try {
    const primary = new Node('primary', join(dir, 'primary'), dir, owner);
    run('initdb', ['-D', primary.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale']);
    appendFileSync(join(primary.data, 'postgresql.conf'), config(dir, replicaCount));
    writeFileSync(
      join(primary.data, 'pg_hba.conf'),
      'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n',
    );
    servers.push(primary);
    await primary.start();

    for (let i = 1; i <= replicaCount; i++) {
      const replica = new Node(`replica${i}`, join(dir, `replica${i}`), dir, owner);
      // -R: standby.signal + primary_conninfo; -C -S: a slot, so the primary keeps WAL a stopped replica needs.
      run(
        'pg_basebackup',
        ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'].concat([
          '-D',
          replica.data,
          '-R',
          '-X',
          'stream',
          '-C',
          '-S',
          `replica${i}`,
          '--checkpoint=fast',
        ]),
      );
      // pg_stat_replication.application_name falls back to cluster_name.
      appendFileSync(join(replica.data, 'postgresql.conf'), `cluster_name = 'replica${i}'\n`);
      servers.push(replica);
      await replica.start();
    }
    if (replicaCount > 0) await waitStreaming(primary.port, replicaCount);
  } catch (err) {
    await cleanup();
    throw err;
  }

  const [primary, ...replicas] = servers as [Node, ...Node[]];
  const replica = (i: number) => {
    const r = replicas[i];
    if (!r) throw new Error(`no replica ${i}: the cluster has ${replicas.length}`);
    return r;
  };
  let stopped = false;
  return {
    primaryUrl: primary.url,
    replicaUrls: replicas.map((r) => r.url),
    dir,
    query: (on, sql, params) => query(on === 'primary' ? primary.url : replica(on).url, sql, params),
    pauseReplay: async (i) => {
      await query(replica(i).url, 'SELECT pg_wal_replay_pause()');
    },
    resumeReplay: async (i) => {
      await query(replica(i).url, 'SELECT pg_wal_replay_resume()');
    },
    setApplyDelay: async (i, ms) => {
      const url = replica(i).url;
      await query(url, `ALTER SYSTEM SET recovery_min_apply_delay = '${Math.max(0, Math.floor(ms))}ms'`);
      await query(url, 'SELECT pg_reload_conf()');
    },
    stopPrimary: () => primary.stop(),
    startPrimary: () => primary.start(),
    stopReplica: (i) => replica(i).stop(),
    startReplica: (i) => replica(i).start(),
    killReplica: (i) => replica(i).kill(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await cleanup();
    },
  };
}

/** One postgres server process: spawned in the foreground so it is our child, stopped by its pid. */
class Node {
  port = 0;
  #process: ServerProcess | undefined;

  constructor(
    readonly name: string,
    readonly data: string,
    readonly socketDir: string,
    readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    if (this.#process?.running()) return;
    // The free port can be taken between freePort() and the bind: pick another one (first start only).
    for (let attempt = 1; ; attempt++) {
      const port = this.port || (await freePort());
      try {
        this.#process = await spawnServer({
          name: `postgres ${this.name}`,
          command: `${PG_BIN}/postgres`,
          args: ['-D', this.data, '-p', String(port), '-k', this.socketDir],
          env: { PATH: process.env.PATH, LANG: 'C' },
          cwd: this.socketDir,
          ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
          ready: () => canQuery(port),
          readyTimeoutMs: 30_000,
        });
        this.port = port;
        return;
      } catch (err) {
        const inUse = /address already in use|could not create any TCP\/IP sockets/i.test(
          (err as Error).message,
        );
        if (!inUse || this.port || attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  /** SIGINT is PostgreSQL's fast shutdown: clients are cut off, the server checkpoints and exits. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (!child?.running()) return;
    process.kill(child.pid, 'SIGINT');
    const exited = await Promise.race([child.exited.then(() => true), sleep(15_000, false, { ref: false })]);
    if (!exited) await child.kill();
  }

  /**
   * SIGKILL of the postmaster: no shutdown checkpoint, the next start runs crash recovery. Its children hold
   * the shared memory a new postmaster refuses to share, so wait for them (they notice the postmaster's death
   * within a moment); SIGKILL any left after 10 s, each by its pid.
   */
  async kill(): Promise<void> {
    const child = this.#process;
    if (!child?.running()) return;
    const children = childrenOf(child.pid);
    await child.kill();
    const deadline = Date.now() + 10_000;
    while (children.some(alive)) {
      if (Date.now() > deadline) {
        for (const pid of children.filter(alive)) process.kill(pid, 'SIGKILL');
        await sleep(100);
        break;
      }
      await sleep(50);
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function config(socketDir: string, replicas: number): string {
  const lines = [
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${socketDir}'`,
    'max_connections = 200',
    'shared_buffers = 32MB',
    // Throwaway test data: speed over durability.
    'fsync = off',
    'full_page_writes = off',
    'synchronous_commit = off',
    "log_min_messages = 'warning'",
  ];
  if (replicas > 0) {
    lines.push(
      'wal_level = replica',
      'max_wal_senders = 10',
      'max_replication_slots = 10',
      'wal_keep_size = 256MB',
      'hot_standby = on',
      'hot_standby_feedback = on',
    );
  } else {
    lines.push('wal_level = minimal', 'max_wal_senders = 0');
  }
  return `\n${lines.join('\n')}\n`;
}

/** The `postgres` OS user when we are root (initdb and postgres refuse to run as root). */
function osUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim();
  const [, , uid, gid] = line.split(':');
  if (!uid || !gid) throw new Error('no postgres OS user: install the postgresql package');
  return { uid: Number(uid), gid: Number(gid) };
}

async function canQuery(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function query(url: string, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

async function waitStreaming(port: number, count: number): Promise<void> {
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = await query(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
    );
    if (rows[0]?.n === count) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n} of ${count} replicas stream after 20 s`);
    await sleep(50);
  }
}
