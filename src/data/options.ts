import type { Logger } from 'pino';
import { badDataUrl } from '../errors.ts';
import { logger as rootLogger } from '../logger.ts';
import { OptionIssues } from '../option-issues.ts';

/** Options of `database()`; every field is optional (see `dataDefaults`). */
export interface DataOptions {
  /** `sqlite:<path>` (default `sqlite:.clones/data.db`, or DATABASE_URL) or `postgres://...`. */
  primary?: string;
  /** Read replicas of a PostgreSQL primary (default: DATABASE_REPLICA_URLS, comma-separated). */
  replicas?: readonly string[];
  /** `redis://` / `rediss://` for the shared cache (default CACHE_URL); none: `cached()` only coalesces. */
  cache?: string | undefined;
  /** Upper bound of any one database or cache call, in ms: past it, CLONES_DATA_TIMEOUT. */
  timeout?: number;
  /** A replica further behind the primary than this many bytes of WAL leaves rotation. */
  maxLagBytes?: number;
  /** How often each clone reads the replicas' replay positions and the primary's insert position, in ms. */
  lagPollInterval?: number;
  /** Connections per server and clone. */
  poolSize?: number;
  /** How long a cache fill may hold the cross-clone lease before another clone may fill, in ms. */
  leaseTtl?: number;
  /** Longest wait, in ms, between two looks at a key another clone is filling (waits start at 1 ms, doubling). */
  leasePoll?: number;
  /** Entries live `ttl * (1 - ttlJitter * random)`, so keys filled together do not expire together. */
  ttlJitter?: number;
  /** How long the cache remembers the WAL position of a key's last write, in ms. */
  writeMarkTtl?: number;
  /** Prefix of every cache key. */
  cachePrefix?: string;
  logger?: Logger;
}

export interface ResolvedDataOptions {
  readonly primary: DatabaseUrl;
  readonly replicas: readonly DatabaseUrl[];
  readonly cache: string | undefined;
  readonly timeout: number;
  readonly maxLagBytes: number;
  readonly lagPollInterval: number;
  readonly poolSize: number;
  readonly leaseTtl: number;
  readonly leasePoll: number;
  readonly ttlJitter: number;
  readonly writeMarkTtl: number;
  readonly cachePrefix: string;
  readonly logger: Logger;
}

export type DatabaseUrl = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** The defaults, in one place; docs/data.md explains each. */
export const dataDefaults = Object.freeze({
  primary: 'sqlite:.clones/data.db',
  timeout: 2000,
  // pgpool's delay_threshold is in bytes too; 16 MiB is a few seconds of a busy primary's WAL.
  maxLagBytes: 16 * 1024 * 1024,
  lagPollInterval: 50,
  poolSize: 10,
  leaseTtl: 4000,
  leasePoll: 10,
  ttlJitter: 0.1,
  writeMarkTtl: 3_600_000,
  cachePrefix: 'clones:data:',
});

/**
 * Validates once, with messages that name the option, and freezes.
 *
 * @example
 *   resolveDataOptions({ primary: 'postgres://db/app', replicas: ['postgres://db2/app'] });
 */
export function resolveDataOptions(options: DataOptions = {}, env = process.env): ResolvedDataOptions {
  // Under a fleet the default file goes to the clone's writable data directory: its cwd is a read-only release.
  const fallback = env.CLONES_DATA_DIR
    ? `sqlite:${env.CLONES_DATA_DIR.replace(/\/+$/, '')}/data.db`
    : dataDefaults.primary;
  const primary = parseDatabaseUrl('primary', options.primary ?? env.DATABASE_URL ?? fallback);
  const replicaUrls =
    options.replicas ??
    (env.DATABASE_REPLICA_URLS ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
  const replicas = replicaUrls.map((u, i) => parseDatabaseUrl(`replicas[${i}]`, u));
  if (primary.kind === 'sqlite' && replicas.length > 0) {
    throw badDataUrl('replicas', replicaUrls[0]!, 'a SQLite primary has no replicas');
  }
  if (replicas.some((r) => r.kind !== 'postgres')) {
    throw badDataUrl('replicas', replicaUrls.join(','), 'replicas must be postgres:// URLs');
  }
  const cache = 'cache' in options ? options.cache : env.CACHE_URL || undefined;
  if (cache !== undefined && !/^rediss?:\/\//.test(cache)) {
    throw badDataUrl('cache', cache, 'use redis:// or rediss://');
  }
  // Every wrong number is reported at once (the one validation path, src/option-issues.ts).
  const issues = new OptionIssues();
  const positive = (option: keyof typeof dataDefaults & keyof DataOptions): number => {
    const value = options[option] ?? dataDefaults[option];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      issues.add(option, `must be a positive number, got ${String(value)}`);
    return value as number;
  };
  const resolved = {
    primary,
    replicas: Object.freeze(replicas),
    cache,
    timeout: positive('timeout'),
    maxLagBytes: positive('maxLagBytes'),
    lagPollInterval: positive('lagPollInterval'),
    poolSize: positive('poolSize'),
    leaseTtl: positive('leaseTtl'),
    leasePoll: positive('leasePoll'),
    ttlJitter: options.ttlJitter ?? dataDefaults.ttlJitter,
    writeMarkTtl: positive('writeMarkTtl'),
    cachePrefix: options.cachePrefix ?? dataDefaults.cachePrefix,
    logger: (options.logger ?? rootLogger).child({ part: 'data' }),
  };
  const jitter = resolved.ttlJitter;
  if (!Number.isFinite(jitter) || jitter < 0 || jitter >= 1)
    issues.add('ttlJitter', `must be in [0, 1), got ${jitter}`);
  issues.throwIfAny();
  return Object.freeze(resolved);
}

/**
 * `sqlite:<path>` / `sqlite::memory:` or `postgres://` / `postgresql://`; anything else is CLONES_DATA_URL.
 *
 * @example
 *   parseDatabaseUrl('primary', 'sqlite:.clones/data.db'); // { kind: 'sqlite', path: '.clones/data.db' }
 */
export function parseDatabaseUrl(option: string, url: string): DatabaseUrl {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (!path) throw badDataUrl(option, url, 'sqlite: needs a file path, e.g. sqlite:.clones/data.db');
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      const parsed = new URL(url);
      if (!parsed.hostname) throw new Error('no host');
    } catch {
      throw badDataUrl(option, url, 'not a valid URL');
    }
    return { kind: 'postgres', url };
  }
  throw badDataUrl(option, url, 'use sqlite:<path>, postgres:// or postgresql://');
}
