// The configurations of `npm run bench:session` and the servers they need. Every server is started through the
// test harness (test/harness/), on free loopback ports, and stopped by its pid when the bench ends; a server is
// started only when a selected configuration uses it (`--only`).
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeAwsCredentials, startDynalite } from '../test/harness/dynalite-server.ts';
import { startMemcached } from '../test/harness/memcached-server.ts';
import { startPostgres } from '../test/harness/postgres-server.ts';
import { startRedisCluster, startRedisSentinel } from '../test/harness/redis-cluster.ts';
import { startRedis } from '../test/harness/redis-server.ts';

/** One app configuration the bench drives: the environment of its app process (bench/session-app.ts). */
export interface Config {
  key: string;
  label: string;
  env: Record<string, string>;
  /** The session travels in the cookie: concurrent requests cannot merge (the last response's cookie wins). */
  clientSide?: boolean;
  /** No session at all: nothing to lose. */
  noSession?: boolean;
}

/** A started server (or set of servers): the store URL to give the app, and how to stop it. */
interface Backend {
  url: string;
  /** Server processes, for the log line; every one is stopped by its pid through the harness. */
  pids: number[];
  stop(): Promise<void>;
}

type BackendName = 'redis' | 'sqlite' | 'memcached' | 'postgres' | 'dynalite' | 'sentinel' | 'cluster';

