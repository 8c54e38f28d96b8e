import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { badStoreUrl } from '../../errors.ts';
import type { StoreOpenOptions } from './store.ts';

/** One `host:port` of a multi-host Redis URL. */
export interface RedisNode {
  host: string;
  port: number;
}

/** The servers and credentials of a `redis+sentinel://` or `redis+cluster://` URL, validated once. */
export type RedisTopology =
  | {
      mode: 'sentinel';
      sentinels: RedisNode[];
      /** The master's name as the sentinels know it (`sentinel monitor <name> ...`). */
      name: string;
      db: number;
      username?: string;
      password?: string;
      sentinelPassword?: string;
    }
  | { mode: 'cluster'; nodes: RedisNode[]; username?: string; password?: string };

const SHAPE = /^redis\+(sentinel|cluster):\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/i;

/**
 * Parses `redis+sentinel://[[user]:password@]h1:26379,h2:26379/<masterName>[/db][?sentinel_password=]` and
 * `redis+cluster://[[user]:password@]h1:6379,h2:6379`. The password is the data nodes' one; sentinels often
 * run without one, so theirs is a separate parameter.
 *
 * @example
 *   redisTopology('redis+sentinel://s1:26379,s2/mymaster/2');
 *   // { mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', db: 2 }
 */
export function redisTopology(url: string): RedisTopology {
  const m = SHAPE.exec(url);
  const expected =
    'expected redis+sentinel://[:password@]host:port[,host:port...]/<masterName>[/db] ' +
    'or redis+cluster://[:password@]host:port[,host:port...]';
  if (!m) throw badStoreUrl(url, expected);
  const mode = (m[1] as string).toLowerCase() as 'sentinel' | 'cluster';
  const nodes = parseNodes(url, m[3] as string, mode === 'sentinel' ? 26379 : 6379);
  const auth: { username?: string; password?: string } = {};
  if (m[2] !== undefined) {
    const colon = m[2].indexOf(':');
    const user = decodeURIComponent(colon === -1 ? m[2] : m[2].slice(0, colon));
    const password = colon === -1 ? '' : decodeURIComponent(m[2].slice(colon + 1));
    if (user) auth.username = user;
    if (password) auth.password = password;
  }
  const params = new URLSearchParams(m[5] ?? '');
  const known = mode === 'sentinel' ? ['sentinel_password'] : [];
  for (const name of params.keys()) {
    if (!known.includes(name)) {
      throw badStoreUrl(
        url,
        `unknown parameter "${name}"${known.length ? `; known: ${known.join(', ')}` : ''}`,
      );
    }
  }
  const path = (m[4] ?? '').split('/').filter((part) => part !== '');
  if (mode === 'cluster') {
    // Redis Cluster has only database 0.
    if (path.length > 0) throw badStoreUrl(url, 'a cluster URL takes no path (Redis Cluster has only db 0)');
    return { mode, nodes, ...auth };
  }
  if (path.length === 0 || path.length > 2) throw badStoreUrl(url, `name the master: ${expected}`);
  const db = path.length === 2 ? Number(path[1]) : 0;
  if (!Number.isInteger(db) || db < 0) throw badStoreUrl(url, `"${path[1]}" is not a database number`);
  const sentinelPassword = params.get('sentinel_password');
  return {
    mode,
    sentinels: nodes,
    name: decodeURIComponent(path[0] as string),
    db,
    ...auth,
    ...(sentinelPassword ? { sentinelPassword } : {}),
  };
}

function parseNodes(url: string, list: string, defaultPort: number): RedisNode[] {
  const nodes: RedisNode[] = [];
  for (const part of list.split(',')) {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(part.trim());
    if (!m) throw badStoreUrl(url, `"${part}" is not host[:port]`);
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65535) throw badStoreUrl(url, `port ${m[2]} is out of range`);
    const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
    if (nodes.some((n) => n.host === host && n.port === port)) {
      throw badStoreUrl(url, `${host}:${port} is listed twice`);
    }
    nodes.push({ host, port });
  }
  return nodes;
}

