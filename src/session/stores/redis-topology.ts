import { badStoreUrl } from '../../errors.ts';

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