/** How each server is started, and its version for the results file (npm packages are versioned there too). */
const BACKENDS: Record<BackendName, { start(): Promise<Backend>; version?(): string }> = {
  redis: {
    async start() {
      const redis = await startRedis();
      return { url: redis.url, pids: [redis.pid], stop: redis.stop };
    },
    version: redisVersion,
  },
  sqlite: {
    async start() {
      const dir = await mkdtemp(join(tmpdir(), 'clones-bench-'));
      return {
        url: `sqlite:${join(dir, 'sessions.db')}`,
        pids: [],
        stop: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  memcached: {
    async start() {
      const a = await startMemcached();
      const b = await startMemcached().catch(async (err) => {
        await a.stop();
        throw err;
      });
      return {
        url: `memcached://${a.address},${b.address}`,
        pids: [a.pid, b.pid],
        stop: async () => {
          await Promise.all([a.stop(), b.stop()]);
        },
      };
    },
    version: () => versionFrom('memcached', ['-V'], /memcached (\S+)/),
  },
  postgres: {
    async start() {
      const pg = await startPostgres();
      return { url: pg.primaryUrl, pids: [], stop: pg.stop };
    },
    version: () => versionFrom('/usr/lib/postgresql/15/bin/postgres', ['--version'], /(\d+\.\d+)/),
  },
  dynalite: {
    async start() {
      fakeAwsCredentials();
      const dynalite = await startDynalite();
      return { url: dynalite.url('clones_bench_sessions'), pids: [dynalite.pid], stop: dynalite.stop };
    },
  },
  sentinel: {
    async start() {
      const set = await startRedisSentinel();
      const pids = [set.master.pid, set.replica.pid, ...set.sentinels.map((s) => s.pid)];
      return { url: set.url, pids, stop: set.stop };
    },
    version: redisVersion,
  },
  cluster: {
    async start() {
      const cluster = await startRedisCluster();
      return { url: cluster.url, pids: cluster.nodes.map((n) => n.pid), stop: cluster.stop };
    },
    version: redisVersion,
  },
};

interface ConfigSpec extends Omit<Config, 'env'> {
  backend?: BackendName;
  env(url: string): Record<string, string>;
}

const clones = (url: string) => ({ BENCH_CONFIG: 'clones', SESSION_STORE: url });

/** Every configuration, in table order; the default run measures all of them. */
const CONFIGS: ConfigSpec[] = [
  { key: 'none', label: 'no session', env: () => ({ BENCH_CONFIG: 'none' }), noSession: true },
  { key: 'clones-redis', label: 'clones/session redis', backend: 'redis', env: clones },
  {
    key: 'express-session-redis',
    label: 'express-session+connect-redis',
    backend: 'redis',
    env: (url) => ({ BENCH_CONFIG: 'express-session', BENCH_REDIS_URL: url }),
  },
  {
    key: 'redis-floor',
    label: 'floor: 1 Redis HMGET, no session',
    backend: 'redis',
    env: (url) => ({ BENCH_CONFIG: 'redis-floor', BENCH_REDIS_URL: url }),
    noSession: true,
  },
  { key: 'clones-sqlite', label: 'clones/session sqlite', backend: 'sqlite', env: clones },
  {
    key: 'clones-cookie',
    label: 'clones/session sealed cookie',
    env: () => clones('cookie:'),
    clientSide: true,
  },
  { key: 'clones-memcached', label: 'clones/session memcached (2)', backend: 'memcached', env: clones },
  { key: 'clones-postgres', label: 'clones/session postgres', backend: 'postgres', env: clones },
  {
    key: 'clones-dynamodb',
    label: 'clones/session dynamodb (dynalite)',
    backend: 'dynalite',
    env: (url) => ({
      ...clones(url),
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? '',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? '',
    }),
  },
  { key: 'clones-redis-sentinel', label: 'clones/session redis sentinel', backend: 'sentinel', env: clones },
  { key: 'clones-redis-cluster', label: 'clones/session redis cluster (3)', backend: 'cluster', env: clones },
];

/** The keys of every configuration, in table order. */
export const configKeys = (): string[] => CONFIGS.map((c) => c.key);

/**
 * The configurations an `--only` list names, in table order (all of them without a list). A name selects the
 * configuration with that key or with the key `clones-<name>`; failing that, every key starting `<name>-`.
 *
 * @example
 *   selectConfigs(['redis', 'memcached']); // clones-redis, clones-memcached
 *   selectConfigs(['express-session']); // express-session-redis
 */
export function selectConfigs(only: string[] | undefined): string[] {
  if (!only?.length) return configKeys();
  const picked = new Set<string>();
  for (const name of only) {
    const exact = configKeys().filter((k) => k === name || k === `clones-${name}`);
    const found = exact.length ? exact : configKeys().filter((k) => k.startsWith(`${name}-`));
    if (!found.length)
      throw new Error(`--only: no configuration "${name}"; known: ${configKeys().join(', ')}`);
    for (const key of found) picked.add(key);
  }
  return configKeys().filter((k) => picked.has(k));
}

/** Started servers plus the configurations that use them. */
export interface StartedConfigs {
  configs: Config[];
  /** Server versions of the backends that ran, for the results file (e.g. `{ redis: '7.0.15' }`). */
  servers: Record<string, string>;
  /** Stops every server that was started, by pid, and removes its files. */
  stop(): Promise<void>;
}

/**
 * Starts the servers the selected configurations need (each once, shared by the configurations on it) and
 * answers each configuration's app environment. On a failed start, what did start is stopped again.
 *
 * @example
 *   const started = await startConfigs(selectConfigs(['memcached']));
 *   try { ... } finally { await started.stop(); }
 */
export async function startConfigs(keys: string[]): Promise<StartedConfigs> {
  const specs = CONFIGS.filter((c) => keys.includes(c.key));
  const running = new Map<BackendName, Backend>();
  const stop = async () => {
    const results = await Promise.allSettled([...running.values()].map((b) => b.stop()));
    for (const r of results) if (r.status === 'rejected') console.error(`stopping a server: ${r.reason}`);
  };
  try {
    for (const spec of specs) {
      if (!spec.backend || running.has(spec.backend)) continue;
      const began = Date.now();
      const backend = await BACKENDS[spec.backend].start();
      running.set(spec.backend, backend);
      console.error(
        `  started ${spec.backend} in ${Date.now() - began} ms` +
          (backend.pids.length ? ` (pids ${backend.pids.join(' ')})` : ''),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const configs = specs.map(({ backend, env, ...rest }) => ({
    ...rest,
    env: env(backend ? running.get(backend)!.url : ''),
  }));
  const servers: Record<string, string> = {};
  for (const name of running.keys()) {
    const server = name === 'sentinel' || name === 'cluster' ? 'redis' : name;
    const version = BACKENDS[name].version?.();
    if (version) servers[server] ??= version;
  }
  return { configs, servers, stop };
}

function redisVersion(): string {
  return versionFrom('redis-server', ['--version'], /v=(\S+)/);
}

function versionFrom(command: string, args: string[], pattern: RegExp): string {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  return pattern.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`)?.[1] ?? '?';
}