/**
 * The ioredis client a store URL asks for -- one server, Sentinel or Cluster -- or the app's own client, with
 * the settings the session store relies on; and the store's name for messages (`redis cluster` ...).
 *
 * @example
 *   const { client, kind, cluster } = redisClient({ url: 'redis+cluster://a:7000', connectTimeout: 2000, prefix: 'p' });
 */
export function redisClient(options: StoreOpenOptions): {
  client: Redis | Cluster;
  kind: string;
  cluster: boolean;
} {
  let kind = 'redis';
  const perConnection = {
    connectTimeout: options.connectTimeout,
    // A write in flight when the connection drops may or may not have run: resending it could apply a
    // compare-and-set patch twice (it would then report a conflict and update(fn) would run fn again).
    // So in-flight calls fail at the first disconnect (maxRetriesPerRequest 0) and are never resent.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // A connection that stops answering (a failover behind a virtual IP, a dropped NAT entry) would hold
    // every call until the kernel gives up, minutes later: drop it and reconnect instead.
    socketTimeout: Math.max(options.connectTimeout, 1000),
  };
  const retry = (attempt: number) => Math.min(100 * attempt, 2000);
  const topology = /^redis\+/i.test(options.url) ? redisTopology(options.url) : undefined;
  let client: Redis | Cluster;
  if (options.client !== undefined) {
    // The app's own client, with its own retry and queue settings: a command it resends after a reconnect
    // could apply a compare-and-set twice (update(fn) then runs fn again, still without a lost update).
    client = options.client as Redis | Cluster;
    if (client instanceof Cluster) kind = 'redis cluster';
  } else if (topology?.mode === 'cluster') {
    kind = 'redis cluster';
    const { nodes, mode: _, ...auth } = topology;
    client = new Cluster(nodes, {
      redisOptions: { ...perConnection, ...auth },
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
      // MOVED, ASK, TRYAGAIN and CLUSTERDOWN mean the command did not run, so the client follows them; a
      // closed connection does not say, and a resent write could apply twice (see maxRetriesPerRequest).
      retryDelayOnFailover: 0,
    });
  } else {
    if (topology?.mode === 'sentinel') kind = 'redis sentinel';
    const connection: RedisOptions =
      topology?.mode === 'sentinel'
        ? {
            sentinels: topology.sentinels,
            name: topology.name,
            db: topology.db,
            ...(topology.username ? { username: topology.username } : {}),
            ...(topology.password ? { password: topology.password } : {}),
            ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
            // Learn of a failover from the sentinels at once, even when the old master stays reachable.
            failoverDetector: true,
          }
        : redisConnection(options.url);
    client = new Redis({
      ...connection,
      ...perConnection,
      lazyConnect: true,
      // A call never waits in an unbounded offline queue: RedisStore.init waits for 'ready' with a deadline,
      // so nothing is sent late after its caller has already been told it failed.
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      retryStrategy: retry,
    });
  }
  return { client, kind, cluster: topology?.mode === 'cluster' || client instanceof Cluster };
}

/** The PEM of a private CA (`rediss://...?ca=/path/ca.pem`), read once when the store is opened. */
function readCa(url: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw badStoreUrl(url, `cannot read the CA file: ${(err as Error).message}`);
  }
}

/** Host, port, credentials, db and TLS from a `redis://` or `rediss://` URL, validated once. */
export function redisConnection(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badStoreUrl(url, 'not a URL; expected redis://[user:password@]host:port[/db]');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw badStoreUrl(url, 'expected redis:// or rediss://');
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0)
    throw badStoreUrl(url, `"${u.pathname.slice(1)}" is not a database number`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const insecure = u.searchParams.get('tls_insecure');
  const ca = u.searchParams.get('ca');
  for (const name of u.searchParams.keys()) {
    if (name !== 'tls_insecure' && name !== 'ca') {
      throw badStoreUrl(url, `unknown parameter "${name}"; known: tls_insecure, ca`);
    }
  }
  if ((insecure !== null || ca !== null) && u.protocol !== 'rediss:') {
    throw badStoreUrl(url, 'tls_insecure and ca need rediss://');
  }
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port,
    db,
  };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') {
    options.tls = insecure === '1' || insecure === 'true' ? { rejectUnauthorized: false } : {};
    if (ca) options.tls.ca = readCa(url, ca);
  }
  return options;
}
